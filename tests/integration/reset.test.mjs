// Recovery that history cannot cover is announced, never silent: after eviction
// (--history-size 5), after expiry (history_ttl) and after a restart of the in-memory
// broker (new epoch). SSE sends `event: reset` naming the channels before going live,
// long polling answers recovered:false with the reset list, the history API says
// recovered:false.
import { test as nodeTest, before, after } from 'node:test';

// Every test is bounded in time (on top of the bounded waits inside).
const test = (name, fn) => nodeTest(name, { timeout: 30000 }, fn);
import assert from 'node:assert/strict';
import EventSource from 'eventsource';
import * as H from './lib/herald.mjs';

let h;
before(async () => {
  h = await H.startHerald(['--threads', '2', '--history-size', '5', '--namespace', 'ttl:history_ttl=1,history_size=100']);
});
after(async () => { await h?.stop(); });

async function publishN(srv, ch, n, from = 1) {
  const out = [];
  for (let i = from; i < from + n; i++) out.push(await H.publish(srv, ch, { i }));
  return out;
}

const offsetOf = (cursor) => Number(H.decodeCursor(cursor)[0].offset);

test('SSE: resume from an evicted position -> event: reset naming the channel, no replay, then live', async () => {
  const ch = 'ev:sse';
  const pubs = await publishN(h, ch, 12);  // history keeps 8..12
  const before = await H.metrics(h);
  const { reader, preamble } = await H.openSynced(h, { channels: ch, since: pubs[0].cursor });
  try {
    const resets = preamble.filter((b) => b.event === 'reset');
    assert.equal(resets.length, 1, `preamble: ${JSON.stringify(preamble)}`);
    const reset = resets[0];
    assert.equal(preamble.indexOf(reset), 1, 'the reset comes right after retry, before anything else');
    const body = JSON.parse(reset.data);
    assert.deepEqual(body.channels, [ch]);
    assert.equal(typeof body.cursor, 'string');
    assert.equal(reset.id, body.cursor);
    assert.equal(offsetOf(body.cursor), 12, 'the stream goes on from the newest offset');
    assert.equal(preamble.filter((b) => b.data !== undefined && b.event !== 'reset').length, 0, 'nothing replayed');
    assert.equal(offsetOf(preamble.at(-1).id), 12);
    const p = await H.publish(h, ch, 'live');
    const ev = await reader.nextEvent();
    assert.equal(ev.event, undefined);
    assert.deepEqual(JSON.parse(ev.data), { ...JSON.parse(ev.data), channel: ch, offset: 13, data: 'live' });
    assert.equal(ev.id, p.cursor);
    const afterM = await H.metrics(h);
    assert.equal(afterM.get('herald_resets_total') - before.get('herald_resets_total'), 1);
  } finally {
    reader.close();
  }
});

test('eviction boundary: a cursor just inside history replays, one before it resets', async () => {
  const ch = 'ev:edge';
  const pubs = await publishN(h, ch, 10);  // history keeps 6..10
  let { reader, preamble } = await H.openSynced(h, { channels: ch, since: pubs[4].cursor });  // after 5
  reader.close();
  assert.ok(!preamble.some((b) => b.event === 'reset'), 'position 5 is still recoverable');
  assert.deepEqual(preamble.filter((b) => b.data).map((b) => JSON.parse(b.data).offset), [6, 7, 8, 9, 10]);
  ({ reader, preamble } = await H.openSynced(h, { channels: ch, since: pubs[3].cursor }));  // after 4: 5 evicted
  reader.close();
  assert.deepEqual(preamble.filter((b) => b.data).map((b) => b.event), ['reset']);
  // Long polling and history agree on the same boundary.
  let r = await H.poll(h, ch, { since: pubs[4].cursor, timeout: 5 });
  assert.equal(r.json.recovered, true);
  assert.deepEqual(r.json.messages.map((m) => m.offset), [6, 7, 8, 9, 10]);
  r = await H.history(h, ch, { since: pubs[3].cursor });
  assert.equal(r.json.recovered, false);
});

