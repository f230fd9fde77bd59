// Presence, join/leave and ephemeral messages on one node, over every transport, with
// clients this project did not write (node `ws`, the `eventsource` package, curl) beside
// its own raw SSE reader and long polls:
//   - "ephemeral": true on /api/publish, /api/broadcast, /publish and WebSocket publish:
//     delivered live, no offset, never in history, no cursor moves;
//   - GET /api/presence and the WebSocket presence command: users (three tabs count
//     once), connections, anonymous clients counted and not listed, the listing's limit;
//   - join and leave on SSE, WebSocket and long polling: once per user, on its first and
//     last connection, no offset, no id line, cursors unchanged; a position read
//     (GET /poll, no since, timeout=0) is no member and joins nothing;
//   - bad input: presence where the namespace has none, invalid or missing channels,
//     a bad "ephemeral", the reserved event names.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './lib/herald.mjs';
import * as J from './lib/jwt.mjs';
import { wsClient, subscribed, eventSource } from './lib/chat-clients.mjs';

const SECRET = J.secret();
const token = (sub) => J.hs256({ sub, exp: J.now(600) }, SECRET);
const auth = (sub) => (sub ? J.bearer(token(sub)) : {});
let seq = 0;
const fresh = (ns = 'room') => `${ns}:r${process.pid}x${++seq}`;

async function presence(h, channel, extra = '') {
  return H.get(h, `/api/presence?channel=${encodeURIComponent(channel)}${extra}`);
}

