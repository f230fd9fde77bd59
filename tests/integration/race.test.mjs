// The resume race: a publisher publishes a bounded sequence as fast as it can (keep-alive
// agents, several requests in flight) while a subscriber keeps dropping its connection
// after a few events and resuming from the last id / cursor, hundreds of times. At the end
// the subscriber must have every offset 1..N exactly once, in order, with the data the
// publisher was told was stored at that offset.
import { test as nodeTest, before, after } from 'node:test';

// Every test is bounded in time (on top of the bounded waits inside).
const test = (name, fn) => nodeTest(name, { timeout: 120000 }, fn);
import assert from 'node:assert/strict';
import * as H from './lib/herald.mjs';

let h;
let publishing = false;  // true while the publisher runs: resumes then race with it
before(async () => { h = await H.startHerald(['--threads', '2', '--history-size', '20000']); });
after(async () => { await h?.stop(); });

const MIN_RESUMES = 300;

/**
 * Publishes `n` messages per channel, alternating over `channels`, `inFlight` requests at
 * a time over keep-alive connections. Resolves with a Map channel -> Map offset -> seq.
 */
async function publisher(channels, n, inFlight = 4) {
  const agent = H.keepAliveAgent(inFlight);
  const stored = new Map(channels.map((c) => [c, new Map()]));
  let next = 0;
  const total = n * channels.length;
  publishing = true;
  try {
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (next < total) {
        const seq = next++;
        const ch = channels[seq % channels.length];
        const r = await H.publish(h, ch, { seq, pad: 'p'.repeat(seq % 50) }, { agent });
        assert.ok(!stored.get(ch).has(r.offset), `offset ${r.offset} of ${ch} handed out twice`);
        stored.get(ch).set(r.offset, seq);
      }
    }));
  } finally {
    publishing = false;
    agent.destroy();
  }
  for (const [ch, m] of stored) assert.equal(m.size, n, `publisher got ${m.size} offsets on ${ch}`);
  return stored;
}

/** Checks what a subscriber received against what the publisher stored. */
function verify(received, stored, n) {
  for (const [ch, offsets] of stored) {
    const got = received.get(ch);
    const expectedOffsets = Array.from({ length: n }, (_, i) => i + 1);
    if (got.length !== n || got.some((m, i) => m.offset !== i + 1)) {
      // A compact description of the first divergence rather than a 3000-line diff.
      const i = got.findIndex((m, k) => m.offset !== k + 1);
      assert.fail(`${ch}: received ${got.length} messages, expected offsets 1..${n} once each in order; ` +
        `first divergence at index ${i}: got offset ${got[i]?.offset} (around: ${got.slice(Math.max(0, i - 3), i + 4).map((m) => m.offset).join(',')})`);
    }
    assert.deepEqual(got.map((m) => m.offset), expectedOffsets);
    for (const m of got) assert.equal(m.data.seq, offsets.get(m.offset), `${ch} offset ${m.offset} carries the data published there`);
  }
}

/** SSE subscriber that reads 1..maxK events, drops the connection and resumes. */
async function sseSubscriber(channels, n, seed, onSynced) {
  const rand = H.rng(seed);
  const received = new Map(channels.map((c) => [c, []]));
  const total = () => [...received.values()].reduce((s, l) => s + l.length, 0);
  let resumes = 0, viaHeader = 0, during = 0, lastId;
  const deadline = Date.now() + 90000;
  // First connection: no cursor, positioned at "now" before the publisher starts.
  let { reader } = await H.openSynced(h, { channels });
  lastId = reader.lastId;
  onSynced();
  for (;;) {
    const k = 1 + Math.floor(rand() * 8);
    let read = 0;
    while (read < k && total() < n * channels.length) {
      const b = await reader.next(10000);
      if (b.event === 'reset') assert.fail(`unexpected reset: ${b.data}`);
      if (b.id !== undefined) lastId = b.id;
      if (b.data === undefined) continue;
      const m = JSON.parse(b.data);
      received.get(m.channel).push(m);
      read++;
    }
    reader.close();
    if (total() >= n * channels.length) break;
    assert.ok(Date.now() < deadline, `subscriber too slow: ${total()} messages after 90 s`);
    resumes++;
    if (publishing) during++;
    const useHeader = rand() < 0.5;
    if (useHeader) viaHeader++;
    reader = await H.SSEReader.open(h, useHeader ? { channels, lastEventId: lastId } : { channels, since: lastId });
    assert.equal(reader.status, 200, `resume #${resumes}: ${reader.status} ${reader.body}`);
  }
  // Nothing more than N per channel was ever delivered: a last resume sees no replay.
  const { reader: tail, preamble } = await H.openSynced(h, { channels, since: lastId });
  tail.close();
  assert.deepEqual(preamble.filter((b) => b.data !== undefined), [], 'nothing after the last offset');
  return { received, resumes, viaHeader, during };
}

