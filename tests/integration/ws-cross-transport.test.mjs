// Cursors and messages cross transports: an SSE (multi-channel) or long-poll cursor
// resumes over WebSocket exactly, a WebSocket push cursor resumes over /poll and /sse,
// WebSocket publishes reach SSE and long-poll subscribers, HTTP publishes reach
// WebSocket subscribers, and a WebSocket subscriber that keeps disconnecting and
// resuming while ~2000 messages are published sees offsets 1..N exactly once, in order.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, publish, publishRaw, poll, openSynced, sleep, waitFor, rng } from './lib/herald.mjs';
import { HeraldWs } from './lib/ws-client.mjs';

const open = [];
async function ws(h) {
  const c = await HeraldWs.open(h);
  open.push(c);
  return c;
}
const msgOf = (block) => JSON.parse(block.data);
let uniq = 0;
const name = (p) => `${p}${process.pid}x${++uniq}`;

describe('cross-transport cursors and delivery', () => {
  let h;
  before(async () => {
    // The race test publishes over one WebSocket as fast as replies come back: lift the
    // per-connection command rate limit (covered by the hostile-client tests).
    h = await startHerald(['--namespace', 'chat:client_publish=true', '--history-size', '5000',
      '--ws-commands-per-second', '0']);
  });
  after(async () => { for (const c of open.splice(0)) c.destroy(); await h?.stop(); });

  it('an SSE cursor over two channels resumes each channel over WebSocket exactly', async () => {
    const A = name('xa'), B = name('xb');
    const { reader } = await openSynced(h, { channels: [A, B] });
    await publish(h, A, 'a1');
    await publish(h, B, 'b1');
    await publish(h, A, 'a2');
    const evs = await reader.events(3);
    assert.deepEqual(evs.map((e) => msgOf(e).data), ['a1', 'b1', 'a2']);
    const mid = evs[0].id;    // A at 1, B at 0
    const end = evs[2].id;    // A at 2, B at 1
    reader.close();
    for (const [ch, d] of [[A, 'a3'], [A, 'a4'], [B, 'b2'], [B, 'b3']]) await publish(h, ch, d);

    const c = await ws(h);
    const ra = await c.subscribe(A, end);
    assert.equal(ra.recovered, true);
    const pa = await c.takePushes(2);
    assert.deepEqual(pa.map((p) => [p.channel, p.offset, p.data]), [[A, 3, 'a3'], [A, 4, 'a4']]);
    const rb = await c.subscribe(B, end);
    assert.equal(rb.recovered, true);
    const pb = await c.takePushes(2);
    assert.deepEqual(pb.map((p) => [p.channel, p.offset, p.data]), [[B, 2, 'b2'], [B, 3, 'b3']]);
    assert.deepEqual(await c.quietPushes(200), [], 'nothing beyond the missed messages');

    const c2 = await ws(h);
    assert.equal((await c2.subscribe(A, mid)).recovered, true);
    assert.deepEqual((await c2.takePushes(3)).map((p) => p.data), ['a2', 'a3', 'a4']);
    assert.equal((await c2.subscribe(B, mid)).recovered, true);
    assert.deepEqual((await c2.takePushes(3)).map((p) => p.data), ['b1', 'b2', 'b3']);
    assert.deepEqual(await c2.quietPushes(200), []);
    c.assertClean();
    c2.assertClean();
  });

  it('a long-poll cursor over two channels resumes each channel over WebSocket exactly', async () => {
    const C = name('pc'), D = name('pd');
    const p0 = await poll(h, [C, D], { timeout: 0 });
    assert.equal(p0.status, 200);
    await publish(h, C, 'c1');
    await publish(h, D, 'd1');
    const p1 = await poll(h, [C, D], { since: p0.json.cursor, timeout: 0 });
    assert.deepEqual(p1.json.messages.map((m) => m.data).sort(), ['c1', 'd1']);
    await publish(h, C, 'c2');
    await publish(h, D, 'd2');
    await publish(h, D, 'd3');
    const c = await ws(h);
    assert.equal((await c.subscribe(C, p1.json.cursor)).recovered, true);
    assert.deepEqual((await c.takePushes(1)).map((p) => [p.offset, p.data]), [[2, 'c2']]);
    assert.equal((await c.subscribe(D, p1.json.cursor)).recovered, true);
    assert.deepEqual((await c.takePushes(2)).map((p) => [p.offset, p.data]), [[2, 'd2'], [3, 'd3']]);
    assert.deepEqual(await c.quietPushes(200), []);
    c.assertClean();
  });

  it('a WebSocket push cursor (and subscribe/publish reply cursors) resume over /poll and /sse exactly', async () => {
    const E = name('chat:e');
    const c = await ws(h);
    const sub = await c.subscribe(E);
    const pubs = [];
    for (let i = 1; i <= 3; i++) pubs.push(await c.publish(E, { i }));
    const pushes = await c.takePushes(3);
    assert.deepEqual(pushes.map((p) => p.offset), [1, 2, 3]);

    const r = await poll(h, E, { since: pushes[0].cursor, timeout: 0 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.recovered, true);
    assert.deepEqual(r.json.messages.map((m) => [m.offset, m.data.i]), [[2, 2], [3, 3]]);
    const again = await poll(h, E, { since: r.json.cursor, timeout: 0 });
    assert.deepEqual(again.json.messages, []);
    const fromSub = await poll(h, E, { since: sub.cursor, timeout: 0 });
    assert.deepEqual(fromSub.json.messages.map((m) => m.offset), [1, 2, 3], 'the subscribe reply cursor resumes before the first message');
    const fromPub = await poll(h, E, { since: pubs[1].cursor, timeout: 0 });
    assert.deepEqual(fromPub.json.messages.map((m) => m.offset), [3], 'the WS publish reply cursor resumes after that message');

    const { reader, preamble } = await openSynced(h, { channels: E, since: pushes[0].cursor });
    const evs = preamble.filter((b) => b.data !== undefined);
    assert.deepEqual(evs.map((b) => msgOf(b).offset), [2, 3]);
    assert.equal(evs[1].id, pushes[2].cursor, 'SSE ids and WS push cursors are the same tokens');
    assert.ok(!preamble.some((b) => b.event === 'reset'));
    reader.close();
    c.assertClean();
  });

  it('a WebSocket publish reaches SSE and long-poll subscribers', async () => {
    const F = name('chat:f');
    const pubWs = await ws(h);
    const { reader } = await openSynced(h, { channels: F });
    const sub = await pubWs.subscribe(F);
    const held = poll(h, F, { since: sub.cursor, timeout: 10 });
    await sleep(100);
    const r = await pubWs.publish(F, { hello: 'sse and poll' }, 'greet');
    const ev = await reader.nextEvent(5000);
    assert.equal(ev.event, 'greet');
    assert.equal(ev.id, r.cursor);
    const m = msgOf(ev);
    assert.equal(m.channel, F);
    assert.equal(m.offset, r.offset);
    assert.deepEqual(m.data, { hello: 'sse and poll' });
    const pr = await held;
    assert.equal(pr.status, 200);
    assert.ok(pr.elapsed < 5000, `the held poll returned after ${pr.elapsed} ms`);
    assert.deepEqual(pr.json.messages.map((x) => [x.offset, x.event, x.data]), [[r.offset, 'greet', { hello: 'sse and poll' }]]);
    reader.close();
    pubWs.assertClean();
  });

  it('POST /publish (client publish) and POST /api/publish reach WebSocket subscribers', async () => {
    const G = name('chat:g');
    const c = await ws(h);
    await c.subscribe(G);
    const r1 = await publishRaw(h, G, { via: 'client' }, { path: '/publish' });
    assert.equal(r1.status, 200, r1.text);
    const r2 = await publishRaw(h, G, { via: 'server' }, { event: 'srv' });
    assert.equal(r2.status, 200, r2.text);
    const ps = await c.takePushes(2);
    assert.deepEqual(ps.map((p) => [p.offset, p.data.via, p.cursor]), [[r1.json.offset, 'client', r1.json.cursor], [r2.json.offset, 'server', r2.json.cursor]]);
    assert.equal(ps[1].event, 'srv');
    // Client publish where the namespace forbids it reaches nobody.
    const N = name('news');
    await c.subscribe(N);
    const r3 = await publishRaw(h, N, 'no', { path: '/publish' });
    assert.equal(r3.status, 403);
    assert.deepEqual(await c.quietPushes(200), []);
    c.assertClean();
  });

  it('resume race: ~2000 messages while a subscriber disconnects/resubscribes ≥100 times → offsets 1..N once, in order', { timeout: 120000 }, async () => {
    const CH = name('chat:race');
    const N = 2000;
    const rand = rng(20261128);
    const publisher = await ws(h);
    publisher.keepLog = false;
    const seen = [];
    const problems = [];
    let expected = 1, cursor, cycles = 0, reconnects = 0, resubscribes = 0, notRecovered = 0;
    let got = 0;
    let conn = null;

    // The subscriber's handler for one subscription period.
    const attach = (c, period) => {
      c.onJson = (j) => {
        if (j && j.id !== undefined && j.id === period.subId) period.replied = true;
        if (j && j.id !== undefined && j.id === period.unsubId) period.over = true;
      };
      c.onPush = (p) => {
        if (p.channel !== CH) return;
        if (!period.replied) problems.push(`push ${p.offset} before the subscribe reply`);
        if (period.over) { problems.push(`push ${p.offset} after the unsubscribe reply`); return; }
        seen.push(p.offset);
        if (p.offset !== expected) problems.push(`offset ${p.offset} where ${expected} was due (cycle ${cycles})`);
        expected = p.offset + 1;
        cursor = p.cursor;
        got++;
      };
    };

    // The initial subscription fixes the start: before the first message.
    conn = await ws(h);
    conn.keepLog = false;
    let period = { replied: false, over: false, subId: 'sub0' };
    attach(conn, period);
    cursor = (await conn.request({ id: 'sub0', method: 'subscribe', channel: CH })).result.cursor;

    const deadline = Date.now() + 90000;
    let published = 0, pubDone = false, cyclesWhilePublishing = 0;
    const pubTask = (async () => {
      while (published < N) {
        // Keep the subscriber cycling while messages flow: at least one cycle per 19
        // messages, so that ≥100 cycles happen during the publication.
        while (cycles < Math.floor(published / 19) && Date.now() < deadline) await sleep(1);
        const n = Math.min(10, N - published);
        await Promise.all(Array.from({ length: n }, (_, i) => publisher.publish(CH, { k: published + i + 1 })));
        published += n;
        await sleep(4);
      }
      pubDone = true;
    })();

    while ((expected <= N || cycles < 100) && Date.now() < deadline && problems.length === 0) {
      // Take a few pushes (or wait up to 40 ms), then leave one way or the other.
      const k = 1 + Math.floor(rand() * 25);
      const start = got, t0 = Date.now();
      while (got - start < k && Date.now() - t0 < 40) await sleep(2);
      cycles++;
      if (!pubDone) cyclesWhilePublishing++;
      if (rand() < 0.5) {
        // Abrupt disconnect, new connection, subscribe since the last cursor.
        conn.onPush = () => {};
        conn.destroy();
        reconnects++;
        conn = await ws(h);
        conn.keepLog = false;
      } else {
        // Unsubscribe on the same connection, then subscribe again since the cursor.
        period.unsubId = `u${cycles}`;
        const r = await conn.request({ id: period.unsubId, method: 'unsubscribe', channel: CH });
        assert.deepEqual(r.result, {}, JSON.stringify(r));
        assert.ok(period.over);
        resubscribes++;
      }
      period = { replied: false, over: false, subId: `s${cycles}` };
      attach(conn, period);
      const r = await conn.request({ id: period.subId, method: 'subscribe', channel: CH, since: cursor });
      if (!r.result) { problems.push(`subscribe failed: ${JSON.stringify(r)}`); break; }
      if (!r.result.recovered) notRecovered++;
    }
    await pubTask;
    conn.destroy();
    console.log(`resume race: ${N} messages, ${cycles} cycles (${cyclesWhilePublishing} while publishing; ${reconnects} reconnects, ${resubscribes} unsubscribe/resubscribe), ${seen.length} pushes consumed`);
    assert.deepEqual(problems, []);
    assert.equal(notRecovered, 0, 'every resume must be recovered (history holds 5000)');
    assert.ok(pubDone);
    assert.ok(cyclesWhilePublishing >= 100, `only ${cyclesWhilePublishing} cycles while publishing`);
    assert.equal(seen.length, N, `consumed ${seen.length} pushes`);
    assert.ok(seen.every((o, i) => o === i + 1), 'offsets 1..N exactly once, in order');
    for (const c of open) assert.deepEqual(c.violations, []);
  });
});
