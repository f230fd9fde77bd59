// The client in Node against a real herald: every transport delivers, publishes, and
// resumes from its cursor on another transport without loss or duplicates.
// Run from tests/integration/client-js.test.mjs (needs HERALD_BIN or build/src/herald,
// and dist/ built by scripts/build-web.sh).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import { startHerald, publish, sleep } from '../../../tests/integration/lib/herald.mjs';
import { Herald } from '../dist/herald.js';

const require = createRequire(new URL('../../../tests/integration/package.json', import.meta.url));
const WebSocket = require('ws');

async function until(pred, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}`);
    await sleep(20);
  }
}

describe('herald JS client in Node', { timeout: 60000 }, () => {
  let h;
  before(async () => { h = await startHerald(['--namespace', 'demo:client_publish=true', '--sse-heartbeat', '1']); });
  after(async () => { await h?.stop(); });

  for (const format of ['raw', 'json']) for (const t of ['websocket', 'sse', 'poll']) {
    it(`${t}, format ${format}: receives, publishes, history`, async () => {
      const c = new Herald({ url: h.base, transports: [t], WebSocket, pollTimeoutSec: 2, sseHeartbeatMs: 1000, format });
      const got = [];
      const ch = `demo:node-${t}-${format}`;
      c.subscribe(ch, { message: (m) => got.push(m) });
      await c.connect();
      assert.equal(c.transport, t);
      await until(() => c.cursor(ch), 5000, 'first cursor');
      await publish(h, ch, { n: 1 });
      const r = await c.publish(ch, { n: 2 }, 'ev');
      assert.equal(r.offset, 2);
      await until(() => got.length >= 2, 5000, 'two messages');
      assert.deepEqual(got.map((m) => [m.offset, m.data.n, m.transport]), [[1, 1, t], [2, 2, t]]);
      // The raw formats carry the event name on SSE only, and the time nowhere.
      assert.equal(got[1].event, format === 'json' || t === 'sse' ? 'ev' : undefined);
      assert.equal(typeof got[1].time, format === 'json' ? 'number' : 'undefined');
      // Bytes of the wire element: raw WebSocket 2 + the data, raw SSE id + data lines.
      if (format === 'json') assert.ok(got[0].bytes > 50);
      else assert.equal(got[0].bytes, { websocket: 2 + 7, sse: 3 + 15 + 1 + 5 + 7 + 2, poll: got[0].bytes }[t]);
      c.close();
    });
  }

  for (const t of ['websocket', 'sse', 'poll']) {
    it(`${t}, raw: two channels on one connection, offsets and data per channel`, async () => {
      const c = new Herald({ url: h.base, transports: [t], WebSocket, pollTimeoutSec: 2, sseHeartbeatMs: 1000 });
      const got = [];
      const A = `demo:two-${t}-a`, B = `demo:two-${t}-b`;
      c.subscribe(A, { message: (m) => got.push([m.channel, m.offset, m.data]) });
      c.subscribe(B, { message: (m) => got.push([m.channel, m.offset, m.data]) });
      await c.connect();
      await until(() => c.cursor(A) && c.cursor(B), 5000, 'cursors');
      // Give SSE time to reopen with both channels (the set is fixed per stream).
      await sleep(300);
      for (const ch of [A, B, B, A]) await publish(h, ch, ch.slice(-1));
      await until(() => got.length >= 4, 5000, 'four messages');
      const per = (ch) => got.filter((g) => g[0] === ch).map((g) => [g[1], g[2]]);
      assert.deepEqual(per(A), [[1, 'a'], [2, 'a']]);
      assert.deepEqual(per(B), [[1, 'b'], [2, 'b']]);
      c.close();
    });
  }

  // With the default (raw) formats: the cursors the client derives by counting resume exactly.
  it('resumes across transports: ws → sse → poll, exactly once, in order', async () => {
    const ch = 'demo:node-switch';
    const got = [];
    let cursor;
    for (const [i, t] of ['websocket', 'sse', 'poll', 'websocket'].entries()) {
      const c = new Herald({ url: h.base, transports: [t], WebSocket, pollTimeoutSec: 2 });
      c.subscribe(ch, { message: (m) => got.push(m.offset) }, cursor);
      await c.connect();
      await until(() => c.cursor(ch), 5000, 'cursor');
      await publish(h, ch, { i });
      await until(() => got.length === 3 * i + 1, 5000, `message ${3 * i + 1}`);
      c.close();
      cursor = c.cursor(ch);
      // Published while nobody is connected: the next transport replays them.
      await publish(h, ch, { i, gap: 1 });
      await publish(h, ch, { i, gap: 2 });
    }
    assert.deepEqual(got, Array.from({ length: 10 }, (_, k) => k + 1));
  });

  it('a fresh subscription starts at subscribe(): what is published while falling back arrives', async () => {
    // A WebSocket that never opens and fails after 1.5 s, as behind a proxy that drops
    // upgrades: the client falls back to SSE meanwhile.
    class StalledWebSocket {
      constructor() { this.readyState = 0; setTimeout(() => { this.readyState = 3; this.onerror?.({}); this.onclose?.({ code: 1006, reason: '' }); }, 1500); }
      send() {}
      close() {}
    }
    const ch = 'demo:node-fallback-start';
    await publish(h, ch, { before: true });  // before subscribe(): not wanted
    const c = new Herald({ url: h.base, transports: ['websocket', 'sse'], WebSocket: StalledWebSocket, connectTimeoutMs: 1000 });
    const got = [];
    c.subscribe(ch, { message: (m) => got.push(m.data) });
    const connected = c.connect();
    await sleep(300);  // subscribe() is well past; the WebSocket still stalls
    assert.equal(c.state !== 'connected', true, 'still connecting');
    for (let n = 1; n <= 3; n++) await publish(h, ch, { n });
    await connected;
    assert.equal(c.transport, 'sse');
    await until(() => got.length >= 3, 5000, 'the three messages published during the fallback');
    await sleep(200);
    assert.deepEqual(got, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    c.close();
  });
});

// HS256 tokens made here with node's crypto (no JWT package).
const SECRET = 'client-test-secret-0123456789-abcdef';
function token(claims, secret = SECRET) {
  const b64 = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const part = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${part}.${crypto.createHmac('sha256', secret).update(part).digest('base64url')}`;
}

