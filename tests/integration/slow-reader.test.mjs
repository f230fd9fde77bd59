// A reader that stops reading is cut once its outbound queue passes --max-queued-bytes,
// counted in herald_slow_disconnects_total, while a well-behaved subscriber of the same
// channel keeps receiving every message in order.
import { test as nodeTest, before, after } from 'node:test';

// Every test is bounded in time (on top of the bounded waits inside).
const test = (name, fn) => nodeTest(name, { timeout: 60000 }, fn);
import assert from 'node:assert/strict';
import * as H from './lib/herald.mjs';

let h;
before(async () => { h = await H.startHerald(['--threads', '2', '--max-queued-bytes', '65536', '--history-size', '2000']); });
after(async () => { await h?.stop(); });

const sseCount = async (ch) => (await H.get(h, '/api/channels')).json.channels.find((c) => c.channel === ch)?.subscribers.sse;

test('slow SSE reader is cut past --max-queued-bytes; a good reader gets everything in order', async () => {
  const ch = 'slow:big';
  const { reader: good } = await H.openSynced(h, { channels: ch });
  const slow = await H.SSEReader.open(h, { channels: ch, pauseReading: true });
  const agent = H.keepAliveAgent(1);
  try {
    await H.waitFor(async () => (await sseCount(ch)) === 2, { what: 'both subscribers' });
    const m0 = await H.metrics(h);
    assert.equal(m0.get('herald_connections{transport="sse"}'), 2);
    // 16 KB of data: a good reader in lockstep is never more than one message (a quarter
    // of the cap) behind. (With 32 KB messages herald sometimes cuts even such a reader:
    // see the lockstep test below.)
    const big = 'x'.repeat(16 * 1024);
    const MAX = 3000;  // ~48 MB: far more than the kernel buffers of one connection
    let n = 0, cut = false;
    // The good reader keeps up: each message is read before the next is published; the
    // slow one never reads.
    const checkGood = (e, i) => {
      const m = JSON.parse(e.data);
      assert.equal(m.offset, i);
      assert.equal(m.data.i, i);
      assert.equal(m.data.big.length, big.length);
    };
    while (n < MAX && !cut) {
      await H.publish(h, ch, { i: n + 1, big }, { agent });
      n++;
      checkGood(await good.nextEvent(5000), n);
      if (n % 5 === 0) cut = (await H.metrics(h)).get('herald_slow_disconnects_total') > m0.get('herald_slow_disconnects_total');
    }
    assert.ok(cut, `the slow reader was not cut after ${n} messages of 16 KB`);
    const m1 = await H.metrics(h);
    assert.equal(m1.get('herald_slow_disconnects_total') - m0.get('herald_slow_disconnects_total'), 1, 'exactly one slow disconnect');
    await H.waitFor(async () => (await sseCount(ch)) === 1, { what: 'the slow subscriber to be removed' });
    // Publishing goes on after the cut, the good reader still gets every message.
    for (let k = 0; k < 10; k++) {
      await H.publish(h, ch, { i: n + 1, big }, { agent });
      n++;
      checkGood(await good.nextEvent(5000), n);
    }
    await H.sleep(50);
    assert.equal(good.blocks.filter((b) => b.data !== undefined).length, 0, 'nothing extra');
    assert.equal(good.closed, false, 'the good reader is still connected');
    assert.equal((await H.metrics(h)).get('herald_connections{transport="sse"}'), 1);
    // The slow reader, once it reads again, finds a clean prefix of the stream and the end.
    slow.resumeReading();
    await slow.waitClosed(10000);
    assert.equal(slow.status, 200);
    const offsets = slow.blocks.filter((b) => b.data !== undefined).map((b) => JSON.parse(b.data).offset);
    assert.ok(offsets.length < n, `the slow reader got ${offsets.length} of ${n}`);
    assert.deepEqual(offsets, offsets.map((_, k) => k + 1), 'what it got is an in-order prefix');
    // (Catching up from its last id is the next test's business.)
    slow.lastIdSeen = slow.blocks.filter((b) => b.id !== undefined).at(-1).id;
  } finally {
    good.close();
    slow.close();
    agent.destroy();
  }
});

