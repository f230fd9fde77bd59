// Configuration: --help, --version, a port chosen by the kernel, bad values (flags,
// environment, config file) exit with code 2 naming the setting, options from a config
// file and from HERALD_* variables take effect, precedence flag > environment > file, and
// a clean exit on SIGTERM.
import { test as nodeTest } from 'node:test';

// Every test is bounded in time (on top of the bounded waits inside).
const test = (name, fn) => nodeTest(name, { timeout: 60000 }, fn);
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as H from './lib/herald.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-config-test-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let fileNo = 0;
function configFile(text) {
  const f = path.join(tmp, `herald-${++fileNo}.conf`);
  fs.writeFileSync(f, text);
  return f;
}

test('--help exits 0 and lists the options', async () => {
  const r = await H.runHerald(['--help']);
  assert.equal(r.code, 0, r.stderr);
  for (const opt of ['--listen', '--config', '--broker', '--api-key', '--history-size', '--max-queued-bytes', '--sse-heartbeat', '--poll-timeout'])
    assert.ok(r.stdout.includes(opt), `--help mentions ${opt}`);
  assert.match(r.stdout, /HERALD_/, 'mentions the environment variables');
  const v = await H.runHerald(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /herald \d+\.\d+/);
});

test('--listen 127.0.0.1:0 listens on a port chosen by the kernel and reports it', async () => {
  const r = await H.launch(['--listen', '127.0.0.1:0']);
  assert.ok(r.herald, `herald --listen 127.0.0.1:0 exited with code ${r.code}: ${r.stderr?.trim()}`);
  try {
    assert.ok(r.herald.port > 0 && r.herald.port < 65536);
    assert.equal((await H.get(r.herald, '/healthz')).status, 200);
  } finally {
    await r.herald.stop();
  }
});

test('bad settings exit with code 2 and a message naming the setting', async () => {
  const f1 = configFile('history-size = abc\n');
  const f2 = configFile('no-such-option = 1\n');
  const cases = [
    [['--listen', 'nope'], {}, /listen/],
    [['--listen', '127.0.0.1:70000'], {}, /listen/],
    [['--listen', '127.0.0.1:port'], {}, /listen/],
    [['--history-size', 'abc'], {}, /history-size/],
    [['--history-size', '-5'], {}, /history-size/],
    [['--threads', 'abc'], {}, /threads/],
    // A Boost.ProgramOptions placeholder in a value once hung herald (fuzzing finding F2).
    [['--poll-limit', '%value%'], {}, /poll-limit/],
    [[], { HERALD_POLL_LIMIT: '%value%%option%' }, /poll-limit/],
    [['--threads', '65'], {}, /threads/],
    [['--client-publish', 'maybe'], {}, /client-publish/],
    [['--max-queued-bytes', '10'], {}, /max-queued-bytes/],
    [['--namespace', 'chat:history_size=lots'], {}, /namespace/],
    [['--namespace', 'chat:colour=blue'], {}, /namespace/],
    [['--broker', 'carrier-pigeon://x'], {}, /broker/],
    [['--broker', 'sentinel://mymaster'], {}, /sentinel/],
    [['--broker', 'sentinel://a/b', '--sentinels', '127.0.0.1:26379'], {}, /broker/],
    [['--broker', 'sentinel://m', '--sentinels', '127.0.0.1:port'], {}, /sentinels/],
    [['--broker', 'sentinel://m', '--sentinels', '127.0.0.1', '--sentinel-poll', '10'], {}, /sentinel-poll/],
    [['--no-such-flag'], {}, /no-such-flag/],
    [[], { HERALD_THREADS: 'abc' }, /threads/],
    [[], { HERALD_HISTORY_SIZE: 'many' }, /history-size/],
    [[], { HERALD_LISTEN: 'nope' }, /listen/],
    [['--config', path.join(tmp, 'does-not-exist.conf')], {}, /config/],
    [['--config', f1], {}, /history-size/],
    [['--config', f2], {}, /no-such-option/],
  ];
  const failures = [];
  for (const [args, env, re] of cases) {
    // A valid --listen unless the case is about it, so that only the bad setting can fail.
    const full = args.includes('--listen') || env.HERALD_LISTEN ? args : ['--listen', '127.0.0.1:1', ...args];
    const r = await H.runHerald(full, { env });
    const what = `${Object.entries(env).map(([k, v]) => `${k}=${v} `).join('')}herald ${full.join(' ')}`;
    if (r.code !== 2) failures.push(`${what}: exit code ${r.code} (signal ${r.signal}), stderr ${JSON.stringify(r.stderr)}`);
    else if (!re.test(r.stderr)) failures.push(`${what}: stderr does not name the setting (${re}): ${JSON.stringify(r.stderr)}`);
    else if (r.stdout.includes('listening')) failures.push(`${what}: started listening`);
  }
  assert.deepEqual(failures, []);
});

test('a config file sets options (history-size, api-key, namespace) that are observable', async () => {
  const f = configFile([
    '# comment',
    'history-size = 3',
    'api-key = from-file',
    'namespace = chat:client_publish=true',
    '',
  ].join('\n'));
  const h = await H.startHerald(['--config', f]);
  try {
    assert.equal((await H.request(h, 'POST', '/api/publish', { body: { channel: 'c', data: 0 } })).status, 401, 'api-key from the file');
    for (let i = 1; i <= 5; i++) await H.publish(h, 'c', i, { apiKey: 'from-file' });
    const r = await H.history(h, 'c', { apiKey: 'from-file' });
    assert.deepEqual(r.json.messages.map((m) => m.data), [3, 4, 5], 'history-size 3 from the file');
    assert.equal((await H.request(h, 'POST', '/publish', { body: { channel: 'chat:x', data: 1 } })).status, 200, 'namespace from the file');
  } finally {
    await h.stop();
  }
});

