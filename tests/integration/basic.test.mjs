// Basic delivery: publish -> SSE (the `eventsource` package, a raw reader and curl) and
// long polling; event names; exact round trip of data; the SSE head and preamble;
// heartbeats; the HTTP API (broadcast, history, channels, health); the demo page.
import { test as nodeTest, before, after } from 'node:test';

// Every test is bounded in time (on top of the bounded waits inside).
const test = (name, fn) => nodeTest(name, { timeout: 30000 }, fn);
import assert from 'node:assert/strict';
import EventSource from 'eventsource';
import * as H from './lib/herald.mjs';

let h;
before(async () => { h = await H.startHerald(['--threads', '2']); });
after(async () => { await h?.stop(); });

// Payloads whose JSON value must come back unchanged (compared after parsing: the server
// re-serializes compactly).
const payloads = [
  { a: 1, b: [true, false, null], c: { d: 'e', nested: { deeper: [1, 2, { x: 'y' }] } } },
  'quotes " backslash \\ newline \n cr \r tab \t nul \u0000 unicode é 中文 🎉 line sep \u2028',
  'data: not a field\n\nid: not an id',
  42,
  -3.25,
  0,
  1e300,
  12345678901234,
  null,
  true,
  false,
  [],
  {},
  '',
  [1, [2, [3, [4]]]],
  { 'key with spaces': 'v', 'ключ': 'значение', '': 'empty key' },
  'x'.repeat(20000),
];

test('SSE head, retry hint and position-only id before any message', async () => {
  const { reader, preamble } = await H.openSynced(h, { channels: 'basic:head' });
  try {
    assert.equal(reader.status, 200);
    assert.equal(reader.headers['content-type'], 'text/event-stream');
    assert.equal(reader.headers['cache-control'], 'no-cache');
    assert.equal(reader.headers['x-accel-buffering'], 'no');
    assert.equal(reader.headers['content-length'], undefined, 'an event stream has no Content-Length');
    assert.equal(reader.headers['transfer-encoding'], undefined);
    assert.equal(preamble.length, 2, `preamble: ${JSON.stringify(preamble)}`);
    assert.equal(preamble[0].retry, '3000');
    assert.equal(preamble[0].raw, 'retry: 3000\n');
    // id-only block: positions the stream at "now" (offset 0 of a fresh channel).
    assert.equal(preamble[1].data, undefined);
    const entries = H.decodeCursor(preamble[1].id);
    assert.ok(entries, `position id must be a cursor: ${preamble[1].id}`);
    assert.equal(entries.length, 1);
    assert.equal(entries[0].tag, H.channelTag('basic:head'));
    assert.equal(entries[0].offset, 0n);
    assert.match(preamble[1].id, /^[A-Za-z0-9_-]+$/, 'cursor is URL-safe');
  } finally {
    reader.close();
  }
});

test('publish -> raw SSE reader: every payload round-trips, event names, ids are cursors', async () => {
  const ch = 'basic:raw';
  const { reader } = await H.openSynced(h, { channels: ch });
  try {
    const sent = [];
    for (let i = 0; i < payloads.length; i++) {
      const event = i % 3 === 0 ? `ev-${i}_x` : undefined;
      const t0 = Date.now();
      const r = await H.publish(h, ch, payloads[i], { event });
      sent.push({ ...r, event, t0, t1: Date.now() });
      assert.equal(r.offset, i + 1, 'offsets start at 1, gap-free');
    }
    for (let i = 0; i < payloads.length; i++) {
      const b = await reader.nextEvent();
      assert.equal(b.event, sent[i].event, `event name of message ${i + 1}`);
      assert.equal(b.id, sent[i].cursor, 'single-channel id is the cursor after the message');
      assert.equal((b.raw.match(/^data:/gm) || []).length, 1, 'the message is on one data line');
      const m = JSON.parse(b.data);
      const keys = ['channel', 'offset', 'time', ...(sent[i].event ? ['event'] : []), 'data'];
      assert.deepEqual(Object.keys(m), keys);
      assert.equal(m.channel, ch);
      assert.equal(m.offset, i + 1);
      assert.ok(Number.isInteger(m.time) && m.time >= sent[i].t0 - 1000 && m.time <= sent[i].t1 + 1000,
        `time ${m.time} is unix ms of the publication`);
      if (sent[i].event) assert.equal(m.event, sent[i].event);
      assert.deepEqual(m.data, payloads[i], `data of message ${i + 1} round-trips`);
    }
  } finally {
    reader.close();
  }
});

