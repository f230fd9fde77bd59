// Several channels on one stream: SSE and long polling on 2+ channels, the id of a
// multi-channel stream covers every channel, and resuming (Last-Event-ID header, since
// parameter, the eventsource package reconnecting by itself) delivers exactly the missed
// messages of every channel, none twice.
import { test as nodeTest, before, after } from 'node:test';

// Every test is bounded in time (on top of the bounded waits inside).
const test = (name, fn) => nodeTest(name, { timeout: 30000 }, fn);
import assert from 'node:assert/strict';
import EventSource from 'eventsource';
import * as H from './lib/herald.mjs';

let h;
before(async () => { h = await H.startHerald(['--threads', '2', '--sse-retry', '100']); });
after(async () => { await h?.stop(); });

/** Asserts that `id` is a cursor whose per-channel offsets equal `pos` ({name: offset}). */
function assertCursorAt(id, pos) {
  const entries = H.decodeCursor(id);
  assert.ok(entries, `not a cursor: ${id}`);
  const byTag = new Map(entries.map((e) => [e.tag, e.offset]));
  assert.equal(entries.length, Object.keys(pos).length, 'one entry per channel of the stream');
  for (const [name, off] of Object.entries(pos))
    assert.equal(byTag.get(H.channelTag(name)), BigInt(off), `offset of ${name} in the id`);
}

test('SSE on three channels: every message once, in order per channel; each id covers all channels', async () => {
  const chans = ['mc:a', 'mc:b', 'mc:c'];
  const { reader, preamble } = await H.openSynced(h, { channels: chans });
  try {
    assertCursorAt(preamble.at(-1).id, { 'mc:a': 0, 'mc:b': 0, 'mc:c': 0 });
    const order = [0, 1, 2, 2, 1, 0, 0, 0, 2, 1, 1, 2];
    const expected = [];
    for (const [i, k] of order.entries()) {
      const r = await H.publish(h, chans[k], { i }, { event: k === 1 ? 'bee' : undefined });
      expected.push({ ch: chans[k], offset: r.offset, i });
    }
    const pos = { 'mc:a': 0, 'mc:b': 0, 'mc:c': 0 };
    const evs = await reader.events(order.length);
    for (const [n, e] of evs.entries()) {
      const m = JSON.parse(e.data);
      // Publications are sequential here, so the stream follows publication order.
      assert.deepEqual([m.channel, m.offset, m.data.i], [expected[n].ch, expected[n].offset, expected[n].i]);
      assert.equal(e.event, m.channel === 'mc:b' ? 'bee' : undefined);
      pos[m.channel] = m.offset;
      assertCursorAt(e.id, pos);
    }
  } finally {
    reader.close();
  }
});

async function resumeCase(how) {
  const chans = [`mc:${how}:x`, `mc:${how}:y`];
  const [x, y] = chans;
  const { reader } = await H.openSynced(h, { channels: chans });
  for (let i = 1; i <= 3; i++) {
    await H.publish(h, x, `x${i}`);
    await H.publish(h, y, `y${i}`);
  }
  const seen = (await reader.events(4)).map((e) => JSON.parse(e.data));
  const lastId = reader.lastId;
  assertCursorAt(lastId, { [x]: 2, [y]: 2 });
  reader.close();
  // Missed: x3, y3 (already sent on the old connection but not consumed) and more.
  for (let i = 4; i <= 6; i++) await H.publish(h, x, `x${i}`);
  await H.publish(h, y, 'y4');
  const opts = how === 'header' ? { channels: chans, lastEventId: lastId } : { channels: chans, since: lastId };
  const { reader: r2, preamble } = await H.openSynced(h, opts);
  try {
    const replay = preamble.filter((b) => b.data !== undefined).map((b) => JSON.parse(b.data));
    assert.ok(!preamble.some((b) => b.event === 'reset'), 'no reset');
    const perChan = (list, ch) => list.filter((m) => m.channel === ch).map((m) => m.data);
    assert.deepEqual(perChan(seen, x), ['x1', 'x2']);
    assert.deepEqual(perChan(replay, x), ['x3', 'x4', 'x5', 'x6']);
    assert.deepEqual(perChan(replay, y), ['y3', 'y4']);
    assertCursorAt(preamble.at(-1).id, { [x]: 6, [y]: 4 });
    // Then live, with nothing replayed twice.
    await H.publish(h, y, 'y5');
    const live = await r2.nextEvent();
    assert.deepEqual(JSON.parse(live.data).data, 'y5');
    assertCursorAt(live.id, { [x]: 6, [y]: 5 });
    await H.sleep(50);
    assert.equal(r2.blocks.filter((b) => b.data !== undefined).length, 0, 'nothing else delivered');
  } finally {
    r2.close();
  }
}

