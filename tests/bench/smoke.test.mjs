// herald-bench's stream and presence scenarios, run tiny against the real herald (and a
// real redis-server for presence), so that they cannot rot: each run must exit 0, and
// its JSON result must say what the scenario checks: every reader's text equal to its
// producer's byte for byte (through drops and resumes), every join and leave seen by
// both observers, both nodes counting the room alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BENCH = process.env.HERALD_BENCH_BIN;
const HERALD = process.env.HERALD_BIN;

function bench(args, timeoutMs = 60000) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-bench-smoke-'));
  const json = path.join(dir, 'out.jsonl');
  return new Promise((resolve) => {
    // herald warns about HERALD_* variables it does not know: the bench's own go.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HERALD_')));
    execFile(BENCH, ['--server', HERALD, '--json', json, ...args], { timeout: timeoutMs, env }, (err, stdout, stderr) => {
      const lines = fs.existsSync(json) ? fs.readFileSync(json, 'utf8').trim().split('\n') : [];
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({ code: err ? (err.code ?? 'killed') : 0, stdout, stderr, result: lines.length ? JSON.parse(lines.at(-1)) : null });
    });
  });
}

test('stream: 5 answers x 20 tokens, SSE and WebSocket readers dropping and resuming, every text exact', async () => {
  assert.ok(BENCH && HERALD, 'HERALD_BENCH_BIN and HERALD_BIN must be set');
  const r = await bench(['--scenario', 'stream', '--streams', '5', '--tokens', '20', '--token-rate', '100',
    '--drop-every', '60', '--drop-fraction', '0.5']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const j = r.result;
  assert.equal(j.ok, true);
  assert.equal(j.producers_completed, 5);
  assert.equal(j.readers_total, 10);
  assert.equal(j.readers_exact, 10, 'every reader has its producer\'s text, byte for byte');
  for (const k of ['mismatched', 'duplicated', 'gaps', 'resets', 'errors_end', 'unfinished', 'not_completed'])
    assert.equal(j[k], 0, k);
  assert.equal(j.dropping_readers, 5);
  assert.ok(j.resumes >= 5, `readers resumed mid-answer (${j.resumes})`);
  assert.ok(j.messages_per_stream > 2 && j.messages_per_stream < 21, `tokens coalesced into messages (${j.messages_per_stream})`);
  assert.ok(j.token_p50_ms > 0 && j.first_token_p50_ms > 0);
});

test('presence: 50 members over two nodes on one Redis, every join and leave seen on both nodes', async () => {
  const r = await bench(['--scenario', 'presence', '--members', '50', '--fill-rate', '500', '--churn-rate', '40',
    '--churn-seconds', '1', '--presence-queries', '20']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const j = r.result;
  assert.equal(j.ok, true);
  assert.equal(j.events, 40);
  assert.equal(j.joins_seen_min, j.joins_expected);
  assert.equal(j.leaves_seen_min, j.leaves_expected);
  assert.equal(j.users_a, 52, 'the members and both observers, counted on node a');
  assert.equal(j.users_b, 52, 'and alike on node b');
  assert.equal(j.member_errors, 0);
  assert.ok(j.queries >= 5 && j.query_failures === 0);
  assert.ok(j.join_p50_ms > 0 && j.leave_p50_ms > 0);
});