test('publish -> eventsource package: message and named events, lastEventId, data', async () => {
  const ch = 'basic:es';
  const es = new EventSource(`${h.base}/sse?channel=${encodeURIComponent(ch)}`);
  const got = [];
  const errors = [];
  try {
    es.onerror = (e) => errors.push(e);
    es.onmessage = (e) => got.push({ type: 'message', data: e.data, lastEventId: e.lastEventId });
    es.addEventListener('chat-msg', (e) => got.push({ type: 'chat-msg', data: e.data, lastEventId: e.lastEventId }));
    await H.withTimeout(new Promise((resolve) => { es.onopen = resolve; }), 5000, 'EventSource open');
    const sent = [];
    for (let i = 0; i < payloads.length; i++) {
      const event = i % 2 ? 'chat-msg' : undefined;
      sent.push({ ...(await H.publish(h, ch, payloads[i], { event })), event });
    }
    await H.waitFor(() => got.length >= payloads.length, { what: 'EventSource events', timeoutMs: 5000 });
    await H.sleep(100);
    assert.equal(got.length, payloads.length, 'no extra event');
    for (let i = 0; i < payloads.length; i++) {
      assert.equal(got[i].type, sent[i].event ?? 'message');
      assert.equal(got[i].lastEventId, sent[i].cursor);
      const m = JSON.parse(got[i].data);
      assert.equal(m.offset, sent[i].offset);
      assert.equal(m.channel, ch);
      assert.deepEqual(m.data, payloads[i]);
    }
    assert.deepEqual(errors, []);
  } finally {
    es.close();
  }
});

test('eventsource package: resume with the Last-Event-ID header gets exactly the missed messages', async () => {
  const ch = 'basic:es-resume';
  const first = [];
  for (let i = 1; i <= 10; i++) first.push(await H.publish(h, ch, { i }));
  // Resume from after message 4 through the header an EventSource sends on reconnect.
  const es = new EventSource(`${h.base}/sse?channel=${ch}`, { headers: { 'Last-Event-ID': first[3].cursor } });
  const got = [];
  try {
    es.onmessage = (e) => got.push({ m: JSON.parse(e.data), id: e.lastEventId });
    await H.waitFor(() => got.length >= 6, { what: 'replay of 5..10' });
    await H.publish(h, ch, { i: 11 });
    await H.waitFor(() => got.length >= 7, { what: 'live message 11' });
    await H.sleep(100);
    assert.deepEqual(got.map((g) => g.m.offset), [5, 6, 7, 8, 9, 10, 11]);
    assert.deepEqual(got.map((g) => g.m.data.i), [5, 6, 7, 8, 9, 10, 11]);
    assert.equal(got[5].id, first[9].cursor);
  } finally {
    es.close();
  }
});

test('publish -> curl SSE (replay after since, then live until --max-time)', async () => {
  const ch = 'basic:curl-sse';
  const p1 = await H.publish(h, ch, 'one');
  await H.publish(h, ch, 'two', { event: 'second' });
  await H.publish(h, ch, { three: 3 });
  const pending = H.curl(['-sS', '-N', '--max-time', '2', `${h.base}/sse?channel=${ch}&since=${p1.cursor}`]);
  await H.sleep(700);
  const p4 = await H.publish(h, ch, [4]);
  const r = await pending;
  assert.equal(r.code, 28, `curl ends by --max-time (exit 28), got ${r.code} ${r.stderr}`);
  const blocks = r.stdout.split('\n\n').filter(Boolean);
  assert.equal(blocks[0], 'retry: 3000');
  const events = blocks.filter((b) => b.includes('\ndata: ') || b.startsWith('data: '));
  const msgs = events.map((b) => JSON.parse(/^data: (.*)$/m.exec(b)[1]));
  assert.deepEqual(msgs.map((m) => m.offset), [2, 3, 4]);
  assert.deepEqual(msgs.map((m) => m.data), ['two', { three: 3 }, [4]]);
  assert.match(events[0], /^id: \S+\nevent: second\ndata: /);
  assert.ok(events[2].startsWith(`id: ${p4.cursor}\n`));
  // The position-only block sits between the replay and the live message.
  const posIdx = blocks.findIndex((b) => /^id: \S+$/.test(b));
  assert.ok(posIdx > blocks.indexOf(events[1]) && posIdx < blocks.indexOf(events[2]), `blocks: ${JSON.stringify(blocks)}`);
});