test('long poll: resume from an evicted position -> recovered:false + reset list at once, then live', async () => {
  const ch = 'ev:poll';
  const pubs = await publishN(h, ch, 9);
  const r = await H.poll(h, ch, { since: pubs[0].cursor, timeout: 10 });
  assert.equal(r.status, 200);
  assert.ok(r.elapsed < 2000, `a reset is answered at once (took ${r.elapsed} ms)`);
  assert.equal(r.json.recovered, false);
  assert.deepEqual(r.json.reset, [ch]);
  assert.deepEqual(r.json.messages, [], 'no partial replay after a reset');
  assert.equal(offsetOf(r.json.cursor), 9);
  // The cursor it gave continues live.
  const held = H.poll(h, ch, { since: r.json.cursor, timeout: 10 });
  await H.sleep(200);
  await H.publish(h, ch, 'next');
  const r2 = await held;
  assert.equal(r2.json.recovered, true);
  assert.equal(r2.json.reset, undefined);
  assert.deepEqual(r2.json.messages.map((m) => [m.offset, m.data]), [[10, 'next']]);
});

test('history API: since an evicted position -> recovered:false', async () => {
  const ch = 'ev:hist';
  const pubs = await publishN(h, ch, 8);
  const r = await H.history(h, ch, { since: pubs[1].cursor });
  assert.equal(r.status, 200);
  assert.equal(r.json.recovered, false);
  assert.deepEqual(r.json.messages, []);
  assert.equal(offsetOf(r.json.cursor), 8);
  const latest = await H.history(h, ch, {});
  assert.deepEqual(latest.json.messages.map((m) => m.offset), [4, 5, 6, 7, 8], 'history-size 5 keeps the newest 5');
  assert.equal(latest.json.recovered, true);
});

test('multi-channel resume: only the evicted channel is reset, the other is replayed exactly', async () => {
  const [a, b] = ['ev:multi:a', 'ev:multi:b'];
  const { reader } = await H.openSynced(h, { channels: [a, b] });
  await H.publish(h, a, 'a1');
  await H.publish(h, b, 'b1');
  await reader.events(2);
  const cursor = reader.lastId;
  reader.close();
  await publishN(h, a, 10, 2);  // a: 2..11, evicts past 1
  await H.publish(h, b, 'b2');
  const { reader: r2, preamble } = await H.openSynced(h, { channels: [a, b], since: cursor });
  try {
    const resets = preamble.filter((x) => x.event === 'reset');
    assert.equal(resets.length, 1);
    assert.deepEqual(JSON.parse(resets[0].data).channels, [a]);
    const replay = preamble.filter((x) => x.data !== undefined && x.event !== 'reset').map((x) => JSON.parse(x.data));
    assert.deepEqual(replay.map((m) => [m.channel, m.data]), [[b, 'b2']]);
    assert.ok(preamble.indexOf(resets[0]) < preamble.findIndex((x) => x.data && x.event !== 'reset'), 'reset before replay');
    const entries = H.decodeCursor(preamble.at(-1).id);
    assert.deepEqual(entries.map((e) => Number(e.offset)).sort((p, q) => p - q), [2, 11]);
    // Poll sees the same.
    const p = await H.poll(h, [a, b], { since: cursor, timeout: 5 });
    assert.equal(p.json.recovered, false);
    assert.deepEqual(p.json.reset, [a]);
    assert.deepEqual(p.json.messages.map((m) => m.data), ['b2']);
  } finally {
    r2.close();
  }
});

