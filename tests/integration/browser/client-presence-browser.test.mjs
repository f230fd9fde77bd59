// Presence, join/leave and typing with the browser client (web/herald.js) in headless
// Chromium: two pages (alice and bob, each with a token) on the same transport, for each
// transport. bob's arrival reaches alice as a join (and in watchPresence()), his typing
// indicator (an ephemeral publish from the page) as a signal that leaves alice's cursor
// where it was, his next message at the next offset, once; his departure as a leave.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, sleep } from '../lib/herald.mjs';
import { buildWeb, launchBrowser, WEB_DIR } from '../lib/browser.mjs';
import { hs256, now } from '../lib/jwt.mjs';

const SECRET = 'presence-browser-secret-0123456789abcdef';
const ARGS = ['--web-root', WEB_DIR, '--token-key', `hs256:${SECRET}`, '--sse-heartbeat', '2',
  '--namespace', 'chat:presence=true,join_leave=true,client_publish=true'];
const token = (sub) => hs256({ sub, exp: now(600), subscribe: ['chat:*'], publish: ['chat:*'] }, SECRET);

/** In the page: a client for `user` on `transport`, tracking presence and signals of `channel`. */
async function join(page, user, channel, transport) {
  await page.evaluate(async ({ channel, transport, tok }) => {
    const { Herald } = await import('/herald.js');
    window.P = { joins: [], leaves: [], signals: [], messages: [], members: [] };
    const c = new Herald({ transports: [transport], token: tok, backoffBaseMs: 100, pollTimeoutSec: 5, sseHeartbeatMs: 2000 });
    const tracker = c.watchPresence(channel);
    tracker.on('change', (list) => { P.members = list.map((m) => m.user).sort(); });
    c.subscribe(channel, {
      message: (m) => P.messages.push({ offset: m.offset, data: m.data }),
      signal: (s) => P.signals.push({ event: s.event, data: s.data, transport: s.transport }),
      join: (e) => P.joins.push(e.user),
      leave: (e) => P.leaves.push(e.user),
    });
    window.C = c;
    await c.connect();
    for (let i = 0; i < 250 && !c.cursor(channel); i++) await new Promise((r) => setTimeout(r, 20));
  }, { channel, transport, tok: token(user) });
}

const state = (page) => page.evaluate(() => ({ ...P }));