test('SSE heartbeat comment after --sse-heartbeat seconds of silence; --sse-retry sets the hint', async () => {
  const h2 = await H.startHerald(['--sse-heartbeat', '1', '--sse-retry', '1234']);
  try {
    const { reader, preamble } = await H.openSynced(h2, { channels: 'hb' });
    try {
      assert.equal(preamble[0].retry, '1234');
      const t0 = Date.now();
      const b = await reader.next(4000);
      assert.deepEqual(b.comments, [''], `expected a ":" comment, got ${JSON.stringify(b)}`);
      assert.equal(b.raw, ':\n');
      assert.ok(Date.now() - t0 < 3500);
      // A heartbeat does not disturb delivery.
      const p = await H.publish(h2, 'hb', 'after heartbeat');
      const ev = await reader.nextEvent(3000);
      assert.equal(ev.id, p.cursor);
      assert.equal(JSON.parse(ev.data).data, 'after heartbeat');
    } finally {
      reader.close();
    }
  } finally {
    await h2.stop();
  }
});

test('long poll: held poll without since is woken by a publish; then since=cursor continues', async () => {
  const ch = 'basic:poll';
  const agent = H.keepAliveAgent();
  try {
    const held = H.poll(h, ch, { timeout: 10, agent });
    await H.waitFor(async () => {
      const c = (await H.get(h, '/api/channels')).json.channels.find((x) => x.channel === ch);
      return c && c.subscribers.poll === 1;
    }, { what: 'the poll to be held' });
    const p = await H.publish(h, ch, payloads[0], { event: 'pe' });
    const r = await held;
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(Object.keys(r.json), ['messages', 'cursor', 'recovered']);
    assert.equal(r.json.recovered, true);
    assert.equal(r.json.messages.length, 1);
    const m = r.json.messages[0];
    assert.deepEqual(m.data, payloads[0]);
    assert.equal(m.event, 'pe');
    assert.equal(m.offset, 1);
    assert.equal(r.json.cursor, p.cursor);
    // Everything published meanwhile comes with the next poll at once, data exact.
    for (let i = 1; i < payloads.length; i++) await H.publish(h, ch, payloads[i]);
    const r2 = await H.poll(h, ch, { since: r.json.cursor, timeout: 10, agent });
    assert.ok(r2.elapsed < 2000, 'not held when messages are waiting');
    assert.deepEqual(r2.json.messages.map((x) => x.offset), payloads.slice(1).map((_, i) => i + 2));
    assert.deepEqual(r2.json.messages.map((x) => x.data), payloads.slice(1));
    assert.equal(r2.json.recovered, true);
  } finally {
    agent.destroy();
  }
});

test('long poll and publish with curl', async () => {
  const ch = 'basic:curl-poll';
  const pub = await H.curlHttp(h, 'POST', '/api/publish', { body: { channel: ch, data: { via: 'curl' }, event: 'c' } });
  assert.equal(pub.status, 200, pub.body);
  assert.equal(pub.json.offset, 1);
  assert.equal(typeof pub.json.cursor, 'string');
  const empty = H.encodeCursor([{ tag: H.channelTag(ch), epoch: H.decodeCursor(pub.json.cursor)[0].epoch, offset: 0 }]);
  const r = await H.curlHttp(h, 'GET', `/poll?channel=${ch}&since=${empty}&timeout=5`);
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(r.json.messages.map((m) => [m.offset, m.event, m.data]), [[1, 'c', { via: 'curl' }]]);
  assert.equal(r.json.cursor, pub.json.cursor);
  const hist = await H.curlHttp(h, 'GET', `/api/history?channel=${ch}`);
  assert.equal(hist.status, 200);
  assert.deepEqual(hist.json.messages.map((m) => m.data), [{ via: 'curl' }]);
});

