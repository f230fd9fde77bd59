// herald's JSON command protocol over /ws (docs/protocol.md, API.md "WebSocket"):
// reply shapes of every command, exactly one reply per command (a burst of 200 mixed
// commands), every error, JSON.parse on every frame, pushes after the subscribe reply
// (replay first, then live), and the slow-consumer cut (4000 + metric).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, publish, metrics, waitFor, keepAliveAgent, sleep, encodeCursor, decodeCursor, channelTag } from './lib/herald.mjs';
import { HeraldWs, WsConn, textFrame } from './lib/ws-client.mjs';

const CURSOR_RE = /^[A-Za-z0-9_-]{1,1024}$/;
const open = [];
async function ws(h, opts) {
  const c = await HeraldWs.open(h, opts);
  open.push(c);
  return c;
}

function assertPushShape(p, { channel, offset, data, event }) {
  const keys = ['channel', 'offset', 'time', ...(event !== undefined ? ['event'] : []), 'data', 'cursor'];
  assert.deepEqual(Object.keys(p), keys, `push fields: ${JSON.stringify(p)}`);
  assert.equal(p.channel, channel);
  if (offset !== undefined) assert.equal(p.offset, offset);
  assert.ok(Number.isInteger(p.offset) && p.offset >= 1);
  assert.ok(Number.isInteger(p.time) && Math.abs(p.time - Date.now()) < 60000, `time ${p.time}`);
  if (data !== undefined) assert.deepEqual(p.data, data);
  if (event !== undefined) assert.equal(p.event, event);
  assert.match(p.cursor, CURSOR_RE);
}

function assertError(r, id, code) {
  assert.deepEqual(Object.keys(r), ['id', 'error'], `error reply: ${JSON.stringify(r)}`);
  assert.deepEqual(r.id, id, `error reply id: ${JSON.stringify(r)}`);
  assert.deepEqual(Object.keys(r.error).sort(), ['code', 'message'], `error object: ${JSON.stringify(r)}`);
  assert.equal(r.error.code, code, `error code: ${JSON.stringify(r)}`);
  assert.equal(typeof r.error.message, 'string');
  assert.ok(r.error.message.length > 0);
}