describe('presence, join/leave and ephemeral messages (memory broker)', () => {
  let h;
  const open = [];
  before(async () => {
    h = await H.startHerald([
      '--token-key', `hs256:${SECRET}`,
      '--namespace', 'room:presence=true,join_leave=true,client_publish=true',
      '--namespace', 'count:presence=true',
      '--namespace', 'quiet:client_publish=true',
    ]);
  });
  after(async () => {
    for (const c of open) { try { c.sock?.terminate(); c.es?.close(); } catch { /* gone */ } }
    await h?.stop();
  });

  it('an ephemeral /api/publish reaches WebSocket, SSE and long-poll subscribers live, with no offset, and leaves history and cursors as they were', async () => {
    const ch = fresh('quiet');
    const first = await H.publish(h, ch, 'kept 1');
    const ws = await wsClient(h); open.push(ws);
    const sub = await subscribed(ws, ch);
    const src = eventSource(h, ch); open.push(src);
    await src.opened;
    const sse = await H.openSynced(h, { channels: ch });
    const held = H.poll(h, ch, { since: first.cursor, timeout: 10 });
    await H.waitFor(async () => (await H.metrics(h)).get('herald_connections{transport="poll"}') >= 1, { what: 'the poll held' });
    await H.sleep(200);  // the EventSource's stream is synced too

    const r = await H.request(h, 'POST', '/api/publish', { body: { channel: ch, data: { typing: 'alice' }, event: 'typing', ephemeral: true } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { ephemeral: true });

    const push = (await ws.until((m) => m.push)).push;
    assert.equal(push.ephemeral, true);
    assert.deepEqual(push.data, { typing: 'alice' });
    assert.equal(push.event, 'typing');
    assert.ok(!('offset' in push) && !('cursor' in push), JSON.stringify(push));

    const b = await sse.reader.nextEvent();
    assert.equal(b.id, undefined, 'no id line: Last-Event-ID stays where it was');
    assert.equal(b.event, 'typing');
    assert.deepEqual(JSON.parse(b.data).data, { typing: 'alice' });

    await H.waitFor(() => src.got.length === 1, { what: 'the EventSource typing event' });
    assert.equal(src.got[0].type, 'typing');
    assert.equal(src.got[0].data.ephemeral, true);

    const p = await held;
    assert.equal(p.status, 200, p.text);
    assert.equal(p.json.messages.length, 1);
    assert.equal(p.json.messages[0].ephemeral, true);
    assert.ok(!('offset' in p.json.messages[0]));
    assert.equal(p.json.cursor, first.cursor, 'the poll cursor did not move');

    // History holds the publications only; the next offset is 2, not 3.
    const hist = await H.history(h, ch, { since: undefined });
    assert.deepEqual(hist.json.messages.map((m) => m.data), ['kept 1']);
    const second = await H.publish(h, ch, 'kept 2');
    assert.equal(second.offset, 2);
    const next = (await ws.until((m) => m.push && m.push.offset === 2)).push;
    assert.equal(next.data, 'kept 2');
    assert.ok(sub.cursor);
    // The SSE stream goes on with an id after offset 2, and resuming from the position the
    // ephemeral event left (none) replays only publications.
    const b2 = await sse.reader.nextEvent();
    assert.equal(b2.id, second.cursor);
    const replay = await H.poll(h, ch, { since: first.cursor, timeout: 0 });
    assert.deepEqual(replay.json.messages.map((m) => m.offset), [2]);
    await H.waitFor(() => src.got.length === 2, { what: 'the EventSource message' });
    assert.equal(src.got[1].type, 'message');
    sse.reader.close();
  });

  it('ephemeral on /api/broadcast, client /publish and WebSocket publish: live to every subscriber, never in history', async () => {
    const a = fresh(), b = fresh();
    const ws = await wsClient(h); open.push(ws);
    await subscribed(ws, a);
    await subscribed(ws, b);
    const br = await H.request(h, 'POST', '/api/broadcast', { body: { channels: [a, b], data: 'both', ephemeral: true } });
    assert.equal(br.status, 200, br.text);
    assert.deepEqual(br.json, { results: [{ channel: a, ephemeral: true }, { channel: b, ephemeral: true }] });
    const cp = await H.request(h, 'POST', '/publish', { body: { channel: a, data: 'from an SSE client', ephemeral: true } });
    assert.equal(cp.status, 200, cp.text);
    assert.deepEqual(cp.json, { ephemeral: true });
    const wp = await ws.cmd({ method: 'publish', channel: b, data: { typing: true }, ephemeral: true });
    assert.deepEqual(wp.result, { ephemeral: true });
    await H.waitFor(() => ws.messages.filter((m) => m.push).length === 4, { what: 'four ephemeral pushes' });
    const pushes = ws.messages.filter((m) => m.push).map((m) => m.push);
    assert.ok(pushes.every((p) => p.ephemeral === true && !('offset' in p)));
    assert.deepEqual(pushes.map((p) => p.channel).sort(), [a, a, b, b].sort());
    for (const c of [a, b]) {
      const hist = await H.history(h, c, {});
      assert.deepEqual(hist.json.messages, [], `history of ${c}`);
    }
    // Where clients may not publish, an ephemeral client publish is refused like any other.
    const refused = await H.request(h, 'POST', '/publish', { body: { channel: fresh('count'), data: 1, ephemeral: true } });
    assert.equal(refused.status, 403, refused.text);
    const m = await H.metrics(h);
    assert.ok(m.get('herald_ephemeral_publishes_total') >= 4);
  });

  it('three tabs of one user count once; anonymous clients are counted, not listed; every transport is named', async () => {
    const ch = fresh('count');
    const tabs = [];
    for (let i = 0; i < 3; i++) { const c = await wsClient(h, auth('alice')); open.push(c); tabs.push(c); await subscribed(c, ch); }
    const bob = eventSource(h, ch, auth('bob')); open.push(bob);
    await bob.opened;
    const anon = await wsClient(h); open.push(anon);
    await subscribed(anon, ch);
    const anonSse = await H.openSynced(h, { channels: ch });
    const carol = H.poll(h, ch, { timeout: 3, headers: auth('carol') });
    await H.waitFor(async () => (await presence(h, ch)).json.connections === 7, { what: '7 connections in presence' });

    const r = await presence(h, ch);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.users, 3, r.text);
    assert.equal(r.json.connections, 7);
    assert.equal(r.json.anonymous, 2);
    assert.equal(r.json.clients.length, 5, 'anonymous clients are not listed');
    const byUser = {};
    for (const c of r.json.clients) (byUser[c.user] ??= []).push(c.transport);
    assert.deepEqual(byUser.alice, ['ws', 'ws', 'ws']);
    assert.deepEqual(byUser.bob, ['sse']);
    assert.deepEqual(byUser.carol, ['poll']);
    assert.equal(new Set(r.json.clients.map((c) => c.client)).size, 5, 'one id per connection');

    // The WebSocket command answers the same; curl reads the API.
    const w = await anon.cmd({ method: 'presence', channel: ch });
    assert.equal(w.result.users, 3);
    assert.equal(w.result.connections, 7);
    const c = await H.curlHttp(h, 'GET', `/api/presence?channel=${ch}&limit=2`);
    assert.equal(c.status, 200);
    assert.equal(c.json.clients.length, 2);
    assert.equal(c.json.truncated, true);
    assert.equal(c.json.users, 3, 'counts cover everyone whatever the limit');

    // Two tabs go: alice is still there once.
    await tabs[0].close();
    await tabs[1].close();
    await H.waitFor(async () => (await presence(h, ch)).json.connections === 5, { what: '5 connections' });
    assert.equal((await presence(h, ch)).json.users, 3);
    await tabs[2].close();
    bob.es.close();
    anonSse.reader.close();
    await H.waitFor(async () => (await presence(h, ch)).json.users === 1, { what: 'carol alone' });
    await carol;
  });

  it('join and leave reach WebSocket, SSE and long-poll watchers once per user, without offsets or cursor moves', async () => {
    const ch = fresh();
    await H.publish(h, ch, 'before');
    const watcher = await wsClient(h, auth('watcher')); open.push(watcher);
    const sub = await subscribed(watcher, ch);
    const sse = await H.openSynced(h, { channels: ch, headers: auth('sse-watcher') });
    const src = eventSource(h, ch); open.push(src);
    await src.opened;
    await H.sleep(200);
    // The SSE watcher's arrival reached the WebSocket one.
    const sseJoin = (await watcher.until((m) => m.join && m.join.user === 'sse-watcher', 5000, 'the SSE watcher join')).join;
    assert.equal(sseJoin.transport, 'sse');
    assert.equal(sseJoin.channel, ch);

    const pollFirst = H.poll(h, ch, { since: sub.cursor, timeout: 10 });
    await H.waitFor(async () => (await H.metrics(h)).get('herald_connections{transport="poll"}') >= 1, { what: 'the poll held' });

    const tabs = [];
    for (let i = 0; i < 3; i++) { const c = await wsClient(h, auth('alice')); open.push(c); tabs.push(c); await subscribed(c, ch); }
    const join = (await watcher.until((m) => m.join && m.join.user === 'alice')).join;
    assert.deepEqual(Object.keys(join).sort(), ['channel', 'client', 'transport', 'user']);
    assert.equal(join.transport, 'ws');
    // Nobody gets its own join: not the watcher, not alice's first tab.
    await H.sleep(200);
    assert.ok(!watcher.messages.some((m) => m.join && m.join.user === 'watcher'), JSON.stringify(watcher.messages));
    assert.ok(!tabs[0].messages.some((m) => m.join && m.join.user === 'alice'), JSON.stringify(tabs[0].messages));

    // SSE: event: join, no id line.
    const blocks = await sse.reader.until((b) => b.event === 'join' && JSON.parse(b.data).user === 'alice');
    const jb = blocks[blocks.length - 1];
    assert.equal(jb.id, undefined);
    assert.equal(JSON.parse(jb.data).client, join.client);
    // Long poll: the held poll returns with the join element and the same cursor.
    const p = await pollFirst;
    assert.equal(p.status, 200, p.text);
    const pj = p.json.messages.find((m) => m.join && m.join.user === 'alice');
    assert.ok(pj, p.text);
    assert.equal(p.json.cursor, sub.cursor);

    // Two more tabs joined nothing; the first two leaving leaves nothing.
    await tabs[0].close();
    await tabs[1].close();
    await H.sleep(300);
    assert.equal(watcher.messages.filter((m) => m.join && m.join.user === 'alice').length, 1);
    assert.equal(watcher.messages.filter((m) => m.leave && m.leave.user === 'alice').length, 0);
    await tabs[2].close();
    const leave = (await watcher.until((m) => m.leave && m.leave.user === 'alice')).leave;
    assert.equal(leave.channel, ch);
    const lb = await sse.reader.until((b) => b.event === 'leave');
    assert.equal(lb[lb.length - 1].id, undefined);
    await H.waitFor(() => src.got.some((e) => e.type === 'leave' && e.data.user === 'alice'), { what: 'the EventSource leave' });
    assert.ok(src.got.some((e) => e.type === 'join' && e.data.user === 'alice'));

    // Anonymous clients come and go silently.
    const before = watcher.messages.length;
    const anon = await wsClient(h); open.push(anon);
    await subscribed(anon, ch);
    await anon.close();
    await H.sleep(300);
    assert.equal(watcher.messages.length, before, JSON.stringify(watcher.messages.slice(before)));

    // Nothing of it is in history, and the next publication has offset 2.
    assert.deepEqual((await H.history(h, ch, {})).json.messages.map((m) => m.data), ['before']);
    assert.equal((await H.publish(h, ch, 'after')).offset, 2);
    sse.reader.close();
  });

  it('a position read (GET /poll?timeout=0 without a cursor) is no presence: no join, no leave, not listed; a held poll is', async () => {
    const ch = fresh();
    const watcher = await wsClient(h, auth('watcher3')); open.push(watcher);
    await subscribed(watcher, ch);
    const agent = H.keepAliveAgent(1);
    for (let i = 0; i < 3; i++) {
      const r = await H.poll(h, ch, { timeout: 0, agent, headers: auth('reader') });
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json.cursor, 'the reply carries the position');
    }
    assert.equal((await presence(h, ch)).json.users, 1, 'only the watcher is present');
    // A real poller, held, joins (the negative above is not for want of presence).
    const held = H.poll(h, ch, { timeout: 2, agent, headers: auth('holder') });
    await watcher.until((m) => m.join && m.join.user === 'holder', 3000, 'the held poller join');
    await held;
    await H.sleep(5800);  // past the 5 s linger of every poll above
    const joins = watcher.messages.filter((m) => m.join).map((m) => m.join.user);
    const leaves = watcher.messages.filter((m) => m.leave).map((m) => m.leave.user);
    assert.deepEqual(joins, ['holder'], JSON.stringify(watcher.messages));
    assert.deepEqual(leaves, ['holder'], 'the held poller leaves after its linger; the reads never joined');
    agent.destroy();
  });

  it('a user polling in a loop stays present between polls: one join, and one leave after it stops', async () => {
    const ch = fresh();
    const watcher = await wsClient(h, auth('watcher2')); open.push(watcher);
    await subscribed(watcher, ch);
    const agent = H.keepAliveAgent(1);
    let cursor;
    for (let i = 0; i < 4; i++) {
      const r = await H.poll(h, ch, { since: cursor, timeout: 0, agent, headers: auth('poller') });
      assert.equal(r.status, 200, r.text);
      cursor = r.json.cursor;
      await H.sleep(100);
    }
    await H.sleep(300);
    assert.equal(watcher.messages.filter((m) => m.join && m.join.user === 'poller').length, 1, JSON.stringify(watcher.messages));
    assert.equal(watcher.messages.filter((m) => m.leave).length, 0, 'no leave between polls');
    assert.equal((await presence(h, ch)).json.users, 2);
    const t0 = Date.now();
    await watcher.until((m) => m.leave && m.leave.user === 'poller', 9000, 'the poller leave');
    const waited = Date.now() - t0;
    assert.ok(waited >= 3500 && waited < 8000, `the leave came ${waited} ms after the last poll (linger 5 s)`);
    agent.destroy();
  });

  it('a position read (GET /poll without since, timeout=0) joins nothing, on WebSocket nor SSE; a held poller joins', async () => {
    const ch = fresh();
    const watcher = await wsClient(h, auth('watcher3')); open.push(watcher);
    await subscribed(watcher, ch);
    const sse = await H.openSynced(h, { channels: ch, headers: auth('sse-watcher3') });
    await watcher.until((m) => m.join && m.join.user === 'sse-watcher3', 5000, 'the SSE watcher join');

    const read = await H.poll(h, ch, { timeout: 0, headers: auth('reader') });
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(read.json.messages, []);
    assert.ok(read.json.cursor);
    assert.equal((await presence(h, ch)).json.users, 2, 'the reader is not listed');

    const held = H.poll(h, ch, { since: read.json.cursor, timeout: 10, headers: auth('holder') });
    const join = (await watcher.until((m) => m.join && m.join.user === 'holder', 5000, 'the held poller join')).join;
    assert.equal(join.transport, 'poll');
    const blocks = await sse.reader.until((b) => b.event === 'join' && JSON.parse(b.data).user === 'holder');
    // Joins come in order: had the read joined, its join would be before the holder's.
    assert.ok(!watcher.messages.some((m) => m.join && m.join.user === 'reader'), JSON.stringify(watcher.messages));
    assert.ok(!blocks.some((b) => b.event === 'join' && JSON.parse(b.data).user === 'reader'), JSON.stringify(blocks));
    await H.publish(h, ch, 'release');
    assert.equal((await held).status, 200);
    sse.reader.close();
  });

  it('bad input gets a clear error: presence where the namespace has none, bad channels, bad "ephemeral", reserved event names', async () => {
    const quiet = await presence(h, 'quiet:x');
    assert.equal(quiet.status, 403, quiet.text);
    assert.equal(quiet.json.error.code, 'presence_disabled');
    assert.match(quiet.json.error.message, /presence=true/);
    const nons = await presence(h, 'plain');
    assert.equal(nons.json.error.code, 'presence_disabled');
    const invalid = await presence(h, 'bad name');
    assert.equal(invalid.status, 400);
    assert.equal(invalid.json.error.code, 'invalid_channel');
    const missing = await H.get(h, '/api/presence');
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error.code, 'bad_request');
    const badLimit = await presence(h, 'room:x', '&limit=-1');
    assert.equal(badLimit.status, 400);
    const post = await H.request(h, 'POST', '/api/presence?channel=room:x', { body: '{}' });
    assert.equal(post.status, 405);
    // A channel nobody is in: not an error, nobody there.
    const empty = await presence(h, fresh());
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.json, { clients: [], users: 0, connections: 0, anonymous: 0 });

    const ws = await wsClient(h); open.push(ws);
    const wq = await ws.cmd({ method: 'presence', channel: 'quiet:x' });
    assert.equal(wq.error.code, 'presence_disabled');
    const wbad = await ws.cmd({ method: 'presence', channel: 'bad name' });
    assert.equal(wbad.error.code, 'invalid_channel');
    const wnone = await ws.cmd({ method: 'presence' });
    assert.equal(wnone.error.code, 'bad_request');

    for (const ephemeral of ['yes', 1, {}, []]) {
      const r = await H.request(h, 'POST', '/api/publish', { body: { channel: 'room:x', data: 1, ephemeral } });
      assert.equal(r.status, 400, `ephemeral ${JSON.stringify(ephemeral)}: ${r.text}`);
      assert.match(r.json.error.message, /ephemeral/);
    }
    const twice = await H.request(h, 'POST', '/api/publish', { body: '{"channel":"room:x","data":1,"ephemeral":true,"ephemeral":false}' });
    assert.equal(twice.status, 400);
    const withOffset = await H.request(h, 'POST', '/api/publish', { body: { channel: 'room:x', data: 1, ephemeral: true, expected_offset: 1 } });
    assert.equal(withOffset.status, 400, withOffset.text);
    assert.match(withOffset.json.error.message, /ephemeral/);
    const wsBad = await ws.cmd({ method: 'publish', channel: 'room:x', data: 1, ephemeral: 'true' });
    assert.equal(wsBad.error.code, 'bad_request');
    for (const event of ['join', 'leave', 'end']) {
      const r = await H.request(h, 'POST', '/api/publish', { body: { channel: 'room:x', data: 1, event } });
      assert.equal(r.status, 400, `event ${event}: ${r.text}`);
      const e = await H.request(h, 'POST', '/api/publish', { body: { channel: 'room:x', data: 1, event, ephemeral: true } });
      assert.equal(e.status, 400, `ephemeral event ${event}: ${e.text}`);
    }
    // The server is still fine.
    assert.equal((await H.get(h, '/healthz')).status, 200);
  });
});

