// The raw wire formats (format=raw; docs/protocol.md "Raw formats"): the bytes of each
// transport's raw form, the sizes docs/protocol.md gives for a 100-byte message, exact
// resume with cursors derived by counting (raw WebSocket -> SSE -> long poll -> WebSocket),
// resets in raw form, several channels, and clients herald did not write (node `ws`, the
// `eventsource` package, curl) next to raw sockets for the byte layouts.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket from 'ws';
import EventSource from 'eventsource';
import {
  startHerald, publish, curlHttp, waitFor, withTimeout, sleep, channelTag, encodeCursor,
  encodeCompactCursor, decodeAnyCursor, HOST,
} from './lib/herald.mjs';

const DATA = JSON.stringify('x'.repeat(98));  // 100 bytes of JSON
let uniq = 0;
const name = (p) => `${p}${process.pid}x${++uniq}`;

/**
 * A raw WebSocket subscriber over node `ws` that keeps positions by counting: the
 * subscribe result's cursor is the base, each binary frame is its channel's next offset,
 * a {"channel":..} text frame names the channel of the binary frames after it, and a
 * reset push re-bases the channel.
 */
class RawWs {
  static async open(h) {
    const ws = new WebSocket(`ws://${HOST}:${h.port}/ws`);
    await withTimeout(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }), 5000, 'ws open');
    return new RawWs(ws);
  }

  constructor(ws) {
    this.ws = ws;
    this.nextId = 1;
    this.pending = new Map();
    this.pos = new Map();      // channel -> {tag, epoch, offset}
    this.current = null;       // channel of the next binary frame
    this.got = [];             // {channel, offset, data, cursor}
    this.resets = [];
    this.frames = [];          // {binary, size}: payload sizes, in order
    this.texts = [];
    ws.on('message', (data, binary) => {
      this.frames.push({ binary, size: data.length, text: binary ? null : data.toString('utf8') });
      if (binary) {
        const p = this.pos.get(this.current);
        if (!p) throw new Error(`binary frame with no channel position (${this.current})`);
        p.offset = BigInt(p.offset) + 1n;
        this.got.push({ channel: this.current, offset: Number(p.offset), data: JSON.parse(data.toString('utf8')), cursor: encodeCompactCursor(p) });
        return;
      }
      const j = JSON.parse(data.toString('utf8'));
      this.texts.push(j);
      if ('id' in j) {
        const w = this.pending.get(j.id);
        if (!w) return;
        this.pending.delete(j.id);
        // The position is taken here, before the frames that follow it are handled.
        if (w.channel && j.result?.cursor) this.pos.set(w.channel, decodeAnyCursor(j.result.cursor)[0]);
        w.resolve(j);
      } else if (j.reset) {
        this.resets.push(j.reset);
        this.pos.set(j.reset.channel, decodeAnyCursor(j.reset.cursor)[0]);
      } else if (typeof j.channel === 'string') {
        this.current = j.channel;
        if (j.cursor) this.pos.set(j.channel, decodeAnyCursor(j.cursor)[0]);
      }
    });
  }

  request(cmd) {
    const id = this.nextId++;
    return withTimeout(new Promise((resolve) => {
      this.pending.set(id, { resolve, channel: cmd.method === 'subscribe' ? cmd.channel : null });
      this.ws.send(JSON.stringify({ id, ...cmd }));
    }), 5000, `reply to ${cmd.method}`);
  }

  subscribe(channel, since) {
    return this.request({ method: 'subscribe', channel, format: 'raw', ...(since ? { since } : {}) });
  }

  /** The cursor of `channel` as counted (compact form). */
  cursor(channel) { return encodeCompactCursor(this.pos.get(channel)); }

  close() { this.ws.terminate(); }
}

/** Reads everything a raw socket gets for `ms` after sending `request`. */
function rawRead(h, request, ms) {
  return new Promise((resolve, reject) => {
    const s = net.connect(h.port, HOST);
    const chunks = [];
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.write(request);
    setTimeout(() => { s.destroy(); resolve(Buffer.concat(chunks)); }, ms);
  });
}

