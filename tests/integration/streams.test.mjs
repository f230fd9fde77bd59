// Streams (docs/streams.md), on both brokers (memory, and Redis with a real
// redis-server): since=earliest on every transport and /api/history; expected_offset
// appends; the end message, what readers see after it (SSE ends, 204 on a resume at the
// end, long polling and WebSocket deliver it and end the subscription).
import { test as nodeTest, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import EventSource from 'eventsource';
import * as H from './lib/herald.mjs';
import * as C from './lib/cluster.mjs';
import { HeraldWs } from './lib/ws-client.mjs';

const test = (name, fn) => nodeTest(name, { timeout: 30000 }, fn);
const offsetOf = (cursor) => Number(H.decodeCursor(cursor)[0].offset);
const NS = ['--namespace', 'late:history_size=5', '--namespace', 'chat:client_publish=true'];

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
    await C.waitReady(node);
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

const post = (h, path, body) => H.request(h, 'POST', path, { body });
const endStream = (h, channel, state = 'completed', reason) => post(h, '/api/stream/end', { channel, state, reason });

for (const [kind, start] of brokers) {
  describe(`expected_offset and the end of a stream (${kind} broker)`, () => {
    let h;
    before(async () => { h = await start(); });
    after(async () => { await h?.stop(); });

    test('expected_offset appends only at that offset: a retry is refused with the next offset, never doubled', async () => {
      const ch = 'ans:exp';
      const a = await post(h, '/api/publish', { channel: ch, data: 'a', expected_offset: 1 });
      assert.equal(a.status, 200, a.text);
      assert.equal(a.json.offset, 1);
      const retry = await post(h, '/api/publish', { channel: ch, data: 'a', expected_offset: 1 });
      assert.equal(retry.status, 409, retry.text);
      assert.equal(retry.json.error.code, 'offset_mismatch');
      assert.equal(retry.json.error.next_offset, 2);
      const b = await post(h, '/api/publish', { channel: ch, data: 'b', expected_offset: 2 });
      assert.equal(b.json.offset, 2);
      const stale = await post(h, '/api/publish', { channel: ch, data: 'z', expected_offset: 7 });
      assert.equal(stale.status, 409);
      assert.equal(stale.json.error.next_offset, 3);
      const hist = await H.history(h, ch, { since: 'earliest' });
      assert.deepEqual(hist.json.messages.map((m) => m.data), ['a', 'b']);
      // Client publish (POST /publish) takes it too.
      const c = await post(h, '/publish', { channel: 'chat:exp', data: 1, expected_offset: 2 });
      assert.equal(c.status, 409, c.text);
      assert.equal(c.json.error.next_offset, 1);
    });

    test('expected_offset: concurrent appends at the same offset, exactly one wins', async () => {
      const ch = 'ans:race';
      const rs = await Promise.all(Array.from({ length: 10 }, (_, i) => post(h, '/api/publish', { channel: ch, data: i, expected_offset: 1 })));
      assert.equal(rs.filter((r) => r.status === 200).length, 1);
      assert.equal(rs.filter((r) => r.status === 409 && r.json.error.code === 'offset_mismatch').length, 9);
      assert.equal((await H.history(h, ch, { since: 'earliest' })).json.messages.length, 1);
    });

    test('bad expected_offset and reserved event names are refused with 400', async () => {
      for (const v of [0, -1, 1.5, '3', true]) {
        const r = await post(h, '/api/publish', { channel: 'ans:bad', data: 1, expected_offset: v });
        assert.equal(r.status, 400, `expected_offset ${JSON.stringify(v)}: ${r.text}`);
      }
      const bc = await post(h, '/api/broadcast', { channels: ['ans:b1'], data: 1, expected_offset: 1 });
      assert.equal(bc.status, 400, bc.text);
      const ev = await post(h, '/api/publish', { channel: 'ans:bad', data: 1, event: 'end' });
      assert.equal(ev.status, 400, ev.text);
      for (const body of [{ channel: 'ans:bad', state: 'done' }, { state: 'completed' }, { channel: 'ans:bad' },
        { channel: 'ans:bad', state: 'completed', reason: 5 }, { channel: 'bad name', state: 'error' }]) {
        const r = await post(h, '/api/stream/end', body);
        assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      }
      const notJson = await H.request(h, 'POST', '/api/stream/end', { body: '{"channel":', headers: { 'Content-Type': 'application/json' } });
      assert.equal(notJson.status, 400);
      assert.equal((await H.history(h, 'ans:bad', { since: 'earliest' })).json.messages.length, 0);
    });

    test('the end is the last message: later publishes and a second end get 409 stream_ended', async () => {
      const ch = 'ans:last';
      await H.publish(h, ch, 'hello');
      const end = await endStream(h, ch, 'completed');
      assert.equal(end.status, 200, end.text);
      assert.deepEqual({ ...end.json, cursor: undefined }, { channel: ch, offset: 2, cursor: undefined, state: 'completed' });
      const late = await H.publishRaw(h, ch, 'late');
      assert.equal(late.status, 409, late.text);
      assert.equal(late.json.error.code, 'stream_ended');
      assert.equal(late.json.error.next_offset, 3);
      const again = await endStream(h, ch, 'error', 'x');
      assert.equal(again.status, 409);
      const hist = await H.history(h, ch, { since: 'earliest' });
      assert.deepEqual(hist.json.messages.map((m) => [m.offset, m.event ?? null]), [[1, null], [2, 'end']]);
      assert.deepEqual(hist.json.messages[1].data, { state: 'completed', reason: null });
    });

    test('SSE: the response ends after the end event; a resume at the end gets 204', async () => {
      const ch = 'ans:sse';
      const { reader } = await H.openSynced(h, { channels: ch });
      await H.publish(h, ch, 'Hel');
      await H.publish(h, ch, 'lo');
      await endStream(h, ch, 'error', 'model timed out');
      const evs = await reader.events(3);
      assert.deepEqual(evs.map((e) => JSON.parse(e.data).data), ['Hel', 'lo', { state: 'error', reason: 'model timed out' }]);
      assert.equal(evs[2].event, 'end');
      await reader.waitClosed();
      const again = await H.SSEReader.open(h, { channels: ch, lastEventId: evs[2].id });
      assert.equal(again.status, 204);
      await again.waitClosed();
      // Resume mid-answer: the rest and the end, then the response ends.
      const mid = await H.SSEReader.open(h, { channels: ch, lastEventId: evs[0].id });
      assert.equal(mid.status, 200);
      const rest = await mid.events(2);
      assert.deepEqual(rest.map((e) => JSON.parse(e.data).offset), [2, 3]);
      await mid.waitClosed();
    });

    test('EventSource (npm eventsource) reads the answer and stops at the end instead of reconnecting', async () => {
      const ch = 'ans:es';
      await H.publish(h, ch, 'a');
      await H.publish(h, ch, 'b');
      await endStream(h, ch);
      const got = [];
      let opens = 0;
      const es = new EventSource(`${h.base}/sse?channel=${ch}&since=earliest`);
      es.onopen = () => { opens++; };
      es.onmessage = (e) => got.push(JSON.parse(e.data).data);
      es.addEventListener('end', (e) => got.push(JSON.parse(e.data).data.state));
      const status = await H.withTimeout(new Promise((resolve) => { es.onerror = (e) => { if (e.status) resolve(e.status); }; }), 10000, 'EventSource error');
      assert.equal(status, 204);
      assert.equal(es.readyState, EventSource.CLOSED);
      es.close();
      assert.deepEqual(got, ['a', 'b', 'completed']);
      assert.equal(opens, 1);
    });

    test('long polling delivers the end, then a poll at the end gets 204 at once', async () => {
      const ch = 'ans:poll';
      const p0 = await H.publish(h, ch, 'x');
      const held = H.poll(h, ch, { since: p0.cursor, timeout: 10 });
      await H.sleep(100);
      await endStream(h, ch);
      const r = await held;
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.messages.map((m) => m.event), ['end']);
      const after = await H.poll(h, ch, { since: r.json.cursor, timeout: 10 });
      assert.equal(after.status, 204);
      assert.ok(after.elapsed < 2000, `answered in ${after.elapsed} ms`);
      const fresh = await H.poll(h, ch, { timeout: 10 });  // no cursor: "now" is the end
      assert.equal(fresh.status, 204);
    });

    test('WebSocket delivers the end and ends that subscription; subscribing at the end says ended', async () => {
      const ch = 'ans:ws';
      const ws = await HeraldWs.open(h);
      try {
        await ws.subscribe(ch);
        await ws.subscribe('ans:ws-other');
        await H.publish(h, ch, 'tok');
        const end = await endStream(h, ch);
        const pushes = await ws.takePushes(2);
        assert.deepEqual(pushes.map((p) => p.event ?? null), [null, 'end']);
        await H.sleep(50);
        const un = await ws.request({ method: 'unsubscribe', channel: ch });
        assert.equal(un.error?.code, 'not_subscribed', JSON.stringify(un));
        const again = await ws.subscribe(ch, end.json.cursor);
        assert.equal(again.ended, true);
        await H.sleep(50);
        assert.equal((await ws.request({ method: 'unsubscribe', channel: ch })).error?.code, 'not_subscribed');
        const mid = await ws.subscribe(ch, pushes[0].cursor);
        assert.equal(mid.recovered, true);
        assert.equal((await ws.nextPush()).event, 'end');
        // The other subscription goes on.
        await H.publish(h, 'ans:ws-other', 'still');
        assert.equal((await ws.nextPush()).data, 'still');
      } finally {
        ws.destroy();
      }
    });
  });
}

