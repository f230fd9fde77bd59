// Presence, join/leave and ephemeral messages across two herald nodes on a real
// redis-server: signals travel as plain PUBLISHes (no script, no key written), so an
// ephemeral message or a join published on one node reaches subscribers on the other,
// never lands in history and moves no offset.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './lib/herald.mjs';
import * as J from './lib/jwt.mjs';
import * as C from './lib/cluster.mjs';
import { wsClient, subscribed, eventSource } from './lib/chat-clients.mjs';

const SECRET = J.secret();
const auth = (sub) => (sub ? J.bearer(J.hs256({ sub, exp: J.now(600) }, SECRET)) : {});
let seq = 0;
const fresh = () => `room:c${process.pid}x${++seq}`;
const NODE_ARGS = ['--token-key', `hs256:${SECRET}`, '--namespace', 'room:presence=true,join_leave=true,client_publish=true'];

before(() => {
  const missing = C.missingTools(['redis-server', 'redis-cli']);
  if (missing.length) throw new Error(`the cluster tests need ${missing.join(', ')} (scripts/setup.sh test installs them)`);
});

describe('two nodes on one Redis', () => {
  let redis, a, b;
  const open = [];
  before(async () => {
    redis = await C.startRedis();
    a = await C.startNode(redis.url, { args: NODE_ARGS });
    b = await C.startNode(redis.url, { args: NODE_ARGS });
    await C.waitReady(a);
    await C.waitReady(b);
  });
  after(async () => {
    for (const c of open) { try { c.sock?.terminate(); c.es?.close(); } catch { /* gone */ } }
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  it('an ephemeral message published on one node reaches WebSocket and SSE subscribers on the other, and Redis keeps nothing of it', async () => {
    const ch = fresh();
    const first = await H.publish(a, ch, 'kept');
    const ws = await wsClient(b); open.push(ws);
    await subscribed(ws, ch);
    const sse = await H.openSynced(b, { channels: ch });
    const keysBefore = (await C.redisKeys(redis.port, `herald:{${ch}}*`)).sort();
    const r = await H.request(a, 'POST', '/api/publish', { body: { channel: ch, data: { typing: 'x' }, ephemeral: true } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { ephemeral: true });
    const push = (await ws.until((m) => m.push)).push;
    assert.equal(push.ephemeral, true);
    assert.ok(!('offset' in push));
    const ev = await sse.reader.nextEvent();
    assert.equal(ev.id, undefined);
    assert.equal(JSON.parse(ev.data).ephemeral, true);
    // From a WebSocket client on node b to one on node a.
    const wa = await wsClient(a); open.push(wa);
    await subscribed(wa, ch);
    const wp = await ws.cmd({ method: 'publish', channel: ch, data: 'typing…', ephemeral: true });
    assert.deepEqual(wp.result, { ephemeral: true });
    assert.equal((await wa.until((m) => m.push)).push.data, 'typing…');
    // History and offsets as they were; no key added or changed for it.
    assert.deepEqual((await H.history(b, ch, {})).json.messages.map((m) => m.data), ['kept']);
    assert.deepEqual((await C.redisKeys(redis.port, `herald:{${ch}}*`)).sort(), keysBefore);
    const second = await H.publish(b, ch, 'kept 2');
    assert.equal(second.offset, first.offset + 1);
    sse.reader.close();
  });

  it('join and leave of a user on node a reach watchers on node b over WebSocket, SSE and long polling', async () => {
    const ch = fresh();
    const watcher = await wsClient(b, auth('watcher')); open.push(watcher);
    const sub = await subscribed(watcher, ch);
    const src = eventSource(b, ch); open.push(src);
    await src.opened;
    await H.sleep(200);
    const held = H.poll(b, ch, { since: sub.cursor, timeout: 10 });
    await H.waitFor(async () => (await H.metrics(b)).get('herald_connections{transport="poll"}') >= 1, { what: 'the poll held' });
    const alice = await wsClient(a, auth('alice')); open.push(alice);
    await subscribed(alice, ch);
    const join = (await watcher.until((m) => m.join && m.join.user === 'alice')).join;
    assert.equal(join.transport, 'ws');
    const p = await held;
    assert.ok(p.json.messages.some((m) => m.join && m.join.user === 'alice'), p.text);
    assert.equal(p.json.cursor, sub.cursor);
    await H.waitFor(() => src.got.some((e) => e.type === 'join' && e.data.user === 'alice'), { what: 'the EventSource join' });
    // Node a lists alice; node b's watcher is listed by b.
    const pa = await H.get(a, `/api/presence?channel=${ch}`);
    assert.ok(pa.json.clients.some((c) => c.user === 'alice'), pa.text);
    await alice.close();
    const leave = (await watcher.until((m) => m.leave && m.leave.user === 'alice')).leave;
    assert.equal(leave.client, join.client);
    await H.waitFor(() => src.got.some((e) => e.type === 'leave'), { what: 'the EventSource leave' });
    assert.deepEqual((await H.history(b, ch, {})).json.messages, []);
  });
});
