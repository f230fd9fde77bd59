// Signals and streams' ends with the client in Node against a real herald, in both wire
// formats and on every transport: an ephemeral message reaches the signal handler and
// leaves the cursor (and the offsets) where they were; a stream's end reaches the end
// handler once and takes the channel off the transport.
// Run from tests/integration/client-js.test.mjs.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startHerald, publish, request, sleep } from '../../../tests/integration/lib/herald.mjs';
import { Herald } from '../dist/herald.js';

const require = createRequire(new URL('../../../tests/integration/package.json', import.meta.url));
const WebSocket = require('ws');

async function until(pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}`);
    await sleep(20);
  }
}

describe('herald JS client: signals and ends', { timeout: 90000 }, () => {
  let h;
  before(async () => { h = await startHerald(['--namespace', 'demo:client_publish=true', '--sse-heartbeat', '1']); });
  after(async () => { await h?.stop(); });

  for (const format of ['raw', 'json']) for (const t of ['websocket', 'sse', 'poll']) {
    it(`${t}, ${format}: an ephemeral message is a signal; the cursor and offsets do not move`, async () => {
      const ch = `demo:sig-${t}-${format}`;
      const c = new Herald({ url: h.base, transports: [t], WebSocket, pollTimeoutSec: 2, sseHeartbeatMs: 1000, format });
      const got = [], sigs = [], errors = [];
      c.on('error', (e) => errors.push(e.message));
      c.subscribe(ch, { message: (m) => got.push(m.offset), signal: (s) => sigs.push(s) });
      await c.connect();
      await until(() => c.cursor(ch), 5000, 'cursor');
      await publish(h, ch, { n: 1 });
      await until(() => got.length === 1, 5000, 'message 1');
      const cursor = c.cursor(ch);
      // A poller gets only the signals sent while a poll is held: let the next one start.
      const held = () => sleep(t === 'poll' ? 200 : 0);
      // From the server API and from the client (over the socket on WebSocket).
      await held();
      const r = await request(h, 'POST', '/api/publish', { body: { channel: ch, data: { typing: 'api' }, ephemeral: true } });
      assert.deepEqual(r.json, { ephemeral: true });
      await until(() => sigs.length === 1, 5000, 'one signal');
      await held();
      assert.deepEqual(await c.publish(ch, { typing: 'me' }, { event: 'typing', ephemeral: true }), { ephemeral: true });
      await until(() => sigs.length === 2, 5000, 'two signals');
      assert.deepEqual(sigs.map((s) => [s.data.typing, s.event, s.transport]), [['api', undefined, t], ['me', 'typing', t]]);
      await sleep(200);
      assert.equal(c.cursor(ch), cursor, 'cursor unchanged');
      await publish(h, ch, { n: 2 });
      await until(() => got.length === 2, 5000, 'message 2');
      assert.deepEqual(got, [1, 2]);
      assert.deepEqual(errors, []);
      c.close();
    });

    it(`${t}, ${format}: a stream's end reaches the end handler once; the channel leaves the transport`, async () => {
      const ch = `demo:end-${t}-${format}`;
      const c = new Herald({ url: h.base, transports: [t], WebSocket, pollTimeoutSec: 2, sseHeartbeatMs: 1000, format });
      const ends = [], texts = [], states = [];
      c.on('state', (s) => states.push(s.state));
      const s = c.stream(ch, { onEnd: (e) => ends.push(e), onDelta: (d) => texts.push(d.delta) });
      await c.connect();
      const r = await request(h, 'POST', `/api/stream?channel=${ch}`, { body: 'Hello, world', headers: { 'Content-Type': 'text/plain' } });
      assert.equal(r.json.state, 'completed', r.text);
      const end = await s.done;
      assert.deepEqual([end.state, end.reason, end.offset, end.transport], ['completed', null, 2, t]);
      assert.equal(s.text, 'Hello, world');
      await sleep(500);
      assert.equal(ends.length, 1);
      assert.deepEqual(c.channels(), [], 'the stream left the client once ended');
      assert.ok(!states.includes('disconnected'), `no failure after the end: ${states}`);
      c.close();
    });
  }
});