test('the eventsource package receives the reset as a distinct "reset" event', async () => {
  const ch = 'ev:es';
  const pubs = await publishN(h, ch, 8);
  const es = new EventSource(`${h.base}/sse?channel=${ch}`, { headers: { 'Last-Event-ID': pubs[0].cursor } });
  const got = [];
  try {
    es.addEventListener('reset', (e) => got.push({ type: 'reset', data: JSON.parse(e.data), id: e.lastEventId }));
    es.onmessage = (e) => got.push({ type: 'message', data: JSON.parse(e.data), id: e.lastEventId });
    await H.waitFor(() => got.length >= 1, { what: 'reset event' });
    await H.publish(h, ch, 'after');
    await H.waitFor(() => got.length >= 2, { what: 'live event' });
    assert.equal(got[0].type, 'reset');
    assert.deepEqual(got[0].data.channels, [ch]);
    assert.equal(got[1].type, 'message');
    assert.equal(got[1].data.offset, 9);
    assert.equal(got.length, 2);
  } finally {
    es.close();
  }
});

test('expired history (namespace history_ttl=1) -> reset on SSE, poll and history', async () => {
  const ch = 'ttl:room';
  const pubs = await publishN(h, ch, 3);
  await H.sleep(2200);
  const { reader, preamble } = await H.openSynced(h, { channels: ch, since: pubs[0].cursor });
  reader.close();
  const reset = preamble.find((b) => b.event === 'reset');
  assert.ok(reset, `expected a reset, got ${JSON.stringify(preamble)}`);
  assert.deepEqual(JSON.parse(reset.data).channels, [ch]);
  assert.ok(!preamble.some((b) => b.data && b.event !== 'reset'));
  const p = await H.poll(h, ch, { since: pubs[0].cursor, timeout: 5 });
  assert.equal(p.json.recovered, false);
  assert.deepEqual(p.json.reset, [ch]);
  const r = await H.history(h, ch, { since: pubs[0].cursor });
  assert.equal(r.json.recovered, false);
});

test('restart of herald on the same port: an old cursor gets a reset (new epoch), then live', async () => {
  const h1 = await H.startHerald(['--threads', '2']);
  let h2;
  try {
    const ch = 'restart:news';
    const pubs = await publishN(h1, ch, 3);
    const epoch1 = H.decodeCursor(pubs[2].cursor)[0].epoch;
    const port = h1.port;
    await h1.kill();
    h2 = await H.startHerald(['--threads', '2'], { port });
    assert.equal(h2.port, port);
    // SSE with since
    const { reader, preamble } = await H.openSynced(h2, { channels: ch, since: pubs[2].cursor });
    try {
      const reset = preamble.find((b) => b.event === 'reset');
      assert.ok(reset, `expected a reset after restart, got ${JSON.stringify(preamble)}`);
      assert.deepEqual(JSON.parse(reset.data).channels, [ch]);
      const pos = H.decodeCursor(preamble.at(-1).id)[0];
      assert.notEqual(pos.epoch, epoch1, 'a new life of the channel has a new epoch');
      await H.publish(h2, ch, 'first after restart');
      const ev = await reader.nextEvent();
      assert.deepEqual([JSON.parse(ev.data).offset, JSON.parse(ev.data).data], [1, 'first after restart']);
    } finally {
      reader.close();
    }
    // Last-Event-ID, poll and history say the same.
    const { reader: r2, preamble: pre2 } = await H.openSynced(h2, { channels: ch, lastEventId: pubs[1].cursor });
    r2.close();
    assert.ok(pre2.some((b) => b.event === 'reset'));
    assert.ok(!pre2.some((b) => b.data && b.event !== 'reset'), 'no replay across epochs');
    const p = await H.poll(h2, ch, { since: pubs[2].cursor, timeout: 5 });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.json.recovered, false);
    assert.deepEqual(p.json.reset, [ch]);
    assert.deepEqual(p.json.messages, []);
    const hr = await H.history(h2, ch, { since: pubs[2].cursor });
    assert.equal(hr.status, 200, hr.text);
    assert.equal(hr.json.recovered, false);
  } finally {
    await h1.stop();
    await h2?.stop();
  }
});
