// The Redis broker across nodes, without a balancer: clients connect to the nodes
// directly. Cross-node delivery over the three transports and cursors that work on any
// node; Redis restarted empty (503 and /readyz while down, explicit resets after);
// sharding over two Redis instances (keys spread by a stable hash of the channel name,
// delivery and resume across shards, one shard down affects only its channels);
// subscription churn on a node (subscribers coming and going on a channel that is being
// published to) must not crash it.
//
// Real redis-server processes on free loopback ports, no persistence, temp directories;
// every process started here is stopped in after() (and killed at exit).
import { test as nodeTest, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './lib/herald.mjs';
import { HeraldWs } from './lib/ws-client.mjs';
import * as C from './lib/cluster.mjs';

const test = (name, fn, timeout = 60000) => nodeTest(name, { timeout }, fn);
const offsetOf = (cursor) => Number(H.decodeCursor(cursor)[0].offset);

before(() => {
  const missing = C.missingTools(['redis-server', 'redis-cli']);
  if (missing.length) throw new Error(`the cluster tests need ${missing.join(', ')} (scripts/setup.sh test installs them)`);
});

describe('three nodes on one Redis', () => {
  let c;
  const followers = [];
  const follow = (f) => { followers.push(f); return f.start(); };
  before(async () => { c = await C.startCluster({ nodes: 3 }); });
  after(async () => {
    for (const f of followers) await f.stop();
    await c?.stop();
  });
  // A test that fails midway leaves Redis and the nodes running for the next one.
  afterEach(async () => {
    for (const f of followers.splice(0)) await f.stop();
    if (!c) return;
    for (let i = 0; i < c.redis.length; i++) if (!c.redis[i].alive()) await c.startRedisAgain(i);
    for (let i = 0; i < c.nodes.length; i++) if (!C.alive(c.nodes[i])) await c.restartNode(i);
  });
  const allAlive = () => { for (const [i, n] of c.nodes.entries()) assert.ok(C.alive(n), `node ${i + 1}: ${C.deathNote(n)}`); };

  test('a message published on node 1 reaches subscribers on nodes 2 and 3 over SSE, long polling and WebSocket', async () => {
    const [n1, n2, n3] = c.nodes;
    const ch = 'r:cross';
    const since = await C.currentCursor(n1, ch);
    const fs = [
      follow(new C.SseFollower(n2, ch, { since, name: 'sse@2' })),
      follow(new C.SseFollower(n3, ch, { since, name: 'sse@3' })),
      follow(new C.PollFollower(n2, ch, { since, name: 'poll@2' })),
      follow(new C.PollFollower(n3, ch, { since, name: 'poll@3' })),
      follow(new C.WsFollower(n2, ch, { since, name: 'ws@2' })),
      follow(new C.WsFollower(n3, ch, { since, name: 'ws@3' })),
    ];
    for (const f of fs) await f.until((x) => x.connects > 0, 5000, 'connected');
    const acks = [];
    for (let i = 1; i <= 50; i++) acks.push(await H.publish(n1, ch, { i }));
    assert.deepEqual(acks.map((a) => a.offset), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.deepEqual(await C.allReach(fs, 50), []);
    for (const f of fs) assert.equal(C.exactSequence(f, 50), null);
    for (const f of fs) assert.deepEqual(f.messages.map((m) => m.data.i), Array.from({ length: 50 }, (_, i) => i + 1));
    // The WebSocket pushes carry the same cursors as the publish replies on node 1.
    const wsf = fs.find((f) => f.name === 'ws@3');
    assert.equal(wsf.cursor, acks[49].cursor);
    allAlive();
  });

  test('cursors work on any node: SSE id from node 2 resumes a poll on node 3, a WebSocket cursor from node 3 an SSE stream on node 1', async () => {
    const [n1, n2, n3] = c.nodes;
    const ch = 'r:portable';
    const since = await C.currentCursor(n3, ch);
    for (let i = 1; i <= 30; i++) await H.publish(n1, ch, { i });
    const s = await C.sseOpen(n2, ch, { since });
    let id20;
    try {
      await s.until((x) => x.events.length >= 20);
      id20 = s.events[19].id;
      assert.equal(s.events[19].offset, 20);
    } finally { s.close(); }
    const p = await H.poll(n3, ch, { since: id20, timeout: 0 });
    assert.equal(p.status, 200, p.text);
    assert.deepEqual(p.json.messages.map((m) => m.offset), Array.from({ length: 10 }, (_, i) => i + 21));
    assert.equal(p.json.recovered, true);
    // WebSocket on node 3, resumed from the poll's cursor position 25 via its push cursor.
    const ws = await HeraldWs.open(n3);
    let cur25;
    try {
      const r = await ws.subscribe(ch, id20);
      assert.equal(r.recovered, true);
      const pushes = await ws.takePushes(10);
      assert.deepEqual(pushes.map((x) => x.offset), Array.from({ length: 10 }, (_, i) => i + 21));
      cur25 = pushes[4].cursor;
    } finally { ws.destroy(); }
    const s1 = await C.sseOpen(n1, ch, { lastEventId: cur25 });
    try {
      await s1.until((x) => x.events.length >= 5);
      await H.publish(n2, ch, { i: 31 });
      await s1.until((x) => x.events.length >= 6);
      assert.deepEqual(s1.events.map((e) => e.offset), [26, 27, 28, 29, 30, 31]);
    } finally { s1.close(); }
    allAlive();
  });

  test('Redis restarted empty: publishes 503 "unavailable", /readyz 503, subscribe refused while down; then resets on every transport and exact delivery', async (t) => {
    const [n1, n2, n3] = c.nodes;
    const ch = 'r:restart';
    const since = await C.currentCursor(n1, ch);
    const sse = follow(new C.SseFollower(n2, ch, { since, name: 'sse@2' }));
    const poll = follow(new C.PollFollower(n3, ch, { since, name: 'poll@3', holdSeconds: 1 }));
    const ws = follow(new C.WsFollower(n3, ch, { since, name: 'ws@3' }));
    for (const f of [sse, poll, ws]) await f.until((x) => x.connects > 0, 5000, 'connected');
    const acks = [];
    for (let i = 1; i <= 10; i++) acks.push(await H.publish(n1, ch, { i }));
    assert.deepEqual(await C.allReach([sse, poll, ws], 10), []);
    const oldCursor = acks[9].cursor;

    await c.killRedis(0);
    const pub = await H.waitFor(async () => {
      const r = await H.publishRaw(n1, ch, { i: 'lost' });
      if (r.status === 200) assert.fail(`publish accepted with Redis down: ${r.text}`);
      return r.status === 503 ? r : false;
    }, { timeoutMs: 5000, what: 'publish -> 503' });
    assert.equal(pub.json?.error?.code, 'unavailable', pub.text);
    for (const n of c.nodes) await C.waitReady(n, 503, 5000);
    for (const n of c.nodes) assert.equal((await H.get(n, '/healthz')).status, 200, 'liveness stays 200');
    const r503 = await H.get(n2, '/readyz');
    assert.equal(r503.status, 503);
    // New subscriptions are refused explicitly while Redis is down (never a silent empty stream).
    const sDown = await C.sseOpen(n2, ch, { since: oldCursor });
    sDown.close();
    assert.equal(sDown.status, 503);
    const pDown = await H.poll(n3, ch, { since: oldCursor, timeout: 1 });
    assert.equal(pDown.status, 503, pDown.text);
    assert.equal(pDown.json?.error?.code, 'unavailable');
    const wDown = await HeraldWs.open(n1);
    try {
      const r = await wDown.request({ method: 'subscribe', channel: ch, since: oldCursor });
      assert.equal(r.error?.code, 'unavailable', JSON.stringify(r));
    } finally { wDown.destroy(); }

    await c.startRedisAgain(0);
    for (const n of c.nodes) await C.waitReady(n, 200, 15000);
    // Connected subscribers: SSE `event: reset` (or a reset on reconnect), poll
    // recovered:false with reset [ch], WebSocket {"reset":...} (or recovered:false).
    await C.allUntil([sse, poll, ws], (x) => x.resets.length > 0, 15000, 'a reset');
    t.diagnostic(`resets: sse ${JSON.stringify(sse.resets)} poll ${JSON.stringify(poll.resets)} ws ${JSON.stringify(ws.resets)}`);
    assert.deepEqual(sse.resets[0].channels, [ch]);
    assert.deepEqual(poll.resets[0], [ch]);
    // Fresh clients holding the old cursor: explicit "not recovered" on each transport.
    const s2 = await C.sseOpen(n1, ch, { since: oldCursor });
    try {
      await s2.until((x) => x.blocks.some((b) => b.event === 'reset'));
      const reset = JSON.parse(s2.blocks.find((b) => b.event === 'reset').data);
      assert.deepEqual(reset.channels, [ch]);
    } finally { s2.close(); }
    const p2 = await H.poll(n2, ch, { since: oldCursor, timeout: 0 });
    assert.equal(p2.status, 200, p2.text);
    assert.equal(p2.json.recovered, false);
    assert.deepEqual(p2.json.reset, [ch]);
    const w2 = await HeraldWs.open(n2);
    try {
      const r = await w2.subscribe(ch, oldCursor);
      assert.equal(r.recovered, false, JSON.stringify(r));
    } finally { w2.destroy(); }
    // The new life of the channel: offsets from 1 again, delivered exactly.
    const after = [];
    for (let i = 1; i <= 10; i++) after.push(await H.publish(n1, ch, { i: `new${i}` }));
    assert.equal(after[0].offset, 1, 'an emptied Redis starts the channel over (new epoch)');
    assert.deepEqual(await C.allReach([sse, poll, ws], 10), []);
    for (const f of [sse, poll, ws]) {
      assert.equal(C.exactSequence(f, 10, 0), null, 'before the restart');
      assert.equal(C.exactSequence(f, 10), null, 'after the reset');
    }
    allAlive();
  });
});

describe('two Redis shards', () => {
  let c;
  before(async () => { c = await C.startCluster({ nodes: 3, shards: 2 }); });
  after(async () => { await c?.stop(); });
  afterEach(async () => {
    if (!c) return;
    for (let i = 0; i < c.redis.length; i++) if (!c.redis[i].alive()) await c.startRedisAgain(i);
    for (let i = 0; i < c.nodes.length; i++) if (!C.alive(c.nodes[i])) await c.restartNode(i);
  });

  // Channels named so that they fall on both shards (checked, not assumed).
  const names = Array.from({ length: 24 }, (_, i) => `shard:c${i}`);
  /** A fresh channel name `${prefix}N` that falls on `shard` (FNV-1a of the name mod 2). */
  const on = (prefix, shard) => {
    for (let i = 0; i < 1000; i++) if (H.channelTag(`${prefix}${i}`) % 2 === shard) return `${prefix}${i}`;
    throw new Error('no name found');
  };

  test('channels spread over both instances by a stable hash of the name; every node agrees', async () => {
    for (const [i, ch] of names.entries()) await H.publish(c.nodes[i % 3], ch, { i });
    const keys = await Promise.all(c.redis.map((r) => C.redisKeys(r.port, 'herald:*')));
    const where = new Map();
    for (const [k, ks] of keys.entries()) {
      for (const key of ks) {
        const m = /^herald:\{(.+)\}:[mh]$/.exec(key);
        if (!m) continue;
        assert.ok(!where.has(m[1]) || where.get(m[1]) === k, `${m[1]} has keys in both instances`);
        where.set(m[1], k);
      }
    }
    for (const ch of names) assert.ok(where.has(ch), `${ch} has keys somewhere (${JSON.stringify(keys)})`);
    const counts = [0, 0];
    for (const ch of names) counts[where.get(ch)]++;
    assert.ok(counts[0] > 0 && counts[1] > 0, `both shards hold channels: ${counts}`);
    // The mapping is FNV-1a(name) mod shards (src/broker/redis: shard_for), the order of the URLs.
    for (const ch of names) assert.equal(where.get(ch), H.channelTag(ch) % 2, ch);
    // Publishing the same channel from another node lands on the same shard (offset 2 there).
    for (const [i, ch] of names.entries()) {
      const r = await H.publish(c.nodes[(i + 1) % 3], ch, { i, again: true });
      assert.equal(r.offset, 2);
    }
  });

  test('cross-node delivery and exact resume over channels of both shards (one multi-channel stream)', async () => {
    const [n1, n2, n3] = c.nodes;
    const a = on('shard:multi-a', 0);
    const b = on('shard:multi-b', 1);
    const sa = await C.currentCursor(n1, a);
    const sb = await C.currentCursor(n1, b);
    // A stream over both channels from their current positions, on node 2.
    const stream = await C.sseOpen(n2, [a, b], { since: [sa, sb] });
    let mid;
    try {
      assert.equal(stream.status, 200);
      for (let i = 1; i <= 10; i++) {
        await H.publish(n1, a, { a: i });
        await H.publish(n3, b, { b: i });
      }
      await stream.until((x) => x.events.length >= 20);
      const byCh = (ch) => stream.events.filter((e) => e.channel === ch).map((e) => e.offset);
      assert.deepEqual(byCh(a), Array.from({ length: 10 }, (_, i) => i + 1));
      assert.deepEqual(byCh(b), Array.from({ length: 10 }, (_, i) => i + 1));
      mid = stream.events[9].id;  // covers both channels, after 10 events (5 of each)
    } finally { stream.close(); }
    // Resume that two-shard cursor on node 3 by long polling: exactly the other 10.
    const p = await H.poll(n3, [a, b], { since: mid, timeout: 0, limit: 100 });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.json.recovered, true);
    const got = p.json.messages.map((m) => `${m.channel === a ? 'a' : 'b'}${m.offset}`).sort();
    const want = [6, 7, 8, 9, 10].flatMap((i) => [`a${i}`, `b${i}`]).sort();
    assert.deepEqual(got, want);
  });

  test('one shard down: its channels answer 503 and /readyz says 503, the other shard\'s channels keep working; it recovers', async () => {
    const [n1, n2] = c.nodes;
    const a = on('shard:down-a', 0);
    const b = on('shard:down-b', 1);
    const sinceA = await C.currentCursor(n1, a);
    const f = new C.SseFollower(n2, a, { since: sinceA, name: 'sse@2(a)' }).start();
    try {
      await f.until((x) => x.connects > 0, 5000, 'connected');
      await c.killRedis(1);
      await H.waitFor(async () => (await H.publishRaw(n1, b, 1)).status === 503, { timeoutMs: 5000, what: `publish to ${b} -> 503` });
      await C.waitReady(n1, 503, 5000);
      const ok = await H.publishRaw(n1, a, { during: true });
      assert.equal(ok.status, 200, `shard 0 still takes publishes: ${ok.text}`);
      await f.until((x) => x.messages.some((m) => m.data.during), 5000, 'the message published during the outage of the other shard');
      await c.startRedisAgain(1);
      for (const n of c.nodes) await C.waitReady(n, 200, 15000);
      const back = await H.publishRaw(n1, b, { back: true });
      assert.equal(back.status, 200, back.text);
      assert.equal(f.resets.length, 0, 'a channel of the healthy shard is not reset');
      for (const [i, n] of c.nodes.entries()) assert.ok(C.alive(n), `node ${i + 1}: ${C.deathNote(n)}`);
    } finally {
      await f.stop();
    }
  });
});

describe('subscription churn', () => {
  let c;
  before(async () => { c = await C.startCluster({ nodes: 2 }); });
  after(async () => { await c?.stop(); });

  // Subscribers that come and go on a node (long polls answered at once, short SSE
  // streams) make it UNSUBSCRIBE and SUBSCRIBE the channel again in quick succession
  // while another node publishes to it. The node must neither crash nor lose the
  // subscription: a steady subscriber on it receives everything.
  for (const mode of ['poll', 'sse']) {
    test(`subscribers coming and going (${mode}) on a channel being published to do not crash the node`, async (t) => {
      const [pubNode, node] = c.nodes;
      if (!C.alive(node)) c.nodes[1] = await C.startNode(c.urls);
      const n2 = c.nodes[1];
      const ch = `churn:${mode}`;
      const deadline = Date.now() + 4000;
      let stop = false;
      const counts = { publishes: 0, requests: 0 };
      const publisher = (async () => {
        const agent = H.keepAliveAgent(1);
        try {
          while (!stop && Date.now() < deadline && C.alive(n2) && counts.publishes < 20000) {
            await H.publishRaw(pubNode, ch, counts.publishes, { agent }).catch(() => {});
            counts.publishes++;
          }
        } finally { agent.destroy(); }
      })();
      const churner = async () => {
        const agent = H.keepAliveAgent(1);
        try {
          while (!stop && Date.now() < deadline && C.alive(n2) && counts.requests < 20000) {
            counts.requests++;
            if (mode === 'poll') await H.poll(n2, ch, { timeout: 0, agent }).catch(() => {});
            else {
              const s = await C.sseOpen(n2, ch).catch(() => null);
              await H.sleep(2);
              s?.close();
            }
          }
        } finally { agent.destroy(); }
      };
      await Promise.all([publisher, churner(), churner()]);
      stop = true;
      t.diagnostic(`${counts.publishes} publishes, ${counts.requests} ${mode} requests; node: ${C.deathNote(n2)}`);
      assert.ok(C.alive(n2), `the node with churning subscribers crashed after ${counts.requests} ${mode} requests: ${C.deathNote(n2)}`);
      // The subscription still works on that node.
      const since = await C.currentCursor(pubNode, ch);
      const s = await C.sseOpen(n2, ch, { since });
      try {
        for (let i = 0; i < 3; i++) await H.publish(pubNode, ch, { after: i });
        await s.until((x) => x.events.length >= 3, 5000);
        assert.deepEqual(s.events.map((e) => e.data.after), [0, 1, 2]);
      } finally { s.close(); }
    });
  }
});
