// Streams (docs/streams.md): since=earliest on every transport and /api/history, on both
// brokers (memory, and Redis with a real redis-server).
import { test as nodeTest, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './lib/herald.mjs';
import * as C from './lib/cluster.mjs';
import { HeraldWs } from './lib/ws-client.mjs';

const test = (name, fn) => nodeTest(name, { timeout: 30000 }, fn);
const offsetOf = (cursor) => Number(H.decodeCursor(cursor)[0].offset);
const NS = ['--namespace', 'late:history_size=5'];

async function publishN(h, ch, n) {
  const out = [];
  for (let i = 1; i <= n; i++) out.push(await H.publish(h, ch, { i }));
  return out;
}

const brokers = [['memory', async () => H.startHerald(['--threads', '2', ...NS])]];
if (C.missingTools(['redis-server', 'redis-cli']).length === 0) {
  brokers.push(['redis', async () => {
    const redis = await C.startRedis();
    const node = await C.startNode(redis.url, { threads: 2, args: NS });
    const stop = node.stop;
    node.stop = async () => { await stop(); await redis.stop(); };
    return node;
  }]);
}

for (const [kind, start] of brokers) {
  describe(`since=earliest (${kind} broker)`, () => {
    let h;
    before(async () => { h = await start(); });
    after(async () => { await h?.stop(); });

    test('/api/history since=earliest returns what history still holds, recovered', async () => {
      await publishN(h, 'late:hist', 7);  // history keeps 3..7
      const r = await H.history(h, 'late:hist', { since: 'earliest' });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.recovered, true);
      assert.deepEqual(r.json.messages.map((m) => m.offset), [3, 4, 5, 6, 7]);
      assert.equal(offsetOf(r.json.cursor), 7);
      const two = await H.history(h, 'late:hist', { since: 'earliest', limit: 2 });
      assert.deepEqual(two.json.messages.map((m) => m.offset), [3, 4]);
      const next = await H.history(h, 'late:hist', { since: two.json.cursor });
      assert.deepEqual(next.json.messages.map((m) => m.offset), [5, 6, 7]);
    });

    test('SSE since=earliest replays from the oldest held message without a reset, then goes live', async () => {
      await publishN(h, 'late:sse', 6);  // history keeps 2..6
      const { reader, preamble } = await H.openSynced(h, { channels: 'late:sse', since: 'earliest' });
      try {
        assert.equal(preamble.filter((b) => b.event === 'reset').length, 0, JSON.stringify(preamble));
        const replayed = preamble.filter((b) => b.data !== undefined).map((b) => JSON.parse(b.data).offset);
        assert.deepEqual(replayed, [2, 3, 4, 5, 6]);
        await H.publish(h, 'late:sse', 'live');
        const ev = await reader.nextEvent();
        assert.equal(JSON.parse(ev.data).offset, 7);
      } finally {
        reader.close();
      }
    });

    test('long polling since=earliest pages through history with the cursor it returns', async () => {
      await publishN(h, 'late:poll', 8);  // history keeps 4..8
      const first = await H.poll(h, 'late:poll', { since: 'earliest', limit: 2 });
      assert.equal(first.status, 200, first.text);
      assert.deepEqual(first.json.messages.map((m) => m.offset), [4, 5]);
      assert.equal(first.json.recovered, true);
      const rest = await H.poll(h, 'late:poll', { since: first.json.cursor, timeout: 0 });
      assert.deepEqual(rest.json.messages.map((m) => m.offset), [6, 7, 8]);
    });

    test('WebSocket subscribe since "earliest" and the history command', async () => {
      await publishN(h, 'late:ws', 5);  // history keeps 1..5
      const ws = await HeraldWs.open(h);
      try {
        const res = await ws.subscribe('late:ws', 'earliest');
        assert.equal(res.recovered, true);
        const pushes = await ws.takePushes(5);
        assert.deepEqual(pushes.map((p) => p.offset), [1, 2, 3, 4, 5]);
        const hist = await ws.request({ method: 'history', channel: 'late:ws', since: 'earliest', limit: 2 });
        assert.deepEqual(hist.result.messages.map((m) => m.offset), [1, 2]);
        await H.publish(h, 'late:ws', 'live');
        assert.equal((await ws.nextPush()).offset, 6);
      } finally {
        ws.destroy();
      }
    });

    test('since=earliest on a channel with no message yet gets the first one', async () => {
      const { reader } = await H.openSynced(h, { channels: 'late:empty', since: 'earliest' });
      try {
        const hist = await H.history(h, 'late:empty', { since: 'earliest' });
        assert.deepEqual(hist.json.messages, []);
        assert.equal(hist.json.recovered, true);
        await H.publish(h, 'late:empty', 'first');
        const ev = await reader.nextEvent();
        assert.equal(JSON.parse(ev.data).offset, 1);
      } finally {
        reader.close();
      }
    });
  });
}