const sseRequest = (h, q, extra = '') => `GET /sse?${q} HTTP/1.1\r\nHost: ${HOST}:${h.port}\r\nAccept: text/event-stream\r\n${extra}\r\n`;

/** The raw poll body: [cursor, resets, lines]. */
function parsePollBody(body) {
  const lines = body.split('\n');
  assert.equal(lines.pop(), '', 'the body ends with a newline');
  const [cursor, word, ...resets] = lines.shift().split(' ');
  if (word !== undefined) assert.equal(word, 'reset');
  return { cursor, resets, lines };
}

describe('raw formats', () => {
  let h;
  before(async () => {
    h = await startHerald(['--namespace', 'small:history_size=3', '--sse-heartbeat', '60']);
  });
  after(async () => { await h?.stop(); });

  it('SSE: a one-channel event is id (compact cursor) and data, 126 bytes for 100 bytes of data', async () => {
    const ch = 'news';
    const first = await publish(h, ch, 0);
    const reading = rawRead(h, sseRequest(h, `channel=${ch}&format=raw&since=${first.cursor}`), 600);
    await sleep(200);
    const second = await publish(h, ch, JSON.parse(DATA));
    const text = (await reading).toString('utf8');
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    const e = decodeAnyCursor(second.cursor)[0];
    const id = encodeCompactCursor(e);
    assert.equal(id.length, 15);
    // retry, the position (at offset 1), then the live event.
    const pos = encodeCompactCursor({ ...e, offset: 1 });
    const event = `id:${id}\ndata:${DATA}\n\n`;
    assert.equal(body, `retry: 3000\n\nid: ${pos}\n\n${event}`);
    assert.equal(Buffer.byteLength(event), 126);
  });

  it('SSE: several channels: the id covers them all, the data comes after its channel line', async () => {
    const A = name('sa'), B = name('sb');
    const reading = rawRead(h, sseRequest(h, `channel=${A}&channel=${B}&format=raw`), 600);
    await sleep(200);
    const a = await publish(h, A, { n: 1 }, { event: 'note' });
    const text = (await reading).toString('utf8');
    const events = text.slice(text.indexOf('\r\n\r\n') + 4).split('\n\n');
    const ev = events.find((b) => b.includes('data:'));
    const [idLine, ...rest] = ev.split('\n');
    assert.deepEqual(rest, ['event:note', `data:${A}`, 'data:{"n":1}']);
    const entries = decodeAnyCursor(idLine.slice(3));
    assert.deepEqual(entries.map((x) => [x.tag, Number(x.offset)]), [[channelTag(A), 1], [channelTag(B), 0]]);
    assert.equal(entries[0].epoch, decodeAnyCursor(a.cursor)[0].epoch);
  });

  it('long poll (curl): cursor line then one line per message; 224 bytes for one 100-byte message', async () => {
    const ch = name('lp');
    const start = await publish(h, ch, 0);
    const curlPoll = curlHttp(h, 'GET', `/poll?channel=${ch}&since=${start.cursor}&format=raw&timeout=5`);
    await sleep(200);
    const m = await publish(h, ch, JSON.parse(DATA));
    const r = await curlPoll;
    assert.equal(r.status, 200);
    assert.match(r.headersText, /\r\nContent-Type: text\/plain\r\n/);
    const compact = encodeCompactCursor(decodeAnyCursor(m.cursor)[0]);
    assert.equal(r.body, `${compact}\n${DATA}\n`);
    assert.equal(Buffer.byteLength(r.headersText) + 4 + Buffer.byteLength(r.body), 224);
    // Several messages: they end at the cursor's offset, one line each.
    await publish(h, ch, 'a');
    await publish(h, ch, { b: [1, 2.5] });
    const r2 = await curlHttp(h, 'GET', `/poll?channel=${ch}&since=${compact}&format=raw`);
    const p = parsePollBody(r2.body);
    assert.deepEqual(p.lines, ['"a"', '{"b":[1,2.5]}']);
    assert.equal(Number(decodeAnyCursor(p.cursor)[0].offset), 4);
    // An empty reply is the cursor alone.
    const r3 = await curlHttp(h, 'GET', `/poll?channel=${ch}&since=${p.cursor}&format=raw&timeout=0`);
    assert.equal(r3.body, `${p.cursor}\n`);
  });

  it('WebSocket: binary frames of the data alone (102 bytes for 100), the channel named once', async () => {
    const ch = name('wb');
    const c = await RawWs.open(h);
    try {
      const r = await c.subscribe(ch);
      assert.equal(r.result.format, 'raw');
      assert.equal(r.result.recovered, true);
      const sent = [];
      for (let i = 0; i < 3; i++) sent.push(await publish(h, ch, JSON.parse(DATA)));
      await waitFor(() => c.got.length === 3, { what: 'three raw frames' });
      // One text frame names the channel (with the position before offset 1: the channel
      // had no life, epoch 0, when the subscription started); then three binary frames of
      // 100 bytes each.
      const after = c.frames.slice(c.frames.findIndex((f) => f.text?.startsWith('{"channel"')));
      const e = decodeAnyCursor(sent[0].cursor)[0];
      assert.deepEqual(JSON.parse(after[0].text), { channel: ch, cursor: encodeCompactCursor({ ...e, offset: 0 }) });
      assert.deepEqual(after.slice(1).map((f) => [f.binary, f.size]), [[true, 100], [true, 100], [true, 100]]);
      // The counted cursors are the publish replies' positions.
      assert.deepEqual(c.got.map((g) => decodeAnyCursor(g.cursor)), sent.map((s) => decodeAnyCursor(s.cursor)));
    } finally { c.close(); }
  });

  it('WebSocket bytes on a raw socket: 2-byte header, payload = data', async () => {
    const ch = name('wr');
    const s = net.connect(h.port, HOST);
    const chunks = [];
    s.on('data', (d) => chunks.push(d));
    s.write(`GET /ws HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    const cmd = Buffer.from(JSON.stringify({ id: 1, method: 'subscribe', channel: ch, format: 'raw' }));
    const mask = Buffer.from([1, 2, 3, 4]);
    const masked = Buffer.from(cmd.map((b, i) => b ^ mask[i % 4]));
    s.write(Buffer.concat([Buffer.from([0x81, 0x80 | cmd.length]), mask, masked]));
    await waitFor(() => Buffer.concat(chunks).includes('"format":"raw"'), { what: 'subscribe result' });
    await publish(h, ch, JSON.parse(DATA));
    await publish(h, ch, JSON.parse(DATA));
    await sleep(200);
    s.destroy();
    const all = Buffer.concat(chunks);
    const frames = all.subarray(all.indexOf('\r\n\r\n') + 4);
    const tailLen = 2 * 102;
    const tail = frames.subarray(frames.length - tailLen);
    for (const f of [tail.subarray(0, 102), tail.subarray(102)]) {
      assert.equal(f[0], 0x82);
      assert.equal(f[1], 100);
      assert.equal(f.subarray(2).toString('utf8'), DATA);
    }
  });

  it('exact resume with derived cursors: raw WebSocket -> SSE (eventsource) -> long poll (curl) -> WebSocket', async () => {
    const ch = name('rt');
    const seen = [];
    let n = 0;
    const burst = async (k) => { for (let i = 0; i < k; i++) await publish(h, ch, { n: ++n }); };
    await burst(2);  // before anyone subscribes: not seen ("now" is after them)

    // 1. Raw WebSocket from "now"; positions by counting.
    const ws1 = await RawWs.open(h);
    await ws1.subscribe(ch);
    await burst(3);
    await waitFor(() => ws1.got.length === 3, { what: 'ws1 frames' });
    seen.push(...ws1.got.map((g) => g.data.n));
    const wsCursor = ws1.cursor(ch);
    ws1.close();
    await burst(2);  // missed while switching

    // 2. eventsource package, resuming from the counted cursor through Last-Event-ID.
    const es = new EventSource(`${h.base}/sse?channel=${ch}&format=raw`, { headers: { 'Last-Event-ID': wsCursor } });
    const esGot = [];
    es.onmessage = (e) => esGot.push({ data: JSON.parse(e.data), id: e.lastEventId });
    await waitFor(() => esGot.length === 2, { what: 'the two missed messages over SSE' });
    await burst(2);
    await waitFor(() => esGot.length === 4, { what: 'live SSE' });
    es.close();
    seen.push(...esGot.map((g) => g.data.n));
    const sseCursor = esGot.at(-1).id;
    assert.equal(sseCursor.length, 15, 'a compact id');
    await burst(3);

    // 3. curl long polls from the SSE id.
    const p1 = parsePollBody((await curlHttp(h, 'GET', `/poll?channel=${ch}&since=${sseCursor}&format=raw&limit=2`)).body);
    const p2 = parsePollBody((await curlHttp(h, 'GET', `/poll?channel=${ch}&since=${p1.cursor}&format=raw`)).body);
    seen.push(...[...p1.lines, ...p2.lines].map((l) => JSON.parse(l).n));
    await burst(2);

    // 4. Back to a raw WebSocket from the poll's cursor.
    const ws2 = await RawWs.open(h);
    const r = await ws2.subscribe(ch, p2.cursor);
    assert.equal(r.result.recovered, true);
    await waitFor(() => ws2.got.length === 2, { what: 'replay over ws2' });
    await burst(1);
    await waitFor(() => ws2.got.length === 3, { what: 'live over ws2' });
    seen.push(...ws2.got.map((g) => g.data.n));
    // Offsets counted by ws2 are the server's.
    assert.deepEqual(ws2.got.map((g) => g.offset), [13, 14, 15]);
    ws2.close();

    assert.deepEqual(seen, Array.from({ length: 13 }, (_, i) => i + 3), 'every message once, in order');
  });

  it('resets in raw form on every transport, then counting goes on from the reset cursor', async () => {
    const ch = `small:${name('rs')}`;
    const first = await publish(h, ch, 1);
    for (let i = 2; i <= 6; i++) await publish(h, ch, i);  // history keeps 4..6: offset 2 is gone
    // SSE: the reset event keeps its form; its id is the compact cursor at the top.
    const text = (await rawRead(h, sseRequest(h, `channel=${ch}&format=raw&since=${first.cursor}`), 400)).toString('utf8');
    const top = encodeCompactCursor({ ...decodeAnyCursor(first.cursor)[0], offset: 6 });
    assert.ok(text.includes(`id: ${top}\nevent: reset\ndata: {"recovered":false,"channels":["${ch}"],"cursor":"${top}"}\n\n`), text);
    // Long poll: the reset is on the cursor line.
    const p = parsePollBody((await curlHttp(h, 'GET', `/poll?channel=${ch}&since=${first.cursor}&format=raw`)).body);
    assert.deepEqual([p.cursor, p.resets, p.lines], [top, [ch], []]);
    // WebSocket: the subscribe result says recovered:false; frames count from its cursor.
    const c = await RawWs.open(h);
    try {
      const r = await c.subscribe(ch, first.cursor);
      assert.equal(r.result.recovered, false);
      await publish(h, ch, 7);
      await waitFor(() => c.got.length === 1, { what: 'frame after reset' });
      assert.deepEqual([c.got[0].offset, c.got[0].data], [7, 7]);
    } finally { c.close(); }
  });

  it('several channels on one WebSocket: a channel frame only when the channel changes', async () => {
    const A = name('ma'), B = name('mb');
    const c = await RawWs.open(h);
    try {
      await c.subscribe(A);
      await c.subscribe(B);
      const order = [A, A, B, B, B, A];
      for (const ch of order) await publish(h, ch, ch);
      await waitFor(() => c.got.length === order.length, { what: 'frames' });
      assert.deepEqual(c.got.map((g) => [g.channel, g.data, g.offset]),
        [[A, A, 1], [A, A, 2], [B, B, 1], [B, B, 2], [B, B, 3], [A, A, 3]]);
      const switches = c.texts.filter((t) => typeof t.channel === 'string' && !('id' in t) && !('reset' in t));
      assert.deepEqual(switches.map((t) => t.channel), [A, B, A]);
      // A JSON subscription beside them keeps its pushes.
      const J = name('mj');
      await c.request({ method: 'subscribe', channel: J });
      await publish(h, J, 'json');
      await waitFor(() => c.texts.some((t) => t.push?.channel === J), { what: 'json push' });
    } finally { c.close(); }
  });

  it('several channels on a long poll: "<channel> <data>" lines, offsets counted back per channel', async () => {
    const A = name('pa'), B = name('pb');
    const start = parsePollBody((await curlHttp(h, 'GET', `/poll?channel=${A}&channel=${B}&format=raw&timeout=0`)).body);
    await publish(h, A, 'a1');
    await publish(h, B, 'b1');
    await publish(h, A, 'a2');
    const p = parsePollBody((await curlHttp(h, 'GET', `/poll?channel=${A}&channel=${B}&since=${start.cursor}&format=raw`)).body);
    // Order holds per channel (a replay reads each channel's history in turn).
    assert.deepEqual(p.lines.filter((l) => l.startsWith(`${A} `)), [`${A} "a1"`, `${A} "a2"`]);
    assert.deepEqual(p.lines.filter((l) => l.startsWith(`${B} `)), [`${B} "b1"`]);
    assert.equal(p.lines.length, 3);
    const entries = decodeAnyCursor(p.cursor);
    assert.deepEqual(entries.map((e) => Number(e.offset)), [2, 1]);
  });

  it('a bad format is refused with a clear error on every transport', async () => {
    const r = await curlHttp(h, 'GET', '/poll?channel=x&format=xml');
    assert.equal(r.status, 400);
    assert.equal(r.json.error.message, 'format must be raw or json');
    const s = await curlHttp(h, 'GET', '/sse?channel=x&format=');
    assert.equal(s.status, 400);
    const c = await RawWs.open(h);
    try {
      const e = await c.request({ method: 'subscribe', channel: 'x', format: 1 });
      assert.equal(e.error.code, 'bad_request');
      const ok = await c.request({ method: 'subscribe', channel: 'x', format: 'json' });
      assert.equal(ok.result.format, undefined, 'the default result is unchanged');
    } finally { c.close(); }
  });

  it('permessage-deflate: a raw frame is compressed once and still counts (node ws inflates it)', async () => {
    const hd = await startHerald(['--ws-deflate', 'true']);
    try {
      const ch = name('df');
      const c = await RawWs.open(hd);
      try {
        assert.match(c.ws.extensions, /permessage-deflate/);
        await c.subscribe(ch);
        const sent = [];
        for (let i = 0; i < 3; i++) sent.push(await publish(hd, ch, { i, pad: 'y'.repeat(200) }));
        await waitFor(() => c.got.length === 3, { what: 'deflated raw frames' });
        assert.deepEqual(c.got.map((g) => g.data.i), [0, 1, 2]);
        assert.deepEqual(c.got.map((g) => decodeAnyCursor(g.cursor)), sent.map((s) => decodeAnyCursor(s.cursor)));
      } finally { c.close(); }
    } finally { await hd.stop(); }
  });

  it('a long cursor (the default forms) resumes raw streams too', async () => {
    const ch = name('lc');
    const a = await publish(h, ch, 1);
    await publish(h, ch, 2);
    const e = decodeAnyCursor(a.cursor)[0];
    const long = encodeCursor([e]);
    assert.equal(long, a.cursor);
    const p = parsePollBody((await curlHttp(h, 'GET', `/poll?channel=${ch}&since=${long}&format=raw`)).body);
    assert.deepEqual(p.lines, ['2']);
  });
});