test('resume a 2-channel SSE stream with the Last-Event-ID header: exactly the missed messages', () => resumeCase('header'));
test('resume a 2-channel SSE stream on a new connection with since=<last id>', () => resumeCase('since'));

test('the Last-Event-ID header wins over the since parameter', async () => {
  const ch = 'mc:wins';
  const pubs = [];
  for (let i = 1; i <= 5; i++) pubs.push(await H.publish(h, ch, i));
  const { preamble, reader } = await H.openSynced(h, { channels: ch, since: pubs[0].cursor, lastEventId: pubs[2].cursor });
  reader.close();
  assert.deepEqual(preamble.filter((b) => b.data).map((b) => JSON.parse(b.data).offset), [4, 5]);
});

test('a cursor that covers only some channels: the others start at "now"', async () => {
  const [a, b] = ['mc:part:a', 'mc:part:b'];
  const pa = [];
  for (let i = 1; i <= 3; i++) pa.push(await H.publish(h, a, `a${i}`));
  await H.publish(h, b, 'b1');
  const { preamble, reader } = await H.openSynced(h, { channels: [a, b], since: pa[0].cursor });
  try {
    assert.deepEqual(preamble.filter((x) => x.data).map((x) => JSON.parse(x.data).data), ['a2', 'a3']);
    assertCursorAt(preamble.at(-1).id, { [a]: 3, [b]: 1 });
    await H.publish(h, b, 'b2');
    assert.equal(JSON.parse((await reader.nextEvent()).data).data, 'b2');
  } finally {
    reader.close();
  }
});

test('several single-channel cursors (repeated since) combine into one position', async () => {
  const [a, b] = ['mc:combine:a', 'mc:combine:b'];
  const pa = await H.publish(h, a, 'a1');
  await H.publish(h, a, 'a2');
  const pb = await H.publish(h, b, 'b1');
  await H.publish(h, b, 'b2');
  await H.publish(h, b, 'b3');
  const qs = `channel=${a}&channel=${b}&since=${pa.cursor}&since=${pb.cursor}`;
  const { reader, preamble } = await H.openSynced(h, { pathQuery: `/sse?${qs}`, channels: [] });
  reader.close();
  const replay = preamble.filter((x) => x.data).map((x) => JSON.parse(x.data).data);
  assert.deepEqual(replay.filter((d) => d[0] === 'a'), ['a2']);
  assert.deepEqual(replay.filter((d) => d[0] === 'b'), ['b2', 'b3']);
  const r = await H.get(h, `/poll?${qs}&timeout=0`);
  assert.deepEqual(r.json.messages.map((m) => m.data).sort(), ['a2', 'b2', 'b3']);
  assertCursorAt(r.json.cursor, { [a]: 2, [b]: 3 });
});