async function waitFor(page, pred, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const s = await state(page);
    if (pred(s)) return s;
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}: ${JSON.stringify(s)}`);
    await sleep(40);
  }
}

describe('presence, join/leave and typing in headless Chromium', { timeout: 180000 }, () => {
  let browser, h;
  before(async () => {
    buildWeb();
    browser = await launchBrowser();
    h = await startHerald(ARGS);
  });
  after(async () => {
    await h?.stop();
    await browser?.close();
  });

  for (const t of ['websocket', 'sse', 'poll']) {
    it(`${t}: join, typing (ephemeral, cursor unchanged), message at the next offset, leave`, async () => {
      const ch = `chat:room-${t}`;
      const alice = await browser.newPage();
      const bob = await browser.newPage();
      await alice.goto(`${h.base}/healthz`);
      await bob.goto(`${h.base}/healthz`);
      await join(alice, 'alice', ch, t);
      await alice.evaluate((ch) => C.publish(ch, { text: 'first' }), ch);
      await waitFor(alice, (s) => s.messages.length === 1, 5000, 'alice\'s own message');
      await join(bob, 'bob', ch, t);
      let a = await waitFor(alice, (s) => s.joins.includes('bob') && s.members.includes('bob'), 10000, 'bob\'s join');
      assert.deepEqual(a.members, ['alice', 'bob']);
      // bob sees alice from presence (he does not get a join for her: she was there).
      await waitFor(bob, (s) => s.members.includes('alice'), 5000, 'alice in bob\'s presence');

      const cursorBefore = await alice.evaluate((ch) => C.cursor(ch), ch);
      // A poller gets only the signals sent while one of its polls is held (one sent in
      // the gap between two polls is gone), so bob repeats it, as a typing indicator does.
      for (let k = 0; k < 20 && (await state(alice)).signals.length === 0; k++) {
        await bob.evaluate((ch) => C.publish(ch, { user: 'bob' }, { event: 'typing', ephemeral: true }), ch);
        await sleep(250);
      }
      a = await waitFor(alice, (s) => s.signals.length >= 1, 5000, 'the typing signal');
      assert.deepEqual(a.signals[0], { event: 'typing', data: { user: 'bob' }, transport: t });
      if (t !== 'poll') assert.equal(a.signals.length, 1, 'one signal sent, one received');
      const signals = a.signals.length;
      await sleep(300);
      assert.equal(await alice.evaluate((ch) => C.cursor(ch), ch), cursorBefore, 'the signal did not move the cursor');
      const r = await bob.evaluate((ch) => C.publish(ch, { text: 'hello' }), ch);
      assert.equal(r.offset, 2);
      a = await waitFor(alice, (s) => s.messages.length === 2, 5000, 'bob\'s message');
      assert.deepEqual(a.messages.map((m) => m.offset), [1, 2], 'offsets once, in order');
      assert.notEqual(await alice.evaluate((ch) => C.cursor(ch), ch), cursorBefore, 'a publication moves it');

      // bob leaves (his page closes): a poller is present 5 s after its last poll.
      await bob.close();
      if (t === 'poll') {
        // A poller gets a signal only while one of its polls is held: a leave sent in the
        // round trip between two of alice's polls does not reach her (docs/presence.md,
        // "Bounds and failures"). So bob's departure is checked where it is kept, in
        // presence, and his leave, when it came, as the others.
        let gone = null;
        for (const end = Date.now() + 15000; Date.now() < end;) {
          a = await state(alice);
          if (a.leaves.includes('bob')) break;
          const users = await alice.evaluate((ch) => C.presence(ch).then((p) => p.clients.map((x) => x.user)), ch);
          if (!users.includes('bob')) gone ??= Date.now();
          if (gone && Date.now() - gone > 2000) break;  // gone from presence, no leave came
          await sleep(200);
        }
        a = await state(alice);
        assert.ok(a.leaves.includes('bob') || gone, `bob still present: ${JSON.stringify(a)}`);
        if (a.leaves.includes('bob')) assert.deepEqual(a.members, ['alice']);
        else console.log('# poll: bob\'s leave fell between two of alice\'s polls; presence no longer lists him');
      } else {
        a = await waitFor(alice, (s) => s.leaves.includes('bob'), 5000, 'bob\'s leave');
        assert.deepEqual(a.members, ['alice']);
      }
      assert.equal(a.signals.length, signals);
      assert.deepEqual(alice.errors, []);
      await alice.close();
    });
  }

  it('presence() on each transport: the WebSocket command, else GET /api/presence', async () => {
    const ch = 'chat:presence-query';
    const page = await browser.newPage();
    await page.goto(`${h.base}/healthz`);
    const got = await page.evaluate(async ({ ch, toks }) => {
      const { Herald } = await import('/herald.js');
      const out = {};
      const clients = [];
      for (const [i, t] of ['websocket', 'sse', 'poll'].entries()) {
        const c = new Herald({ transports: [t], token: toks[i], pollTimeoutSec: 5 });
        c.subscribe(ch, {});
        await c.connect();
        for (let k = 0; k < 250 && !c.cursor(ch); k++) await new Promise((r) => setTimeout(r, 20));
        clients.push(c);
      }
      await new Promise((r) => setTimeout(r, 300));
      for (const c of clients) {
        const p = await c.presence(ch);
        // A poller's recent polls linger 5 s each: count users, and connections at least one each.
        out[c.transport] = { users: p.users, connections: p.connections >= 3, names: [...new Set(p.clients.map((x) => x.user))].sort() };
      }
      for (const c of clients) c.close();
      return out;
    }, { ch, toks: ['ann', 'ben', 'cat'].map(token) });
    for (const t of ['websocket', 'sse', 'poll']) {
      assert.deepEqual(got[t], { users: 3, connections: true, names: ['ann', 'ben', 'cat'] }, `${t}: ${JSON.stringify(got)}`);
    }
    await page.close();
  });
});
