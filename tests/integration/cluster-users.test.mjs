// The users API across two herald nodes on a real redis-server (POST /api/disconnect,
// /api/subscribe, /api/unsubscribe act on every live connection of a user on every
// node), and personal channels (a namespace with personal=true: inbox:<sub> is its
// token's own). Clients: `ws` and the project's raw SSE reader.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './lib/herald.mjs';
import * as J from './lib/jwt.mjs';
import * as C from './lib/cluster.mjs';
import { wsClient, subscribed } from './lib/chat-clients.mjs';

const SECRET = J.secret();
const auth = (sub, claims = {}) => J.bearer(J.hs256({ sub, exp: J.now(600), ...claims }, SECRET));
let seq = 0;
const fresh = (ns = 'room') => `${ns}:u${process.pid}x${++seq}`;
const user = () => `user${process.pid}x${++seq}`;
const NODE_ARGS = ['--token-key', `hs256:${SECRET}`, '--namespace', 'inbox:personal=true'];
const api = (h, path, body) => H.request(h, 'POST', path, { body });

before(() => {
  const missing = C.missingTools(['redis-server', 'redis-cli']);
  if (missing.length) throw new Error(`the cluster tests need ${missing.join(', ')} (scripts/setup.sh test installs them)`);
});

describe('users the backend can reach, on two nodes', () => {
  let redis, a, b;
  const open = [];
  before(async () => {
    redis = await C.startRedis();
    a = await C.startNode(redis.url, { args: NODE_ARGS, threads: 2 });
    b = await C.startNode(redis.url, { args: NODE_ARGS, threads: 2 });
    await C.waitReady(a);
    await C.waitReady(b);
  });
  after(async () => {
    for (const c of open) { try { c.sock?.terminate(); c.reader?.close(); } catch { /* gone */ } }
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  it('POST /api/disconnect on node a closes the user\'s WebSocket on a, its SSE stream and held long poll on b, with a code that says whether to reconnect; others stay', async () => {
    const u = user();
    const ch = fresh();
    const ws = await wsClient(a, auth(u)); open.push(ws);
    await subscribed(ws, ch);
    const { reader } = await H.openSynced(b, { channels: ch, headers: auth(u) }); open.push({ reader });
    const other = await wsClient(b, auth(user())); open.push(other);
    await subscribed(other, ch);
    const closed = new Promise((resolve) => ws.sock.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    const held = H.poll(b, ch, { timeout: 20, headers: auth(u) });
    await H.waitFor(async () => (await H.metrics(b)).get('herald_connections{transport="poll"}') >= 1, { what: 'the poll held' });

    const r = await api(a, '/api/disconnect', { user: u, reason: 'account suspended' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { connections: 1, other_nodes: true });
    const p = await held;
    assert.equal(p.status, 403, p.text);
    assert.deepEqual(p.json.error, { code: 'disconnected', message: 'account suspended', close_code: 4105, reconnect: false });
    assert.ok(p.elapsed < 5000, 'answered at once, not at the timeout');
    const c = await H.withTimeout(closed, 5000, 'the WebSocket close');
    assert.equal(c.code, 4105, 'do not reconnect (4100-4199)');
    assert.equal(c.reason, 'account suspended');
    const ev = await reader.until((e) => e.event === 'disconnect');
    assert.deepEqual(JSON.parse(ev.at(-1).data), { code: 4105, reason: 'account suspended', reconnect: false });
    await reader.waitClosed();
    // Another user is unaffected.
    await H.publish(b, ch, 'still here');
    assert.equal((await other.until((m) => m.push)).push.data, 'still here');
  });

  it('"reconnect": true (or a code 4000-4099) tells the client to come back; an unknown user is 200 with nothing affected', async () => {
    const u = user();
    const ws = await wsClient(b, auth(u)); open.push(ws);
    const closed = new Promise((resolve) => ws.sock.on('close', (code) => resolve(code)));
    const r = await api(a, '/api/disconnect', { user: u, reconnect: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.connections, 0, 'none on node a');
    assert.equal(await H.withTimeout(closed, 5000, 'close'), 4005);
    const ws2 = await wsClient(a, auth(u)); open.push(ws2);
    const closed2 = new Promise((resolve) => ws2.sock.on('close', (code) => resolve(code)));
    assert.equal((await api(b, '/api/disconnect', { user: u, code: 4042 })).status, 200);
    assert.equal(await H.withTimeout(closed2, 5000, 'close'), 4042);
    const none = await api(a, '/api/disconnect', { user: 'nobody-at-all' });
    assert.deepEqual(none.json, { connections: 0, other_nodes: true });
  });

  it('bad bodies get clear errors', async () => {
    for (const [path, body, code] of [
      ['/api/disconnect', '{', 'bad_json'],
      ['/api/disconnect', '[]', 'bad_request'],
      ['/api/disconnect', { user: '' }, 'bad_request'],
      ['/api/disconnect', { user: 'x', code: 1000 }, 'bad_request'],
      ['/api/disconnect', { user: 'x', reason: 'r'.repeat(121) }, 'bad_request'],
      ['/api/disconnect', { user: 'x', reconnect: 'yes' }, 'bad_request'],
      ['/api/subscribe', { user: 'x' }, 'bad_request'],
      ['/api/subscribe', { user: 'x', channel: 'bad channel' }, 'invalid_channel'],
      ['/api/unsubscribe', { channel: 'room:x' }, 'bad_request'],
    ]) {
      const r = await api(a, path, body);
      assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.json.error.code, code, `${path} ${JSON.stringify(body)}`);
    }
    const g = await H.request(a, 'GET', '/api/disconnect');
    assert.equal(g.status, 405);
  });

  it('POST /api/subscribe and /api/unsubscribe act on the user\'s WebSockets on both nodes; SSE streams are told to reopen', async () => {
    const u = user();
    const ch = fresh();
    const wa = await wsClient(a, auth(u)); open.push(wa);
    const wb = await wsClient(b, auth(u)); open.push(wb);
    const r = await api(a, '/api/subscribe', { user: u, channel: ch });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.connections, 1);
    for (const w of [wa, wb]) {
      const res = await w.until((m) => m.id === null && m.result?.channel === ch, 5000, 'the server-side subscribe result');
      assert.equal(typeof res.result.cursor, 'string');
    }
    await H.publish(a, ch, 'to both');
    assert.equal((await wa.until((m) => m.push)).push.data, 'to both');
    assert.equal((await wb.until((m) => m.push)).push.data, 'to both');
    // Subscribing again changes nothing.
    assert.equal((await api(b, '/api/subscribe', { user: u, channel: ch })).json.connections, 0);

    const { reader } = await H.openSynced(b, { channels: ch, headers: auth(u) }); open.push({ reader });
    const un = await api(b, '/api/unsubscribe', { user: u, channel: ch });
    assert.equal(un.status, 200, un.text);
    assert.equal(un.json.connections, 2, 'the WebSocket and the SSE stream on node b');
    for (const w of [wa, wb]) await w.until((m) => m.unsubscribed?.channel === ch, 5000, 'the unsubscribed push');
    const ev = await reader.until((e) => e.event === 'resubscribe');
    assert.deepEqual(JSON.parse(ev.at(-1).data), { unsubscribe: ch });
    await reader.waitClosed();
    const count = (w) => w.messages.filter((m) => m.push).length;
    const before = [count(wa), count(wb)];
    await H.publish(a, ch, 'after');
    await H.sleep(300);
    assert.deepEqual([count(wa), count(wb)], before, 'no push after the unsubscribe');
    // The connections stay open and usable.
    assert.ok((await wa.cmd({ method: 'ping' })).result);
  });

  it('personal channels: inbox:<sub> for its own token without a grant, refused to another token and to anonymous clients', async () => {
    const u = user();
    const mine = `inbox:${u}`;
    const ws = await wsClient(a, auth(u)); open.push(ws);
    await subscribed(ws, mine);
    const { reader } = await H.openSynced(b, { channels: mine, headers: auth(u) }); open.push({ reader });
    await H.publish(b, mine, 'for you');
    assert.equal((await ws.until((m) => m.push)).push.data, 'for you');
    assert.equal(JSON.parse((await reader.until((e) => e.data !== undefined)).at(-1).data).data, 'for you');

    const other = await wsClient(a, auth(user())); open.push(other);
    const refused = await other.cmd({ method: 'subscribe', channel: mine });
    assert.equal(refused.error?.code, 'forbidden', JSON.stringify(refused));
    const anon = await H.request(b, 'GET', `/sse?channel=${mine}`);
    assert.equal(anon.status, 401, anon.text);
    const poll = await H.poll(a, mine, { timeout: 1, headers: auth(user()) });
    assert.equal(poll.status, 403, poll.text);
    // A grant still opens it to another token (e.g. a support agent).
    const agent = await wsClient(b, auth('agent', { subscribe: ['inbox:*'] })); open.push(agent);
    await subscribed(agent, mine);
  });
});