test('long poll on two channels: woken by either, one cursor for both, resume with since', async () => {
  const [a, b] = ['mc:poll:a', 'mc:poll:b'];
  const agent = H.keepAliveAgent();
  try {
    const held = H.poll(h, [a, b], { timeout: 10, agent });
    await H.waitFor(async () => {
      const cs = (await H.get(h, '/api/channels')).json.channels;
      return [a, b].every((n) => cs.find((c) => c.channel === n)?.subscribers.poll === 1);
    }, { what: 'poll held on both channels' });
    await H.publish(h, b, 'b1');
    let r = await held;
    assert.deepEqual(r.json.messages.map((m) => [m.channel, m.data]), [[b, 'b1']]);
    assertCursorAt(r.json.cursor, { [a]: 0, [b]: 1 });
    for (const m of ['a1', 'b2', 'a2', 'a3']) await H.publish(h, m[0] === 'a' ? a : b, m);
    r = await H.poll(h, [a, b], { since: r.json.cursor, timeout: 10, agent });
    const got = r.json.messages.map((m) => m.data);
    assert.deepEqual(got.filter((d) => d[0] === 'a'), ['a1', 'a2', 'a3']);
    assert.deepEqual(got.filter((d) => d[0] === 'b'), ['b2']);
    assertCursorAt(r.json.cursor, { [a]: 3, [b]: 2 });
    // limit across channels: exactly `limit` messages, the rest with the next poll.
    for (let i = 4; i <= 6; i++) await H.publish(h, a, `a${i}`);
    for (let i = 3; i <= 5; i++) await H.publish(h, b, `b${i}`);
    const seen = [];
    let cursor = r.json.cursor;
    for (let k = 0; k < 10 && seen.length < 6; k++) {
      r = await H.poll(h, [a, b], { since: cursor, limit: 2, timeout: 5, agent });
      assert.ok(r.json.messages.length >= 1 && r.json.messages.length <= 2, `limit=2 gave ${r.json.messages.length}`);
      seen.push(...r.json.messages.map((m) => m.data));
      cursor = r.json.cursor;
    }
    assert.deepEqual(seen.filter((d) => d[0] === 'a'), ['a4', 'a5', 'a6']);
    assert.deepEqual(seen.filter((d) => d[0] === 'b'), ['b3', 'b4', 'b5']);
    assertCursorAt(cursor, { [a]: 6, [b]: 5 });
    // The long-poll cursor also resumes an SSE stream of the same channels.
    await H.publish(h, a, 'a7');
    const { preamble, reader } = await H.openSynced(h, { channels: [a, b], since: cursor });
    reader.close();
    assert.deepEqual(preamble.filter((x) => x.data).map((x) => JSON.parse(x.data).data), ['a7']);
  } finally {
    agent.destroy();
  }
});

test('eventsource package reconnects by itself after a dropped connection and resumes with Last-Event-ID', async () => {
  const [a, b] = ['mc:es:a', 'mc:es:b'];
  const proxy = await H.startProxy(h.port);
  const es = new EventSource(`http://127.0.0.1:${proxy.port}/sse?channel=${a}&channel=${b}`);
  const got = [];
  let opens = 0;
  try {
    es.onopen = () => { opens++; };
    es.onerror = () => {};
    es.onmessage = (e) => got.push({ m: JSON.parse(e.data), id: e.lastEventId });
    await H.waitFor(() => opens === 1, { what: 'first open' });
    const expected = { [a]: [], [b]: [] };
    let n = 0;
    const pub = async (count) => {
      for (let i = 0; i < count; i++) {
        const ch = n % 3 === 0 ? b : a;
        const r = await H.publish(h, ch, { n });
        expected[ch].push(r.offset);
        n++;
      }
    };
    for (let round = 0; round < 4; round++) {
      await pub(5);
      await H.waitFor(() => got.length === n, { what: `delivery of ${n} messages (round ${round})` });
      proxy.dropAll();
      await pub(4);  // published while disconnected: must come with the resume
      await H.waitFor(() => opens === round + 2, { what: `reconnect #${round + 1}`, timeoutMs: 5000 });
    }
    await H.waitFor(() => got.length === n, { what: 'all messages' });
    await H.sleep(100);
    assert.equal(got.length, n, 'nothing twice');
    for (const ch of [a, b]) assert.deepEqual(got.filter((g) => g.m.channel === ch).map((g) => g.m.offset), expected[ch]);
    assert.deepEqual(got.map((g) => g.m.data.n).sort((p, q) => p - q), [...Array(n).keys()], 'every message once');
    // The client really resumed through the header, with the id of the last event it saw.
    assert.equal(proxy.heads.length, 5);
    assert.doesNotMatch(proxy.heads[0], /last-event-id/i);
    for (const head of proxy.heads.slice(1)) assert.match(head, /\r\nLast-Event-ID: [A-Za-z0-9_-]+\r\n/i);
    assertCursorAt(got.at(-1).id, { [a]: expected[a].at(-1), [b]: expected[b].at(-1) });
  } finally {
    es.close();
    await proxy.close();
  }
});