describe('herald JS client with tokens', { timeout: 90000 }, () => {
  let h;
  before(async () => {
    h = await startHerald(['--token-key', `hs256:${SECRET}`, '--namespace', 'priv:anonymous=false', '--sse-heartbeat', '1']);
  });
  after(async () => { await h?.stop(); });

  for (const t of ['websocket', 'sse', 'poll']) {
    it(`${t}: a token function is called again when the token expires; nothing is lost`, async () => {
      const ch = `priv:tok-${t}`;
      let calls = 0;
      // Each token lives 3 s: the connection outlives it and must come back with a new one.
      const getToken = () => {
        calls++;
        return token({ sub: 'u1', exp: Math.floor(Date.now() / 1000) + 3, subscribe: [ch], publish: [ch] });
      };
      const c = new Herald({ url: h.base, transports: [t], WebSocket, token: getToken, pollTimeoutSec: 1,
        sseHeartbeatMs: 1000, backoffBaseMs: 100 });
      const got = [];
      const errors = [];
      c.on('error', (e) => errors.push(e));
      c.subscribe(ch, { message: (m) => got.push(m.offset) });
      await c.connect();
      await until(() => c.cursor(ch), 5000, 'first cursor');
      await c.publish(ch, { n: 1 });  // publish with the token's grant
      for (let i = 2; i <= 6; i++) {
        await sleep(1000);
        await publish(h, ch, { n: i });
      }
      await until(() => got.length >= 6, 15000, 'six messages');
      await sleep(300);
      assert.deepEqual(got, [1, 2, 3, 4, 5, 6]);
      assert.ok(calls >= 2, `token function called ${calls} times`);
      assert.deepEqual(errors.map((e) => e.code), []);
      c.close();
    });
  }

  it('an invalid token stops the client with an error instead of retrying', async () => {
    for (const t of ['websocket', 'sse', 'poll']) {
      const c = new Herald({ url: h.base, transports: [t], WebSocket, token: token({ subscribe: ['priv:x'] }, 'wrong-secret-wrong-secret-wrong-secret') });
      const errors = [];
      c.on('error', (e) => errors.push(e));
      c.subscribe('priv:x', {});
      c.connect().catch(() => {});
      await until(() => c.state === 'closed', 5000, `${t} closed`);
      assert.equal(errors[0]?.code, 'token_invalid', `${t}: ${errors.map((e) => e.code)}`);
      c.close();
    }
  });
});