/** Long-poll subscriber: since=cursor in a loop with small random limits. */
async function pollSubscriber(channels, n, seed, onSynced) {
  const rand = H.rng(seed);
  const received = new Map(channels.map((c) => [c, []]));
  const total = () => [...received.values()].reduce((s, l) => s + l.length, 0);
  const agent = H.keepAliveAgent(1);
  let polls = 0, fresh = 0, during = 0;
  const deadline = Date.now() + 90000;
  try {
    const first = await H.poll(h, channels, { timeout: 0, agent });
    let cursor = first.json.cursor;
    onSynced();
    while (total() < n * channels.length) {
      assert.ok(Date.now() < deadline, `subscriber too slow: ${total()} messages after 90 s`);
      // Now and then a new connection instead of the keep-alive one.
      const useFresh = rand() < 0.2;
      if (useFresh) fresh++;
      const limit = 1 + Math.floor(rand() * 8);
      const r = await H.poll(h, channels, { since: cursor, timeout: 10, limit, agent: useFresh ? false : agent });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.recovered, true, `unexpected reset: ${r.text}`);
      assert.ok(r.json.messages.length <= limit, `limit ${limit} exceeded: ${r.json.messages.length}`);
      for (const m of r.json.messages) received.get(m.channel).push(m);
      cursor = r.json.cursor;
      polls++;
      if (publishing) during++;
    }
    const tail = await H.poll(h, channels, { since: cursor, timeout: 0 });
    assert.deepEqual(tail.json.messages, [], 'nothing after the last offset');
  } finally {
    agent.destroy();
  }
  return { received, resumes: polls, fresh, during };
}

async function race(kind, channels, n, seed) {
  let synced;
  const ready = new Promise((r) => { synced = r; });
  const sub = (kind === 'sse' ? sseSubscriber : pollSubscriber)(channels, n, seed, synced);
  await ready;
  const [stored, result] = await Promise.all([publisher(channels, n), sub]);
  verify(result.received, stored, n);
  assert.ok(result.resumes >= MIN_RESUMES, `only ${result.resumes} resumes`);
  // The point is to resume while messages are being published.
  // (A sixth: on a loaded machine, or under a sanitizer, the publisher's share of the run shrinks.)
  assert.ok(result.during >= MIN_RESUMES / 6, `only ${result.during} of ${result.resumes} resumes raced the publisher`);
  return result;
}

test('SSE resume race: 3000 messages, the subscriber resumes hundreds of times, gets 1..N once each in order', async (t) => {
  const r = await race('sse', ['race:sse'], 3000, 1001);
  t.diagnostic(`resumes: ${r.resumes} (${r.viaHeader} with Last-Event-ID, ${r.during} while publishing)`);
  assert.ok(r.viaHeader > 50 && r.resumes - r.viaHeader > 50, 'both resume styles exercised');
});

test('long-poll resume race: 2000 messages, hundreds of polls with small limits, 1..N once each in order', async (t) => {
  const r = await race('poll', ['race:poll'], 2000, 2002);
  t.diagnostic(`polls: ${r.resumes} (${r.fresh} on a new connection, ${r.during} while publishing)`);
});

test('multi-channel SSE resume race: 2 channels published alternately, exact per channel', async (t) => {
  const r = await race('sse', ['race:m:a', 'race:m:b'], 1500, 3003);
  t.diagnostic(`resumes: ${r.resumes} (${r.during} while publishing)`);
});

test('multi-channel long-poll resume race: 2 channels published alternately, exact per channel', async (t) => {
  const r = await race('poll', ['race:mp:a', 'race:mp:b'], 1000, 4004);
  t.diagnostic(`polls: ${r.resumes} (${r.during} while publishing)`);
});
