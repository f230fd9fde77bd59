// Redis Sentinel: two herald nodes on a Sentinel-managed primary (`--broker sentinel://herald
// --sentinels ...`), a replica and three sentinels, all real redis-server processes. The
// primary is killed after acknowledging publications its replica never received (its
// replication link cut first), so the promoted replica lacks them and would hand their
// offsets out again for other messages. Subscribers on every transport and both nodes must
// never take a new message for an old one: they get an explicit reset and then every
// message acknowledged after the failover, exactly once and in order.
//
// Loopback only; every process started here is stopped in after() (and killed at exit).
import { test as nodeTest, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './lib/herald.mjs';
import * as C from './lib/cluster.mjs';

const test = (name, fn, timeout = 120000) => nodeTest(name, { timeout }, fn);

before(() => {
  const missing = C.missingTools(['redis-server', 'redis-cli']);
  if (missing.length) throw new Error(`the Sentinel tests need ${missing.join(', ')} (scripts/setup.sh test installs them)`);
});

/** Publishes data {phase, seq} for seq 1..n, alternating between the nodes; returns the acks. */
async function publishPhase(nodes, ch, phase, n) {
  const acks = [];
  for (let seq = 1; seq <= n; seq++) {
    const node = nodes[seq % nodes.length];
    const r = await H.publishRaw(node, ch, { phase, seq });
    assert.equal(r.status, 200, `publish ${phase}/${seq} on :${node.port}: ${r.status} ${r.text}`);
    acks.push({ phase, seq, offset: r.json.offset });
  }
  return acks;
}

/** Within each era (between resets) a follower's offsets go up by one, each once. */
function erasContiguous(f) {
  for (let era = 0; era <= f.resetCount; era++) {
    const o = f.offsets(era);
    for (let i = 1; i < o.length; i++)
      if (o[i] !== o[i - 1] + 1) return `${f.name}: era ${era} offsets ${o.slice(Math.max(0, i - 3), i + 3).join(',')} (at ${i})`;
  }
  return null;
}

describe('a Sentinel-managed primary fails over after losing acknowledged writes', () => {
  const procs = { redis: [], sentinels: [], nodes: [] };
  const followers = [];
  before(async () => {
    const primary = await C.startRedis();
    procs.redis.push(primary);
    procs.redis.push(await C.startReplica(primary));
    // After the replica: a sentinel learns the replicas from its first INFO of the primary.
    for (let i = 0; i < 3; i++) procs.sentinels.push(await C.startSentinel(primary));
    // Failover needs a majority that knows each other (hello messages every 2 s).
    await H.waitFor(async () => {
      const out = await C.redisCli(procs.sentinels[0].port, ['SENTINEL', 'master', 'herald']);
      const lines = out.trim().split('\n');
      const i = lines.indexOf('num-other-sentinels');
      return i >= 0 && Number(lines[i + 1]) === 2;
    }, { timeoutMs: 20000, intervalMs: 200, what: 'three sentinels that know each other' });
    const args = ['--sentinels', procs.sentinels.map((s) => s.addr).join(','), '--sentinel-poll', '200', '--redis-timeout', '1000'];
    for (let i = 0; i < 2; i++) procs.nodes.push(await C.startNode('sentinel://herald', { args }));
    for (const n of procs.nodes) await C.waitReady(n);
  });
  after(async () => {
    for (const f of followers) await f.stop();
    for (const n of procs.nodes) await n.stop(5000).catch(() => {});
    for (const s of procs.sentinels) await s.stop().catch(() => {});
    for (const r of procs.redis) await r.stop().catch(() => {});
  });

  test('every transport on both nodes: one explicit reset, then every message acknowledged after the failover', async (t) => {
    const [primary, replica] = procs.redis;
    const nodes = procs.nodes;
    const ch = 'failover:room';
    const since = await C.currentCursor(nodes[0], ch);
    for (const [i, n] of nodes.entries()) {
      followers.push(new C.SseFollower(n, ch, { since, name: `sse@${i + 1}` }).start());
      followers.push(new C.PollFollower(n, ch, { since, name: `poll@${i + 1}`, holdSeconds: 1 }).start());
      followers.push(new C.WsFollower(n, ch, { since, name: `ws@${i + 1}` }).start());
    }
    for (const f of followers) await f.until((x) => x.connects > 0, 5000, 'connected');

    // 1. Replicated: the replica has these.
    const first = await publishPhase(nodes, ch, 'replicated', 20);
    assert.deepEqual(first.map((a) => a.offset), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.deepEqual(await C.allReach(followers, 20), []);
    await H.waitFor(async () => {
      const info = await C.redisCli(primary.port, ['INFO', 'replication']);
      const off = /master_repl_offset:(\d+)/.exec(info)[1];
      return new RegExp(`slave0:.*offset=${off},`).test(info);
    }, { timeoutMs: 5000, what: 'the replica caught up' });

    // 2. Acknowledged and delivered, never replicated: the replica is stopped and its link
    //    cut on the primary's side, so these stay on the primary alone; then it dies.
    process.kill(replica.pid, 'SIGSTOP');
    let second;
    try {
      await C.redisCli(primary.port, ['CLIENT', 'KILL', 'TYPE', 'replica']);
      second = await publishPhase(nodes, ch, 'lost', 10);
      assert.deepEqual(second.map((a) => a.offset), Array.from({ length: 10 }, (_, i) => i + 21));
      assert.deepEqual(await C.allReach(followers, 30), []);
      await primary.kill();
    } finally {
      process.kill(replica.pid, 'SIGCONT');
    }
    const failedAt = Date.now();

    // 3. Sentinel promotes the replica; both nodes follow it.
    await H.waitFor(async () => (await C.sentinelPrimary(procs.sentinels[0])) === `127.0.0.1:${replica.port}`,
      { timeoutMs: 30000, intervalMs: 100, what: 'Sentinel to promote the replica' });
    for (const n of nodes) await C.waitReady(n, 200, 20000);
    t.diagnostic(`failover: both nodes ready on the promoted replica ${Date.now() - failedAt} ms after the primary died`);
    assert.equal(await C.redisCli(replica.port, ['HGET', `herald:{${ch}}:m`, 't']).then((s) => Number(s.trim())), 20,
      'the promoted replica lacks the 10 lost publications (the test set up what it meant to)');

    // 4. After the failover: publishes work on both nodes and reach every subscriber.
    const third = await publishPhase(nodes, ch, 'after', 20);
    const lastSeq = (f) => {
      const after = f.messages.filter((m) => m.data && m.data.phase === 'after').map((m) => m.data.seq);
      return after.length ? Math.max(...after) : 0;
    };
    await C.allUntil(followers, (f) => lastSeq(f) >= 20, 20000, 'the last message published after the failover');

    const report = [];
    for (const f of followers) {
      const got = f.messages.filter((m) => m.data && m.data.phase === 'after').map((m) => m.data.seq);
      report.push(`${f.name}: ${f.resets.length} resets, ${got.length}/20 after, ${f.messages.length} in all`);
      // Signalled: the lost offsets are not silently reused.
      assert.ok(f.resetCount >= 1, `${f.name}: no reset after a failover that lost 10 acknowledged messages`);
      assert.equal(f.resetCount, 1, `${f.name}: one failover, one reset: ${JSON.stringify(f.resets)}`);
      // Delivered: from where the reset put it, every message acknowledged after the
      // failover, once, in order (what came before the reset's position is the gap it
      // announced; the epoch changes at the first publish after the failover).
      // The reset puts a subscriber where the new primary's copy of the old epoch ends:
      // everything published after the failover follows, once and in order.
      assert.deepEqual(got, third.map((a) => a.seq), `${f.name}: the messages published after the failover`);
      assert.equal(erasContiguous(f), null);
      // Before the failover: all 30, exactly once (the lost ones were delivered live).
      const before = f.messages.filter((m) => m.data && m.data.phase !== 'after').map((m) => `${m.data.phase}/${m.data.seq}`);
      assert.equal(new Set(before).size, before.length, `${f.name}: a message delivered twice`);
    }
    t.diagnostic(`acknowledged: 20 replicated + 10 lost + 20 after; ${report.join('; ')}`);
    for (const n of nodes) assert.ok(C.alive(n), C.deathNote(n));
  });
});