test('HERALD_* environment variables set options; flags win over the environment, which wins over the file', async () => {
  const f = configFile('history-size = 3\nsse-retry = 111\n');
  const port = await H.freePort();
  // Environment only, including the listen address.
  let r = await H.launch([], { env: { HERALD_LISTEN: `127.0.0.1:${port}`, HERALD_HISTORY_SIZE: '4', HERALD_SSE_RETRY: '222' } });
  assert.ok(r.herald, `HERALD_LISTEN: exited ${r.code} ${r.stderr}`);
  try {
    assert.equal(r.herald.port, port, 'HERALD_LISTEN sets the address');
    await checkHistorySize(r.herald, 4);
  } finally {
    await r.herald.stop();
  }
  // File + environment: the environment wins.
  let h = await H.startHerald(['--config', f], { env: { HERALD_HISTORY_SIZE: '4' } });
  try {
    await checkHistorySize(h, 4);
    const { reader, preamble } = await H.openSynced(h, { channels: 'retry' });
    reader.close();
    assert.equal(preamble[0].retry, '111', 'the file still applies to what the environment does not set');
  } finally {
    await h.stop();
  }
  // File + environment + flag: the flag wins.
  h = await H.startHerald(['--config', f, '--history-size', '2'], { env: { HERALD_HISTORY_SIZE: '4' } });
  try {
    await checkHistorySize(h, 2);
  } finally {
    await h.stop();
  }
});

async function checkHistorySize(h, n) {
  const ch = `hs:${n}`;
  for (let i = 1; i <= n + 3; i++) await H.publish(h, ch, i);
  const r = await H.history(h, ch, {});
  assert.equal(r.json.messages.length, n, `history-size ${n}: ${r.text}`);
  const c = (await H.get(h, '/api/channels')).json.channels.find((x) => x.channel === ch);
  assert.equal(c.history, n);
}

test('SIGTERM stops herald cleanly (exit code 0), even with subscribers connected', async () => {
  const h = await H.startHerald([]);
  const { reader } = await H.openSynced(h, { channels: 'bye' });
  const held = H.poll(h, 'bye', { timeout: 20 }).catch((e) => e);
  await H.sleep(100);
  const t0 = Date.now();
  const r = await h.stop(5000);
  assert.equal(r.signal, null, `killed by ${r.signal} (did not exit on SIGTERM within 5 s)`);
  assert.equal(r.code, 0);
  assert.ok(Date.now() - t0 < 5000);
  await reader.waitClosed(2000);
  await held;
});

// Issue 11, finding 7: SO_REUSEPORT let a second herald bind the same address, and the
// kernel then split clients between two memory brokers.
test('a second herald on the same address exits with code 2 naming it; the first keeps serving', async () => {
  for (const threads of ['1', '2']) {
    const first = await H.startHerald(['--threads', threads]);
    try {
      const addr = `127.0.0.1:${first.port}`;
      const second = await H.launch(['--listen', addr, '--threads', threads]);
      if (second.herald) {
        await second.herald.stop();
        assert.fail(`a second herald started on ${addr} (--threads ${threads})`);
      }
      assert.equal(second.code, 2, second.stderr);
      assert.match(second.stderr, new RegExp(`another herald is already listening on ${addr.replace(/\./g, '\\.')}`));
      // An address that covers it (the wildcard on the same port) is refused too.
      const wild = await H.launch(['--listen', `0.0.0.0:${first.port}`]);
      if (wild.herald) {
        await wild.herald.stop();
        assert.fail(`a second herald started on 0.0.0.0:${first.port}`);
      }
      assert.equal(wild.code, 2, wild.stderr);
      assert.match(wild.stderr, /already in use/);
      // The first one still serves everything on its port (no connection went elsewhere).
      for (let i = 0; i < 20; i++) assert.equal((await H.get(first, '/healthz')).status, 200);
      const pub = await H.publish(first, 'one-node', { n: 1 });
      assert.equal(pub.offset, 1);
      // Another port is fine.
      const other = await H.startHerald(['--threads', threads]);
      assert.notEqual(other.port, first.port);
      assert.equal((await H.get(other, '/healthz')).status, 200);
      await other.stop();
    } finally {
      await first.stop();
    }
  }
});

test('the address is free again for a new herald once the first stops accepting (drain)', async () => {
  const first = await H.startHerald(['--drain-seconds', '3']);
  const { reader } = await H.openSynced(first, { channels: 'held' });  // keeps the drain busy
  try {
    first.proc.kill('SIGTERM');
    const second = await H.waitFor(async () => {
      const r = await H.launch(['--listen', `127.0.0.1:${first.port}`]);
      return r.herald ?? null;
    }, { timeoutMs: 5000, intervalMs: 100, what: 'a successor on the draining address' });
    assert.equal((await H.get(second, '/healthz')).status, 200);
    await second.stop();
  } finally {
    reader.close();
    await first.stop();
  }
});