test('broadcast: one result per channel in request order, delivered to each channel', async () => {
  const { reader } = await H.openSynced(h, { channels: ['bc:a', 'bc:b'] });
  try {
    await H.publish(h, 'bc:b', 'pre');  // bc:b is one ahead
    await reader.nextEvent();
    const r = await H.request(h, 'POST', '/api/broadcast', { body: { channels: ['bc:a', 'bc:b', 'bc:c'], data: { hello: 'all' }, event: 'bcast' } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.results.map((x) => [x.channel, x.offset]), [['bc:a', 1], ['bc:b', 2], ['bc:c', 1]]);
    for (const x of r.json.results) {
      assert.equal(typeof x.cursor, 'string');
      assert.equal(x.error, undefined);
    }
    const evs = await reader.events(2);
    assert.deepEqual(evs.map((e) => JSON.parse(e.data)).map((m) => [m.channel, m.offset, m.event, m.data]).sort(),
      [['bc:a', 1, 'bcast', { hello: 'all' }], ['bc:b', 2, 'bcast', { hello: 'all' }]]);
    const c = await H.curlHttp(h, 'POST', '/api/broadcast', { body: { channels: ['bc:c'], data: 2 } });
    assert.equal(c.status, 200);
    assert.equal(c.json.results[0].offset, 2);
  } finally {
    reader.close();
  }
});

test('history API: newest `limit` without since, messages after since, limit, cursor', async () => {
  const ch = 'basic:hist';
  const pubs = [];
  for (let i = 1; i <= 12; i++) pubs.push(await H.publish(h, ch, { i }));
  let r = await H.history(h, ch, { limit: 3 });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.messages.map((m) => m.offset), [10, 11, 12]);
  assert.equal(r.json.recovered, true);
  assert.equal(r.json.cursor, pubs[11].cursor);
  r = await H.history(h, ch, {});
  assert.deepEqual(r.json.messages.map((m) => m.offset), [...Array(12).keys()].map((i) => i + 1));
  r = await H.history(h, ch, { since: pubs[4].cursor, limit: 4 });
  assert.deepEqual(r.json.messages.map((m) => m.data.i), [6, 7, 8, 9]);
  assert.equal(r.json.cursor, pubs[8].cursor, 'cursor after the last returned message');
  r = await H.history(h, ch, { since: r.json.cursor });
  assert.deepEqual(r.json.messages.map((m) => m.offset), [10, 11, 12]);
  r = await H.history(h, ch, { since: pubs[11].cursor });
  assert.deepEqual(r.json.messages, []);
  assert.equal(r.json.recovered, true);
  assert.equal(r.json.cursor, pubs[11].cursor);
  // A multi-channel cursor covering the channel works too.
  const { reader } = await H.openSynced(h, { channels: [ch, 'basic:other'] });
  reader.close();
  r = await H.history(h, ch, { since: reader.lastId });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.messages, []);
});

test('channels API lists channels with offset, epoch, history and per-transport subscribers', async () => {
  const ch = 'basic:chan';
  await H.publish(h, ch, 1);
  await H.publish(h, ch, 2);
  const { reader } = await H.openSynced(h, { channels: ch });
  const held = H.poll(h, ch, { timeout: 10 });
  try {
    const entry = await H.waitFor(async () => {
      const r = await H.get(h, '/api/channels');
      assert.equal(r.status, 200);
      assert.equal(r.json.truncated, false);
      const c = r.json.channels.find((x) => x.channel === ch);
      return c && c.subscribers.poll === 1 ? c : null;
    }, { what: 'poll subscriber counted' });
    assert.equal(entry.offset, 2);
    assert.equal(entry.history, 2);
    assert.ok(Number.isInteger(entry.epoch) && entry.epoch > 0);
    assert.equal(entry.epoch, H.decodeCursor(reader.lastId)[0].epoch);
    assert.deepEqual(entry.subscribers, { sse: 1, poll: 1, ws: 0 });
  } finally {
    reader.close();
    await H.publish(h, ch, 3);
    await held;
  }
  const c = await H.waitFor(async () => {
    const x = (await H.get(h, '/api/channels')).json.channels.find((y) => y.channel === ch);
    return x.subscribers.sse === 0 && x.subscribers.poll === 0 ? x : null;
  }, { what: 'subscribers to go' });
  assert.equal(c.offset, 3);
  const viaCurl = await H.curlHttp(h, 'GET', '/api/channels');
  assert.equal(viaCurl.status, 200);
  assert.ok(viaCurl.json.channels.some((x) => x.channel === ch));
});

test('healthz and readyz answer 200 JSON', async () => {
  for (const p of ['/healthz', '/readyz']) {
    const r = await H.get(h, p);
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^application\/json/);
    assert.equal(typeof r.json, 'object');
  }
  const c = await H.curlHttp(h, 'GET', '/healthz');
  assert.equal(c.status, 200);
});

test('the demo page: GET / is HTML using EventSource', async () => {
  const r = await H.get(h, '/');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/html/);
  assert.match(r.text, /<html/i);
  assert.match(r.text, /EventSource/);
  const c = await H.curlHttp(h, 'GET', '/');
  assert.equal(c.status, 200);
  assert.match(c.body, /new EventSource\(/);
});