describe('the end in the raw formats (memory broker)', () => {
  let h;
  before(async () => { h = await H.startHerald(['--threads', '2', ...NS]); });
  after(async () => { await h?.stop(); });

  test('raw WebSocket: data in binary frames, the end a JSON text push; raw poll: " end <channel>" on the head line; raw SSE: event:end', async () => {
    const { default: WebSocket } = await import('ws');
    const ch = 'ans:raw';
    const ws = new WebSocket(`ws://127.0.0.1:${h.port}/ws`);
    const frames = [];
    await new Promise((resolve, reject) => {
      ws.on('message', (b, isBinary) => {
        frames.push({ isBinary, text: b.toString() });
        if (!isBinary && JSON.parse(b.toString()).id === 1) resolve();
      });
      ws.on('open', () => ws.send(JSON.stringify({ id: 1, method: 'subscribe', channel: ch, format: 'raw' })));
      ws.on('error', reject);
    });
    try {
      const since = (await H.history(h, ch, { limit: 1 })).json.cursor;
      await H.publish(h, ch, 'tok1');
      await H.publish(h, ch, { t: 2 });
      await endStream(h, ch, 'completed');
      await H.waitFor(() => frames.some((f) => !f.isBinary && f.text.includes('"event":"end"')), { what: 'the end push' });
      const data = frames.filter((f) => f.isBinary).map((f) => f.text);
      assert.deepEqual(data, ['"tok1"', '{"t":2}'], 'the data as binary frames, the end not among them');
      const end = JSON.parse(frames.find((f) => !f.isBinary && f.text.includes('"event":"end"')).text).push;
      assert.equal(end.offset, 3);
      assert.deepEqual(end.data, { state: 'completed', reason: null });

      const poll = await H.get(h, `/poll?channel=${ch}&since=${encodeURIComponent(since)}&format=raw&timeout=0`);
      assert.equal(poll.status, 200, poll.text);
      const [head, ...lines] = poll.text.trimEnd().split('\n');
      assert.match(head, / end ans:raw$/, 'the head names the ended channel');
      assert.deepEqual(lines, ['"tok1"', '{"t":2}', '{"state":"completed","reason":null}']);

      const sse = await H.curlHttp(h, 'GET', `/sse?channel=${ch}&since=${encodeURIComponent(since)}&format=raw`, { maxTime: 5 });
      assert.match(sse.body, /event:end\ndata:\{"state":"completed","reason":null\}\n\n/);
    } finally {
      ws.terminate();
    }
  });
});