describe('ephemeral messages past a slow reader\'s cap', () => {
  let h;
  before(async () => { h = await H.startHerald(['--threads', '2', '--max-queued-bytes', '65536']); });
  after(async () => { await h?.stop(); });

  it('are dropped and counted; the reader is not cut and later gets the publications', { timeout: 60000 }, async () => {
    const ch = `slowsig:${process.pid}`;
    const { reader: good } = await H.openSynced(h, { channels: ch });
    const slow = await H.SSEReader.open(h, { channels: ch, pauseReading: true });
    const agent = H.keepAliveAgent(1);
    try {
      await H.waitFor(async () => (await H.metrics(h)).get('herald_connections{transport="sse"}') === 2, { what: 'two SSE streams' });
      const m0 = await H.metrics(h);
      const big = 'y'.repeat(16 * 1024);
      const MAX = 3000;  // ~48 MB of typing indicators: far more than the kernel buffers hold
      let n = 0, dropped = false;
      const deadline = Date.now() + 40000;
      while (n < MAX && !dropped && Date.now() < deadline) {
        const r = await H.request(h, 'POST', '/api/publish', { body: { channel: ch, data: { n, big }, ephemeral: true }, agent });
        assert.equal(r.status, 200, r.text);
        n++;
        const e = await good.nextEvent(5000);  // the good reader keeps up
        assert.equal(JSON.parse(e.data).data.n, n - 1);
        assert.equal(e.id, undefined);
        if (n % 10 === 0) dropped = (await H.metrics(h)).get('herald_signal_drops_total') > m0.get('herald_signal_drops_total');
      }
      assert.ok(dropped, `no signal dropped after ${n} ephemeral messages of 16 KB to a reader that does not read`);
      const m1 = await H.metrics(h);
      assert.equal(m1.get('herald_slow_disconnects_total'), m0.get('herald_slow_disconnects_total'), 'nobody cut for a signal');
      assert.equal(m1.get('herald_connections{transport="sse"}'), 2);
      // The slow reader reads again: what was queued (a publication arriving before that
      // has drained would find a live reader over its cap: cut, as slow-reader.test.mjs
      // checks), then a publication, in a stream still open.
      slow.resumeReading();
      let last = -1;
      await H.waitFor(async () => { const b = slow.bytes; const still = b === last; last = b; return still; },
        { timeoutMs: 15000, intervalMs: 300, what: 'the slow reader to drain its queue' });
      const p = await H.publish(h, ch, 'kept', { agent });
      const got = await slow.until((b) => b.data !== undefined && JSON.parse(b.data).offset === p.offset, 20000);
      assert.ok(got.filter((b) => b.data !== undefined).length < n + 1, 'some ephemeral messages were dropped');
      assert.equal(slow.closed, false);
      assert.equal(got.at(-1).id, p.cursor);
    } finally {
      good.close();
      slow.close();
      agent.destroy();
    }
  });
});