describe('WebSocket JSON protocol', () => {
  let h;
  before(async () => {
    h = await startHerald(['--namespace', 'chat:client_publish=true', '--namespace', 'small:history_size=2',
      '--max-channels-per-connection', '4', '--history-size', '1000']);
  });
  after(async () => { for (const c of open.splice(0)) c.destroy(); await h?.stop(); });

  it('ping: {"id":N,"result":{}}; string ids are echoed', async () => {
    const c = await ws(h);
    assert.deepEqual(await c.request({ id: 1, method: 'ping' }), { id: 1, result: {} });
    assert.deepEqual(await c.request({ id: 'abc-1', method: 'ping' }), { id: 'abc-1', result: {} });
    assert.deepEqual(await c.request({ id: 0, method: 'ping' }), { id: 0, result: {} });
    c.assertClean();
  });

  it('subscribe: {"id","result":{"channel","recovered","cursor"}}; pushes carry channel, offset, time, data, cursor', async () => {
    const c = await ws(h);
    const r = await c.request({ id: 7, method: 'subscribe', channel: 'chat:shape' });
    assert.deepEqual(Object.keys(r), ['id', 'result']);
    assert.equal(r.id, 7);
    assert.deepEqual(Object.keys(r.result), ['channel', 'recovered', 'cursor']);
    assert.equal(r.result.channel, 'chat:shape');
    assert.equal(typeof r.result.recovered, 'boolean');
    assert.match(r.result.cursor, CURSOR_RE);
    const pub = await publish(h, 'chat:shape', { hello: 'world' }, { event: 'greet' });
    const p = await c.nextPush();
    assertPushShape(p, { channel: 'chat:shape', offset: pub.offset, data: { hello: 'world' }, event: 'greet' });
    assert.equal(p.cursor, pub.cursor, 'the push cursor is the cursor after that message');
    const pub2 = await publish(h, 'chat:shape', [1, 2, 3]);
    assertPushShape(await c.nextPush(), { channel: 'chat:shape', offset: pub2.offset, data: [1, 2, 3] });
    c.assertClean();
  });

  it('publish: {"offset","cursor"}; the publisher\'s own push matches', async () => {
    const c = await ws(h);
    await c.subscribe('chat:pub');
    const r = await c.request({ id: 3, method: 'publish', channel: 'chat:pub', data: { n: 1 }, event: 'ev_1' });
    assert.deepEqual(Object.keys(r), ['id', 'result']);
    assert.deepEqual(Object.keys(r.result), ['offset', 'cursor']);
    assert.equal(r.result.offset, 1);
    assert.match(r.result.cursor, CURSOR_RE);
    const p = await c.nextPush();
    assertPushShape(p, { channel: 'chat:pub', offset: 1, data: { n: 1 }, event: 'ev_1' });
    assert.equal(p.cursor, r.result.cursor);
    const r2 = await c.request({ method: 'publish', channel: 'chat:pub', data: null });
    assert.equal(r2.result.offset, 2);
    assertPushShape(await c.nextPush(), { channel: 'chat:pub', offset: 2, data: null });
    c.assertClean();
  });

  it('history: {"messages","cursor","recovered"}, with since and limit', async () => {
    const c = await ws(h);
    const pubs = [];
    for (let i = 1; i <= 5; i++) pubs.push(await publish(h, 'hist:a', { i }));
    const all = await c.request({ id: 1, method: 'history', channel: 'hist:a' });
    assert.deepEqual(Object.keys(all.result), ['messages', 'cursor', 'recovered']);
    assert.equal(all.result.recovered, true);
    assert.deepEqual(all.result.messages.map((m) => m.offset), [1, 2, 3, 4, 5]);
    for (const m of all.result.messages) {
      assert.deepEqual(Object.keys(m), ['channel', 'offset', 'time', 'data']);
      assert.equal(m.channel, 'hist:a');
      assert.deepEqual(m.data, { i: m.offset });
    }
    assert.match(all.result.cursor, CURSOR_RE);
    const after2 = await c.request({ id: 2, method: 'history', channel: 'hist:a', since: pubs[1].cursor });
    assert.deepEqual(after2.result.messages.map((m) => m.offset), [3, 4, 5]);
    assert.equal(after2.result.recovered, true);
    const lim = await c.request({ id: 3, method: 'history', channel: 'hist:a', since: pubs[0].cursor, limit: 2 });
    assert.deepEqual(lim.result.messages.map((m) => m.offset), [2, 3]);
    const rest = await c.request({ id: 4, method: 'history', channel: 'hist:a', since: lim.result.cursor });
    assert.deepEqual(rest.result.messages.map((m) => m.offset), [4, 5], 'the history cursor resumes after the last message returned');
    const none = await c.request({ id: 5, method: 'history', channel: 'hist:a', since: pubs[4].cursor });
    assert.deepEqual(none.result.messages, []);
    assert.equal(none.result.recovered, true);
    c.assertClean();
  });

  it('subscribe with since: reply (recovered:true) first, then the replay in order, then live', async () => {
    const c = await ws(h);
    const pubs = [];
    for (let i = 1; i <= 4; i++) pubs.push(await publish(h, 'resume:a', { i }));
    const r = await c.request({ id: 9, method: 'subscribe', channel: 'resume:a', since: pubs[0].cursor });
    assert.equal(r.result.recovered, true);
    const replay = await c.takePushes(3);
    assert.deepEqual(replay.map((p) => p.offset), [2, 3, 4]);
    assert.equal(replay[2].cursor, pubs[3].cursor);
    await publish(h, 'resume:a', { i: 5 });
    assert.equal((await c.nextPush()).offset, 5);
    // The reply precedes every push in the frame order.
    const idx = c.log.findIndex((j) => j.id === 9);
    const firstPush = c.log.findIndex((j) => j.push);
    assert.ok(idx >= 0 && idx < firstPush, `reply at ${idx}, first push at ${firstPush}`);
    assert.deepEqual(await c.quietPushes(200), []);
    c.assertClean();
  });

  it('subscribe since an evicted position: recovered:false, no replay, then live', async () => {
    const c = await ws(h);
    const first = await publish(h, 'small:x', 1);
    for (let i = 2; i <= 5; i++) await publish(h, 'small:x', i);  // history keeps 2
    const r = await c.request({ method: 'subscribe', channel: 'small:x', since: first.cursor });
    assert.equal(r.result.recovered, false, JSON.stringify(r));
    assert.match(r.result.cursor, CURSOR_RE);
    assert.deepEqual(await c.quietPushes(200), [], 'no replay after a reset');
    await publish(h, 'small:x', 6);
    assert.equal((await c.nextPush()).offset, 6);
    c.assertClean();
  });

  it('history since an evicted position: {"messages":[],"recovered":false}', async () => {
    const c = await ws(h);
    const first = await publish(h, 'small:h', 1);
    for (let i = 2; i <= 5; i++) await publish(h, 'small:h', i);
    const r = await c.request({ method: 'history', channel: 'small:h', since: first.cursor });
    assert.deepEqual(r.result.messages, []);
    assert.equal(r.result.recovered, false);
    assert.match(r.result.cursor, CURSOR_RE);
    const all = await c.request({ method: 'history', channel: 'small:h' });
    assert.deepEqual(all.result.messages.map((m) => m.offset), [4, 5]);
    c.assertClean();
  });

  it('subscribe and unsubscribe in one write: one reply each, no push after the unsubscribe reply', async () => {
    const c = await ws(h);
    const first = await publish(h, 'race:su', 0);
    for (let i = 1; i <= 50; i++) await publish(h, 'race:su', i);
    let over = false;
    const late = [];
    c.onJson = (j) => { if (j.id === 'u') over = true; };
    c.onPush = (p) => { if (over) late.push(p.offset); };
    const both = Buffer.concat([
      textFrame(JSON.stringify({ id: 's', method: 'subscribe', channel: 'race:su', since: first.cursor })),
      textFrame(JSON.stringify({ id: 'u', method: 'unsubscribe', channel: 'race:su' })),
    ]);
    const waits = ['s', 'u'].map((id) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no reply to ${id}`)), 5000);
      c.pending.set(JSON.stringify(id), { resolve: (j) => { clearTimeout(t); resolve(j); }, wake: () => reject(new Error('closed')) });
    }));
    await c.conn.sendRaw(both);
    const [rs, ru] = await Promise.all(waits);
    assert.ok(rs.result || rs.error, JSON.stringify(rs));
    assert.deepEqual(ru, { id: 'u', result: {} });
    await publish(h, 'race:su', 'after');
    await sleep(200);
    assert.deepEqual(late, [], 'pushes after the unsubscribe reply');
    assert.equal(c.replies.get('"s"'), 1);
    assert.equal(c.replies.get('"u"'), 1);
    c.assertClean();
  });

  it('unsubscribe: {"id","result":{}} and no pushes afterwards', async () => {
    const c = await ws(h);
    await c.subscribe('unsub:a');
    await publish(h, 'unsub:a', 1);
    assert.equal((await c.nextPush()).offset, 1);
    assert.deepEqual(await c.request({ id: 11, method: 'unsubscribe', channel: 'unsub:a' }), { id: 11, result: {} });
    await publish(h, 'unsub:a', 2);
    assert.deepEqual(await c.quietPushes(300), []);
    // Subscribing again works.
    await c.subscribe('unsub:a');
    await publish(h, 'unsub:a', 3);
    assert.equal((await c.nextPush()).offset, 3);
    c.assertClean();
  });

  it('exactly one reply per command: a burst of 200 mixed commands in one write', async () => {
    const c = await ws(h);
    const cmds = [];
    for (let i = 1; i <= 200; i++) {
      switch (i % 8) {
        case 0: cmds.push({ id: i, method: 'ping' }); break;
        case 1: cmds.push({ id: i, method: 'publish', channel: 'chat:burst', data: { i } }); break;
        case 2: cmds.push({ id: i, method: 'history', channel: 'chat:burst', limit: 3 }); break;
        case 3: cmds.push({ id: i, method: 'subscribe', channel: `burst${i % 3}` }); break;
        case 4: cmds.push({ id: i, method: 'unsubscribe', channel: `burst${(i - 1) % 3}` }); break;
        case 5: cmds.push({ id: i, method: 'nope' }); break;
        case 6: cmds.push({ id: i, method: 'publish', channel: 'news', data: 1 }); break;  // forbidden
        case 7: cmds.push({ id: `s${i}`, method: 'subscribe', channel: 'bad channel' }); break;
      }
    }
    const frames = Buffer.concat(cmds.map((m) => textFrame(JSON.stringify(m))));
    const waits = cmds.map((m) => new Promise((resolve, reject) => {
      const key = JSON.stringify(m.id);
      const t = setTimeout(() => reject(new Error(`no reply to ${key}`)), 10000);
      c.pending.set(key, { resolve: (j) => { clearTimeout(t); resolve(j); }, wake: () => reject(new Error('closed')) });
    }));
    await c.conn.sendRaw(frames);
    const replies = await Promise.all(waits);
    await sleep(300);
    for (const [i, r] of replies.entries()) {
      assert.ok('result' in r || 'error' in r, JSON.stringify(r));
      assert.deepEqual(r.id, cmds[i].id);
    }
    const byId = [...c.replies.entries()];
    assert.equal(byId.length, 200, `distinct reply ids: ${byId.length}`);
    assert.ok(byId.every(([, n]) => n === 1), `ids replied more than once: ${byId.filter(([, n]) => n > 1).map(([k]) => k)}`);
    assert.deepEqual(c.others, [], `frames that are neither reply nor push: ${JSON.stringify(c.others).slice(0, 300)}`);
    // Publish offsets are distinct and gap-free.
    const offs = replies.filter((r, i) => cmds[i].method === 'publish' && r.result).map((r) => r.result.offset).sort((a, b) => a - b);
    assert.deepEqual(offs, Array.from({ length: offs.length }, (_, k) => offs[0] + k));
    for (const [i, r] of replies.entries()) {
      if (cmds[i].method === 'nope') assertError(r, cmds[i].id, 'bad_request');
      if (cmds[i].channel === 'news') assertError(r, cmds[i].id, 'forbidden');
      if (cmds[i].channel === 'bad channel') assertError(r, cmds[i].id, 'invalid_channel');
    }
    c.assertClean();
  });

  describe('errors', () => {
    let c;
    before(async () => { c = await ws(h); });
    after(() => c.assertClean());

    /** Sends raw text, resolves with the next non-push JSON (an error with id null). */
    async function rawError(text) {
      const n = c.others.length;
      await c.sendText(text);
      await waitFor(() => c.others.length > n, { timeoutMs: 3000, what: `a reply to ${text}` });
      return c.others[n];
    }

    it('unparseable JSON → id null, bad_json', async () => {
      assertError(await rawError('{"id":1,"method":"ping"'), null, 'bad_json');
      assertError(await rawError('not json at all'), null, 'bad_json');
    });
    it('not an object, missing id, negative id → id null', async () => {
      assertError(await rawError('[1,2,3]'), null, 'bad_request');
      assertError(await rawError('{"method":"ping"}'), null, 'bad_request');
      assertError(await rawError('{"id":-1,"method":"ping"}'), null, 'bad_request');
      assertError(await rawError('{"id":{"x":1},"method":"ping"}'), null, 'bad_request');
    });
    it('unknown or missing method → bad_request with the id', async () => {
      assertError(await c.request({ id: 21, method: 'explode' }), 21, 'bad_request');
      assertError(await c.request({ id: 22 }), 22, 'bad_request');
    });
    it('invalid or missing channel → invalid_channel / bad_request', async () => {
      assertError(await c.request({ id: 31, method: 'subscribe', channel: 'spaces are bad' }), 31, 'invalid_channel');
      assertError(await c.request({ id: 32, method: 'subscribe', channel: 'x'.repeat(256) }), 32, 'invalid_channel');
      assertError(await c.request({ id: 33, method: 'history', channel: '' }), 33, 'invalid_channel');
      assertError(await c.request({ id: 34, method: 'subscribe' }), 34, 'bad_request');
    });
    it('publish: missing data → bad_request; bad event → bad_request; too large → too_large', async () => {
      assertError(await c.request({ id: 41, method: 'publish', channel: 'chat:e' }), 41, 'bad_request');
      assertError(await c.request({ id: 42, method: 'publish', channel: 'chat:e', data: 1, event: 'bad event!' }), 42, 'bad_request');
      assertError(await c.request({ id: 43, method: 'publish', channel: 'chat:e', data: 'x'.repeat(70000) }), 43, 'too_large');
    });
    it('publish without client publish in the namespace → forbidden', async () => {
      assertError(await c.request({ id: 51, method: 'publish', channel: 'news', data: 1 }), 51, 'forbidden');
      assertError(await c.request({ id: 52, method: 'publish', channel: 'small:x', data: 1 }), 52, 'forbidden');
    });
    it('bad cursors → bad_cursor (subscribe and history)', async () => {
      assertError(await c.request({ id: 61, method: 'subscribe', channel: 'cur:a', since: '!!!' }), 61, 'bad_cursor');
      assertError(await c.request({ id: 62, method: 'subscribe', channel: 'cur:a', since: 12 }), 62, 'bad_cursor');
      assertError(await c.request({ id: 63, method: 'history', channel: 'cur:a', since: 'AAAA' }), 63, 'bad_cursor');
      const other = await publish(h, 'cur:other', 1);
      assertError(await c.request({ id: 64, method: 'history', channel: 'cur:a', since: other.cursor }), 64, 'bad_cursor');
      // A cursor ahead of its channel (right epoch, offset beyond the top).
      const p = await publish(h, 'cur:ahead', 1);
      const [e] = decodeCursor(p.cursor);
      const ahead = encodeCursor([{ tag: channelTag('cur:ahead'), epoch: e.epoch, offset: 99 }]);
      assertError(await c.request({ id: 65, method: 'subscribe', channel: 'cur:ahead', since: ahead }), 65, 'bad_cursor');
      assertError(await c.request({ id: 66, method: 'history', channel: 'cur:ahead', since: ahead }), 66, 'bad_cursor');
      // The connection is fine, and the failed channel can be subscribed properly.
      const ok = await c.request({ id: 67, method: 'subscribe', channel: 'cur:ahead', since: p.cursor });
      assert.ok(ok.result, JSON.stringify(ok));
      await c.request({ id: 68, method: 'unsubscribe', channel: 'cur:ahead' });
    });
    it('already_subscribed, not_subscribed, too_many_channels', async () => {
      await c.subscribe('sub:1');
      assertError(await c.request({ id: 71, method: 'subscribe', channel: 'sub:1' }), 71, 'already_subscribed');
      assertError(await c.request({ id: 72, method: 'unsubscribe', channel: 'sub:never' }), 72, 'not_subscribed');
      await c.subscribe('sub:2');
      await c.subscribe('sub:3');
      await c.subscribe('sub:4');
      assertError(await c.request({ id: 73, method: 'subscribe', channel: 'sub:5' }), 73, 'too_many_channels');
      assert.deepEqual(await c.request({ id: 74, method: 'unsubscribe', channel: 'sub:4' }), { id: 74, result: {} });
      assert.ok((await c.request({ id: 75, method: 'subscribe', channel: 'sub:5' })).result);
      for (const ch of ['sub:1', 'sub:2', 'sub:3', 'sub:5']) await c.request({ method: 'unsubscribe', channel: ch });
    });
    it('after all these errors the connection still works', async () => {
      assert.deepEqual(await c.request({ id: 99, method: 'ping' }), { id: 99, result: {} });
      assert.equal(c.close, null);
    });
  });

  it('JSON.parse works on every frame, whatever the data (newlines, U+2028, controls, deep nesting)', async () => {
    const c = await ws(h);
    await c.subscribe('chat:json');
    const values = [
      'line1\nline2\r\n\u2028\u2029', '\u0000\u0001\u001f"\\/', { deep: [[[[[{ a: [1, { b: null }] }]]]]] },
      -0.5, 1e300, 12345678901234567890, true, '😀'.repeat(50), { '': '' }, [],
    ];
    for (const v of values) await c.publish('chat:json', v);
    const got = await c.takePushes(values.length);
    for (const [i, p] of got.entries()) {
      const v = values[i];
      if (typeof v === 'number') assert.equal(p.data, v); else assert.deepEqual(p.data, v);
    }
    assert.ok(c.log.length >= values.length * 2);
    c.assertClean();  // the client JSON.parse'd every text frame
  });
});

describe('slow consumer', () => {
  let h;
  before(async () => { h = await startHerald(['--max-queued-bytes', '262144']); });
  after(async () => { for (const c of open.splice(0)) c.destroy(); await h?.stop(); });

  it('a WebSocket that stops reading is closed with 4000 and herald_slow_disconnects_total grows', { timeout: 60000 }, async () => {
    const before0 = (await metrics(h)).get('herald_slow_disconnects_total') ?? 0;
    const c = await ws(h);
    await c.subscribe('slow:ws');
    const fast = await ws(h);  // a reader that keeps up is not cut
    await fast.subscribe('slow:ws');
    fast.keepLog = false;
    let fastGot = 0;
    fast.onPush = () => { fastGot++; };
    c.conn.socket.pause();
    const agent = keepAliveAgent(4);
    // Bursts of 10 × 4 KB stay far below the 256 KiB cap for a reader that reads.
    const blob = 'y'.repeat(4000);
    let sent = 0, grown = false;
    try {
      for (let batch = 0; batch < 2000 && !grown; batch++) {
        await Promise.all(Array.from({ length: 10 }, (_, i) => publish(h, 'slow:ws', { n: sent + i, blob }, { agent })));
        sent += 10;
        const m = await metrics(h);
        grown = (m.get('herald_slow_disconnects_total') ?? 0) > before0;
      }
    } finally {
      agent.destroy();
    }
    assert.ok(grown, `herald_slow_disconnects_total did not grow after ${sent} messages of 4 KB`);
    assert.equal(fast.close, null, `the reader that keeps up was cut instead (${fast.close?.code} ${fast.close?.reason})`);
    c.conn.socket.resume();
    const deadline = Date.now() + 15000;
    while (!c.close && !c.conn.ended && Date.now() < deadline) await sleep(20);
    assert.ok(c.close, `no close frame (TCP ended: ${c.conn.ended})`);
    assert.equal(c.close.code, 4000, `closed with ${c.close.code} "${c.close.reason}"`);
    assert.ok(await c.conn.waitEnd(5000), 'TCP not closed after 4000');
    // What arrived before the cut was in order, without gaps.
    const offs = c.pushes.map((p) => p.offset);
    assert.deepEqual(offs, Array.from({ length: offs.length }, (_, i) => i + 1));
    assert.ok(offs.length < sent, `the slow reader got all ${sent} messages`);
    await waitFor(() => fastGot === sent, { timeoutMs: 10000, what: `the fast reader's ${sent} pushes (has ${fastGot})` });
    assert.equal(fast.close, null, 'the fast reader was cut');
    c.assertClean();
    fast.assertClean();
    console.log(`slow consumer (--max-queued-bytes 262144): cut after ${sent} published, ${offs.length} delivered before the 4000 close`);
  });
});

describe('server shutdown', () => {
  it('SIGTERM: open WebSockets get close 1001 (going away: reconnect) before the TCP connection ends', { timeout: 30000 }, async () => {
    const h = await startHerald([]);
    let c;
    try {
      c = await HeraldWs.open(h);
      await c.subscribe('bye');
      h.proc.kill('SIGTERM');
      const deadline = Date.now() + 10000;
      while (!c.conn.ended && Date.now() < deadline) await sleep(20);
      assert.ok(c.conn.ended, 'the connection is still open 10 s after SIGTERM');
      assert.ok(c.close, 'the TCP connection ended without a close frame');
      assert.equal(c.close.code, 1001, `closed with ${c.close.code} "${c.close.reason}"`);
      c.assertClean();
    } finally {
      c?.destroy();
      await h.stop();
    }
  });
});
