// The operator's log (issue 11, "Logging"): start with the effective configuration (no
// secrets), Redis lost and restored, a SIGTERM drain's start and end with counts, stop;
// --log-format json lines that parse; --log-level filtering.
import { test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './lib/herald.mjs';
import * as C from './lib/cluster.mjs';

const test = (name, fn) => nodeTest(name, { timeout: 60000 }, fn);

const lines = (h) => h.stderr().split('\n').filter(Boolean);
const events = (h, name) => lines(h).filter((l) => l.includes(` event=${name}`) || l.includes(`"event":"${name}"`));

test('start logs the effective configuration, secrets as set/unset; a SIGTERM drain logs start and end', async () => {
  const secret = 'a-very-secret-api-key-0123456789';
  const h = await H.startHerald(['--api-key', secret, '--threads', '2', '--max-polls-per-ip', '7', '--drain-seconds', '1']);
  const { reader } = await H.openSynced(h, { channels: 'drained' });
  const start = events(h, 'start');
  assert.equal(start.length, 1, h.stderr());
  assert.match(start[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=info event=start /);
  assert.match(start[0], new RegExp(`listen=127\\.0\\.0\\.1:${h.port} threads=2 broker=memory`));
  assert.match(start[0], / api_key=set token_keys=unset /);
  assert.match(start[0], / max_polls_per_ip=7 /);
  const r = await h.stop(5000);
  assert.equal(r.code, 0);
  await reader.waitClosed(2000);
  assert.ok(!h.stderr().includes(secret), 'the API key never appears in the log');
  const [ds] = events(h, 'drain_start');
  const [de] = events(h, 'drain_end');
  assert.match(ds ?? '', /event=drain_start connections=1 window_ms=1000/, h.stderr());
  assert.match(de ?? '', /event=drain_end reason=drained connections_at_start=1 left=0 elapsed_ms=\d+/, h.stderr());
  assert.equal(events(h, 'stop').length, 1, h.stderr());
});

test('--log-format json: every line is a JSON object with ts, level and event', async () => {
  const h = await H.startHerald(['--log-format', 'json']);
  await h.stop();
  const ls = lines(h);
  assert.ok(ls.length >= 3, h.stderr());
  for (const l of ls) {
    const o = JSON.parse(l);
    assert.equal(typeof o.ts, 'string');
    assert.ok(['debug', 'info', 'warn', 'error'].includes(o.level));
    assert.equal(typeof o.event, 'string');
  }
  assert.deepEqual(ls.map((l) => JSON.parse(l).event), ['start', 'signal', 'drain_start', 'drain_end', 'stop']);
  assert.equal(JSON.parse(ls[0]).threads > 0, true);
});

test('--log-level warn hides info lines; a bad level or format exits 2 naming the setting', async () => {
  const h = await H.startHerald(['--log-level', 'warn']);
  await h.stop();
  assert.equal(lines(h).length, 0, h.stderr());
  for (const [flag, value] of [['--log-level', 'verbose'], ['--log-format', 'xml']]) {
    const r = await H.runHerald(['--listen', '127.0.0.1:0', flag, value]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(flag.slice(2)));
  }
});

const missing = C.missingTools(['redis-server', 'redis-cli']);
test('Redis going down and coming back is logged (lost, restored with its downtime)', { skip: missing.length ? `missing ${missing}` : false }, async () => {
  let redis = await C.startRedis();
  const port = redis.port;
  const h = await C.startNode([redis.url], { args: ['--redis-timeout', '500'] });
  try {
    await C.waitReady(h, 200);
    await H.waitFor(() => events(h, 'redis_connected').length === 2, { what: 'redis_connected for cmd and sub' });
    await redis.stop();
    await H.waitFor(() => events(h, 'redis_lost').length === 2, { timeoutMs: 5000, what: `redis_lost lines in\n${h.stderr()}` });
    const lost = events(h, 'redis_lost');
    assert.match(lost[0], new RegExp(`level=warn event=redis_lost shard=0 addr=127\\.0\\.0\\.1:${port} conn=(cmd|sub)`));
    redis = await C.startRedis({ port });
    await C.waitReady(h, 200);
    await H.waitFor(() => events(h, 'redis_restored').length === 2, { timeoutMs: 10000, what: `redis_restored lines in\n${h.stderr()}` });
    const restored = events(h, 'redis_restored');
    assert.match(restored[0], new RegExp(`level=info event=redis_restored shard=0 addr=127\\.0\\.0\\.1:${port} conn=(cmd|sub) down_ms=\\d+`));
  } finally {
    await h.stop();
    await redis.stop();
  }
  // Stopping herald is not an outage.
  assert.equal(events(h, 'redis_lost').length, 2, h.stderr());
});