test('a reader that keeps up is not cut: 32 KB messages, 64 KB cap, each read before the next is published', async () => {
  // At any moment this reader has every byte of message k before message k+1 exists, so
  // the server never holds more than one message (~33 KB < 64 KB) that it has not
  // received. It must never count as slow.
  // Publications rotate over 4 keep-alive connections, so that publisher and reader are
  // served now by the same event-loop thread, now by another.
  const ch = 'slow:lockstep';
  const { reader } = await H.openSynced(h, { channels: ch });
  const agents = Array.from({ length: 4 }, () => H.keepAliveAgent(1));
  const m0 = await H.metrics(h);
  const big = 'z'.repeat(32 * 1024);
  try {
    for (let i = 1; i <= 2000; i++) {
      await H.publish(h, ch, { i, big }, { agent: agents[i % agents.length] });
      let e;
      try {
        e = await reader.nextEvent(5000);
      } catch (err) {
        const d = (await H.metrics(h)).get('herald_slow_disconnects_total') - m0.get('herald_slow_disconnects_total');
        assert.fail(`the lockstep reader was disconnected after receiving message ${i - 1} completely, when message ${i} ` +
          `was published (${err.message}); herald_slow_disconnects_total +${d}`);
      }
      assert.equal(JSON.parse(e.data).offset, i);
    }
  } finally {
    reader.close();
    for (const a of agents) a.destroy();
  }
});

test('a resume whose backlog exceeds --max-queued-bytes still recovers every message (SSE)', async () => {
  // A client that was away while 100 messages of ~1 KB (100 KB > the 64 KB cap) were
  // published comes back with its cursor. History holds all of them, so recovery must
  // deliver them all; being cut before the first byte, on every retry, would mean the
  // client can never catch up.
  const ch = 'slow:backlog';
  const first = await H.publish(h, ch, { i: 1, pad: 'y'.repeat(1000) });
  for (let i = 2; i <= 101; i++) await H.publish(h, ch, { i, pad: 'y'.repeat(1000) });
  const m0 = await H.metrics(h);
  const slowDelta = async () => (await H.metrics(h)).get('herald_slow_disconnects_total') - m0.get('herald_slow_disconnects_total');
  let r;
  try {
    r = await H.SSEReader.open(h, { channels: ch, since: first.cursor });
  } catch (err) {
    assert.fail(`GET /sse?channel=${ch}&since=<cursor after offset 1>: the connection was closed with no response ` +
      `(${err.message}); herald_slow_disconnects_total +${await slowDelta()}`);
  }
  try {
    assert.equal(r.status, 200);
    const got = [];
    while (got.length < 100) {
      let e;
      try {
        e = await r.nextEvent(5000);
      } catch (err) {
        assert.fail(`the stream ended after ${got.length} of 100 replayed messages (${err.message}); ` +
          `herald_slow_disconnects_total +${await slowDelta()}`);
      }
      got.push(JSON.parse(e.data).offset);
    }
    assert.deepEqual(got, Array.from({ length: 100 }, (_, k) => k + 2));
  } finally {
    r.close();
  }
});

test('with default settings, an SSE resume over a 1.6 MB backlog delivers every message', async () => {
  // Same as above with the defaults (--max-queued-bytes 1 MiB, --replay-limit 10000): a
  // client away while 1600 messages of ~1 KB were published resumes with its cursor.
  const hd = await H.startHerald(['--history-size', '5000']);
  const agent = H.keepAliveAgent(4);
  try {
    const ch = 'slow:default-backlog';
    const first = await H.publish(hd, ch, 0);
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 400; i++) await H.publish(hd, ch, { pad: 'y'.repeat(1000) }, { agent });
    }));
    const m0 = await H.metrics(hd);
    let r;
    try {
      r = await H.SSEReader.open(hd, { channels: ch, since: first.cursor });
    } catch (err) {
      const d = (await H.metrics(hd)).get('herald_slow_disconnects_total') - m0.get('herald_slow_disconnects_total');
      assert.fail(`GET /sse?channel=${ch}&since=<cursor after offset 1> with 1600 messages (~1.6 MB) to replay: ` +
        `the connection was closed with no response (${err.message}); herald_slow_disconnects_total +${d}`);
    }
    try {
      const evs = await r.events(1600, 15000);
      assert.deepEqual(evs.map((e) => JSON.parse(e.data).offset), Array.from({ length: 1600 }, (_, k) => k + 2));
    } finally {
      r.close();
    }
  } finally {
    agent.destroy();
    await hd.stop();
  }
});

test('a resume whose backlog exceeds --max-queued-bytes: long polling pages through it', async () => {
  const ch = 'slow:backlog-poll';
  const first = await H.publish(h, ch, { i: 1, pad: 'y'.repeat(1000) });
  for (let i = 2; i <= 101; i++) await H.publish(h, ch, { i, pad: 'y'.repeat(1000) });
  const got = [];
  let cursor = first.cursor;
  for (let k = 0; k < 10 && got.length < 100; k++) {
    const r = await H.poll(h, ch, { since: cursor, limit: 1000, timeout: 1 });
    assert.equal(r.status, 200);
    got.push(...r.json.messages.map((m) => m.offset));
    cursor = r.json.cursor;
  }
  assert.deepEqual(got, Array.from({ length: 100 }, (_, k) => k + 2));
});
