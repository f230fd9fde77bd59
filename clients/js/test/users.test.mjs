// The backend's users API acting on a live client, against a real herald, on the
// transports it reaches: POST /api/subscribe adds a channel (announced byServer, its
// messages delivered, carried across a reconnect), POST /api/unsubscribe takes one off
// (announced, nothing of it follows, not resubscribed); neither is a failure.
// Run from tests/integration/client-js.test.mjs.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startHerald, publish, request, sleep } from '../../../tests/integration/lib/herald.mjs';
import { hs256, now } from '../../../tests/integration/lib/jwt.mjs';
import { Herald } from '../dist/herald.js';

const require = createRequire(new URL('../../../tests/integration/package.json', import.meta.url));
const WebSocket = require('ws');
const SECRET = 'users-api-client-secret-0123456789abcdef';

async function until(pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}`);
    await sleep(20);
  }
}

describe('herald JS client: the users API on a live connection', { timeout: 60000 }, () => {
  let h;
  before(async () => { h = await startHerald(['--token-key', `hs256:${SECRET}`, '--namespace', 'room:presence=true', '--sse-heartbeat', '1']); });
  after(async () => { await h?.stop(); });

  for (const t of ['websocket', 'sse']) {
    it(`${t}: /api/subscribe adds a channel, /api/unsubscribe removes one; a reconnect keeps the change`, async () => {
      const user = `u-${t}`, a = `room:a-${t}`, b = `room:b-${t}`;
      const c = new Herald({ url: h.base, transports: [t], WebSocket, sseHeartbeatMs: 1000, backoffBaseMs: 50, backoffMaxMs: 100,
        token: hs256({ sub: user, exp: now(600), subscribe: ['room:*'] }, SECRET) });
      const got = [], subs = [], unsubs = [], states = [];
      c.on('message', (m) => got.push(`${m.channel}#${m.offset}`));
      c.on('subscribed', (s) => subs.push([s.channel, s.byServer ?? false]));
      c.on('unsubscribed', (u) => unsubs.push(u.channel));
      c.on('state', (s) => states.push(s.state));
      c.subscribe(a, {});
      await c.connect();
      await until(() => subs.length === 1, 5000, 'a held');
      await publish(h, a, 1);

      const r = await request(h, 'POST', '/api/subscribe', { body: { user, channel: b } });
      assert.equal(r.status, 200, r.text);
      await until(() => subs.some(([ch, by]) => ch === b && by), 5000, 'b added by the server');
      assert.deepEqual(c.channels().sort(), [a, b]);
      await publish(h, b, 1);
      await publish(h, a, 2);
      await until(() => got.length === 3, 5000, 'three messages');

      const u = await request(h, 'POST', '/api/unsubscribe', { body: { user, channel: a } });
      assert.equal(u.status, 200, u.text);
      await until(() => unsubs.length === 1, 5000, 'a removed');
      assert.deepEqual(unsubs, [a]);
      assert.deepEqual(c.channels(), [b]);
      await publish(h, a, 3);
      await publish(h, b, 2);
      await until(() => got.includes(`${b}#2`), 5000, 'b#2');

      const held = () => subs.filter(([ch]) => ch === b).length;
      const before = held();
      c.drop();
      await until(() => c.state === 'connected' && held() > before, 5000, 'b held again');
      await publish(h, b, 3);
      await until(() => got.includes(`${b}#3`), 5000, 'b#3');
      await sleep(200);
      assert.deepEqual(got.sort(), [`${a}#1`, `${a}#2`, `${b}#1`, `${b}#2`, `${b}#3`].sort(), 'nothing lost, doubled, or of the left channel');
      assert.deepEqual(c.channels(), [b], 'the left channel is not resubscribed');
      assert.equal(states.filter((s) => s === 'disconnected').length, 1, `one failure: the drop (${states})`);
      c.close();
    });
  }
});
