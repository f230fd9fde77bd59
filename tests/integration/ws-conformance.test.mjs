// RFC 6455 / RFC 7692 conformance of herald's /ws, against the real binary, with a raw
// client that crafts every frame byte by byte (lib/ws-client.mjs). The cases follow the
// sections of the Autobahn test suite:
//   1 framing, 2 pings/pongs, 3 reserved bits, 4 reserved opcodes, 5 fragmentation,
//   6 UTF-8, 7 close handling, 8 limits, 9 permessage-deflate, 10 opening handshake,
//   11 liveness (server pings).
// herald speaks JSON on its data frames, so "echo" is replaced by a ping command
// {"id":N,"method":"ping"} whose reply {"id":N,"result":{}} proves the message was
// received whole. Every server frame is checked by the client (unmasked, minimal
// length, no stray RSV bits, valid UTF-8 JSON text, nothing after close).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { startHerald, publish, sleep } from './lib/herald.mjs';
import {
  WsConn, OP, frame, textFrame, binaryFrame, pingFrame, pongFrame, closeFrame, compress, inflate,
  pingCommand, hex, acceptKey,
} from './lib/ws-client.mjs';

const counts = {};
const sectionNames = {
  1: 'framing', 2: 'pings/pongs', 3: 'reserved bits', 4: 'reserved opcodes', 5: 'fragmentation',
  6: 'UTF-8', 7: 'close handling', 8: 'limits', 9: 'compression', 10: 'handshake', 11: 'liveness',
};
/** A conformance case: counted per section. */
function kase(section, name, fn) {
  counts[section] = (counts[section] ?? 0) + 1;
  it(`${section}.${counts[section]} ${name}`, { timeout: 20000 }, fn);
}
after(() => {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  console.log(`conformance cases per section: ${Object.entries(counts).map(([s, n]) => `${s} ${sectionNames[s]}: ${n}`).join(', ')}; total ${total}`);
});

const conns = [];
async function open(h, opts = {}) {
  const c = await WsConn.connect(h, opts);
  conns.push(c);
  assert.equal(c.status, 101, `handshake refused: ${c.status} ${c.body}`);
  return c;
}
function closeAll() {
  for (const c of conns.splice(0)) c.destroy();
}

const cmd = (id) => `{"id":${id},"method":"ping"}`;
const cmdBytes = (id, raw) => Buffer.concat([Buffer.from(`{"id":${id},"method":"ping","s":"`), Buffer.from(raw), Buffer.from('"}')]);

async function expectReply(c, id, timeoutMs = 3000) {
  const m = await c.nextMessage(timeoutMs);
  assert.equal(m.opcode, OP.text, `expected a text reply, got opcode ${m.opcode}`);
  assert.deepEqual(m.json, { id, result: {} }, `expected the reply to ping command ${id}, got ${m.text}; sent ${c.sentSummary()}`);
}

/** The server must fail the connection: a close frame with `code`, nothing before it
 * (unless `allow` events were expected and consumed already), then TCP closed. */
async function expectFail(c, code, { within = 3000 } = {}) {
  const r = await c.readClose(within);
  assert.equal(r.code, code, `expected close ${code}, got ${r.code} "${r.reason}"; before it: ${r.before.map((e) => e.type).join(',') || 'nothing'}; sent ${c.sentSummary()}`);
  assert.deepEqual(r.before.map((e) => e.type), [], `frames before the close ${code}: ${r.before.map((e) => e.type + (e.text ? ' ' + e.text : '')).join(', ')}; sent ${c.sentSummary()}`);
  assert.ok(await c.waitEnd(3000), `the server did not close TCP after its close ${code}`);
  c.assertClean();
  return r;
}

/** Frames of one message split into the given payload pieces. */
function fragments(pieces, { opcode = OP.text, rsv = 0, lastFin = true } = {}) {
  return pieces.map((p, i) => frame({
    opcode: i === 0 ? opcode : OP.cont, payload: p, fin: lastFin && i === pieces.length - 1, rsv: i === 0 ? rsv : 0,
  }));
}
function splitN(buf, n) {
  const b = Buffer.from(buf);
  const out = [];
  const size = Math.ceil(b.length / n);
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}
const cat = (...bufs) => Buffer.concat(bufs.flat());

// ---------------------------------------------------------------------------------------
describe('1 framing', () => {
  let h;
  before(async () => { h = await startHerald(['--ws-max-message', String(1 << 20)]); });
  after(async () => { closeAll(); await h?.stop(); });

  for (const len of [0, 125, 126, 65535, 65536]) {
    const enc = len < 126 ? '7-bit' : len <= 0xffff ? '16-bit' : '64-bit';
    kase(1, `text message of ${len} bytes (${enc} length)`, async () => {
      const c = await open(h);
      const payload = len === 0 ? '' : pingCommand(1, len);
      const f = textFrame(payload);
      assert.equal(f[1] & 0x7f, len < 126 ? len : len <= 0xffff ? 126 : 127);
      await c.sendRaw(f);
      if (len === 0) {
        const m = await c.nextJson();
        assert.equal(m.id, null, `empty text: ${JSON.stringify(m)}`);
        assert.equal(m.error?.code, 'bad_json', `empty text: ${JSON.stringify(m)}`);
        await c.sendText(cmd(2));
        await expectReply(c, 2);
      } else {
        await expectReply(c, 1);
      }
      c.assertClean();
    });
    kase(1, `binary message of ${len} bytes (${enc} length)`, async () => {
      const c = await open(h);
      await c.sendRaw(binaryFrame(len === 0 ? Buffer.alloc(0) : Buffer.from(pingCommand(1, len))));
      await c.sendText(cmd(2));
      // The binary message must be read whole (the text command after it is answered);
      // herald may answer it like a text command or not at all, but nothing else.
      for (;;) {
        const m = await c.nextMessage();
        if (m.json?.id === 2) { assert.deepEqual(m.json, { id: 2, result: {} }); break; }
        assert.ok(m.json && (m.json.id === 1 || m.json.id === null), `unexpected frame after a binary message: ${m.text}`);
      }
      c.assertClean();
    });
  }

  kase(1, 'a 7-bit frame written one byte per TCP write', async () => {
    const c = await open(h);
    await c.sendPieces(textFrame(pingCommand(1, 100)), { chunk: 1, gapMs: 1 });
    await expectReply(c, 1);
    c.assertClean();
  });

  kase(1, 'a 16-bit-length frame: header byte by byte, payload in 7-byte writes', async () => {
    const c = await open(h);
    const f = textFrame(pingCommand(1, 300));
    await c.sendPieces(f.subarray(0, 8), { chunk: 1, gapMs: 2 });
    await c.sendPieces(f.subarray(8), { chunk: 7, gapMs: 0 });
    await expectReply(c, 1);
    c.assertClean();
  });

  kase(1, 'a 64-bit-length frame (70000 bytes): header byte by byte, payload in 997-byte writes', async () => {
    const c = await open(h);
    const f = textFrame(pingCommand(1, 70000));
    assert.equal(f[1] & 0x7f, 127);
    await c.sendPieces(f.subarray(0, 14), { chunk: 1, gapMs: 2 });
    await c.sendPieces(f.subarray(14), { chunk: 997, gapMs: 0 });
    await expectReply(c, 1);
    c.assertClean();
  });

  kase(1, 'several frames in one write, the last one cut across two writes', async () => {
    const c = await open(h);
    const all = cat(textFrame(cmd(1)), textFrame(cmd(2)), textFrame(pingCommand(3, 200)), textFrame(cmd(4)));
    const cut = all.length - 20;
    await c.sendRaw(all.subarray(0, cut));
    await sleep(20);
    await c.sendRaw(all.subarray(cut));
    for (const id of [1, 2, 3, 4]) await expectReply(c, id);
    c.assertClean();
  });

  kase(1, 'server frames: pushes with 7-bit, 16-bit and 64-bit lengths (minimal encodings) parse', async () => {
    const c = await open(h);
    await c.sendText(JSON.stringify({ id: 1, method: 'subscribe', channel: 'lengths' }));
    assert.ok((await c.nextJson()).result);
    const sizes = [2, 1000, 65500];
    for (const n of sizes) await publish(h, 'lengths', 'z'.repeat(n));
    const lens = [];
    for (const n of sizes) {
      const m = await c.nextMessage();
      assert.equal(m.json.push.data.length, n);
      assert.equal(m.frames, 1, 'herald does not fragment');
      lens.push(m.wireBytes);
    }
    assert.ok(lens[0] < 126 && lens[1] >= 126 && lens[1] <= 65535 && lens[2] > 65535, `push sizes ${lens}`);
    c.assertClean();  // the client checked the minimal length encodings
  });

  kase(1, 'a 64-bit length with the most significant bit set → 1002', async () => {
    const c = await open(h);
    await c.sendRaw(frame({ opcode: OP.text, payload: 'hello', declaredLength: (1n << 63n) + 5n }));
    await expectFail(c, 1002);
  });
});

// ---------------------------------------------------------------------------------------
describe('2 pings and pongs', () => {
  let h;
  before(async () => { h = await startHerald([]); });
  after(async () => { closeAll(); await h?.stop(); });

  const pongCase = (name, payload, send = (c, f) => c.sendRaw(f)) => kase(2, name, async () => {
    const c = await open(h);
    await send(c, pingFrame(payload));
    const e = await c.next();
    assert.equal(e.type, 'pong', `expected a pong, got ${e.type}; sent ${c.sentSummary()}`);
    assert.ok(e.data.equals(Buffer.from(payload)), `pong payload ${hex(e.data)} != ping payload ${hex(Buffer.from(payload))}`);
    c.assertClean();
  });
  pongCase('ping without payload → empty pong', Buffer.alloc(0));
  pongCase('ping with a text payload → pong with the same payload', 'Hello, world!');
  pongCase('ping with a binary payload → pong with the same payload', Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]));
  pongCase('ping with 125 bytes of payload → pong with the same 125 bytes', Buffer.from(Array.from({ length: 125 }, (_, i) => (i * 7) & 0xff)));
  pongCase('ping of 125 bytes written one byte per write → pong', Buffer.alloc(125, 0xfe), (c, f) => c.sendPieces(f, { chunk: 1, gapMs: 0 }));

  kase(2, 'ping with 126 bytes of payload → 1002, no pong', async () => {
    const c = await open(h);
    await c.sendRaw(pingFrame(Buffer.alloc(126, 0x41)));
    await expectFail(c, 1002);
  });

  kase(2, 'unsolicited pong without payload is ignored', async () => {
    const c = await open(h);
    await c.sendRaw(cat(pongFrame(''), textFrame(cmd(1))));
    await expectReply(c, 1);
    assert.deepEqual((await c.drain(200)).map((e) => e.type), []);
    c.assertClean();
  });

  kase(2, 'unsolicited pong with payload is ignored; the next ping is answered with its own payload', async () => {
    const c = await open(h);
    await c.sendRaw(cat(pongFrame('unsolicited'), pingFrame('mine')));
    const e = await c.next();
    assert.equal(e.type, 'pong');
    assert.equal(e.data.toString(), 'mine');
    assert.deepEqual((await c.drain(200)).map((x) => x.type), []);
    c.assertClean();
  });

  kase(2, '10 pings in one write → 10 pongs in order', async () => {
    const c = await open(h);
    await c.sendRaw(cat(...Array.from({ length: 10 }, (_, i) => pingFrame(`p${i}`))));
    for (let i = 0; i < 10; i++) {
      const e = await c.next();
      assert.equal(e.type, 'pong');
      assert.equal(e.data.toString(), `p${i}`);
    }
    c.assertClean();
  });

  kase(2, 'fragmented ping (FIN clear) → 1002, no pong', async () => {
    const c = await open(h);
    await c.sendRaw(cat(frame({ opcode: OP.ping, payload: 'frag', fin: false }), frame({ opcode: OP.cont, payload: 'ment' })));
    await expectFail(c, 1002);
  });
});

// ---------------------------------------------------------------------------------------
describe('3 reserved bits', () => {
  let h;
  before(async () => { h = await startHerald([]); });
  after(async () => { closeAll(); await h?.stop(); });

  kase(3, 'RSV3 on a text frame → 1002', async () => {
    const c = await open(h);
    await c.send({ opcode: OP.text, payload: cmd(1), rsv: 1 });
    await expectFail(c, 1002);
  });
  kase(3, 'RSV2 on a text frame after a valid message (separate writes) → reply, then 1002', async () => {
    const c = await open(h);
    await c.sendText(cmd(1));
    await expectReply(c, 1);
    await c.send({ opcode: OP.text, payload: cmd(2), rsv: 2 });
    await expectFail(c, 1002);
  });
  kase(3, 'RSV2+RSV3 on a text frame between a valid message and a ping (one write) → reply, 1002, no pong', async () => {
    const c = await open(h);
    await c.sendRaw(cat(textFrame(cmd(1)), frame({ opcode: OP.text, payload: cmd(2), rsv: 3 }), pingFrame('x')));
    await expectReply(c, 1);
    await expectFail(c, 1002);
  });
  kase(3, 'RSV1 on a text frame without permessage-deflate → 1002', async () => {
    const c = await open(h);
    await c.send({ opcode: OP.text, payload: cmd(1), rsv: 4 });
    await expectFail(c, 1002);
  });
  kase(3, 'RSV1+RSV3 on a binary frame → 1002', async () => {
    const c = await open(h);
    await c.send({ opcode: OP.binary, payload: Buffer.from([0, 1, 2, 3]), rsv: 5 });
    await expectFail(c, 1002);
  });
  kase(3, 'RSV1+RSV2 on a ping → 1002, no pong', async () => {
    const c = await open(h);
    await c.send({ opcode: OP.ping, payload: 'x', rsv: 6 });
    await expectFail(c, 1002);
  });
  kase(3, 'all RSV bits on a close frame → 1002 (not an echo)', async () => {
    const c = await open(h);
    await c.sendRaw(closeFrame(1000, '', { rsv: 7 }));
    await expectFail(c, 1002);
  });
  kase(3, 'RSV2 on a continuation frame → 1002', async () => {
    const c = await open(h);
    const [a, b] = splitN(cmd(1), 2);
    await c.sendRaw(cat(frame({ opcode: OP.text, payload: a, fin: false }), frame({ opcode: OP.cont, payload: b, rsv: 2 })));
    await expectFail(c, 1002);
  });
});

// ---------------------------------------------------------------------------------------
describe('4 reserved opcodes', () => {
  let h;
  before(async () => { h = await startHerald([]); });
  after(async () => { closeAll(); await h?.stop(); });

  for (const op of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
    kase(4, `opcode ${op} (${op < 8 ? 'data' : 'control'}) between a valid message and a ping → reply, 1002, no pong`, async () => {
      const c = await open(h);
      await c.sendRaw(cat(textFrame(cmd(1)), frame({ opcode: op, payload: op === 5 ? '' : 'reserved' }), pingFrame('x')));
      await expectReply(c, 1);
      await expectFail(c, 1002);
    });
  }
});

// ---------------------------------------------------------------------------------------
describe('5 fragmentation', () => {
  let h;
  before(async () => { h = await startHerald(['--ws-max-message', String(1 << 20)]); });
  after(async () => { closeAll(); await h?.stop(); });

  kase(5, 'text message in 2 fragments → reply', async () => {
    const c = await open(h);
    await c.sendRaw(cat(fragments(splitN(cmd(1), 2))));
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(5, 'text message in 10 fragments, one write each', async () => {
    const c = await open(h);
    for (const f of fragments(splitN(pingCommand(1, 100), 10))) { await c.sendRaw(f); await sleep(2); }
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(5, 'text message in 1-byte fragments (one write)', async () => {
    const c = await open(h);
    await c.sendRaw(cat(fragments(splitN(cmd(1), cmd(1).length))));
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(5, 'empty first, middle and last fragments', async () => {
    const c = await open(h);
    const [a, b] = splitN(cmd(1), 2);
    await c.sendRaw(cat(fragments([Buffer.alloc(0), a, Buffer.alloc(0), b, Buffer.alloc(0)])));
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(5, 'binary message in 3 fragments is read whole', async () => {
    const c = await open(h);
    await c.sendRaw(cat(fragments(splitN(cmd(1), 3), { opcode: OP.binary }), textFrame(cmd(2))));
    for (;;) {
      const m = await c.nextMessage();
      if (m.json?.id === 2) break;
      assert.deepEqual(m.json, { id: 1, result: {} }, `unexpected frame: ${m.text}`);
    }
    c.assertClean();
  });
  kase(5, 'ping between fragments (one write) → pong first, then the reply', async () => {
    const c = await open(h);
    const [a, b] = fragments(splitN(cmd(1), 2));
    await c.sendRaw(cat(a, pingFrame('between'), b));
    const e = await c.next();
    assert.equal(e.type, 'pong');
    assert.equal(e.data.toString(), 'between');
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(5, 'ping between fragments in separate writes → pong before the message is finished', async () => {
    const c = await open(h);
    const [a, b, d] = fragments(splitN(cmd(1), 3));
    await c.sendRaw(a);
    await c.sendRaw(b);
    await c.sendRaw(pingFrame('mid'));
    const e = await c.next(2000);
    assert.equal(e.type, 'pong', 'the ping inside an unfinished message must be answered at once');
    assert.equal(e.data.toString(), 'mid');
    await c.sendRaw(d);
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(5, 'pong between fragments is ignored', async () => {
    const c = await open(h);
    const [a, b] = fragments(splitN(cmd(1), 2));
    await c.sendRaw(cat(a, pongFrame('x'), b));
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(5, 'continuation (FIN set) without a message → 1002', async () => {
    const c = await open(h);
    await c.send({ opcode: OP.cont, payload: cmd(1) });
    await expectFail(c, 1002);
  });
  kase(5, 'continuation (FIN clear) without a message, then a final one → 1002', async () => {
    const c = await open(h);
    const [a, b] = splitN(cmd(1), 2);
    await c.sendRaw(cat(frame({ opcode: OP.cont, payload: a, fin: false }), frame({ opcode: OP.cont, payload: b })));
    await expectFail(c, 1002);
  });
  kase(5, 'new text message before the previous one ended → 1002', async () => {
    const c = await open(h);
    await c.sendRaw(cat(frame({ opcode: OP.text, payload: '{"id":1,', fin: false }), textFrame(cmd(2))));
    await expectFail(c, 1002);
  });
  kase(5, 'binary frame inside a fragmented text message → 1002', async () => {
    const c = await open(h);
    await c.sendRaw(cat(frame({ opcode: OP.text, payload: '{"id":1,', fin: false }), binaryFrame('"method":"ping"}')));
    await expectFail(c, 1002);
  });
  kase(5, 'continuation after a complete message → reply, then 1002', async () => {
    const c = await open(h);
    await c.sendRaw(cat(textFrame(cmd(1)), frame({ opcode: OP.cont, payload: 'more' })));
    await expectReply(c, 1);
    await expectFail(c, 1002);
  });
  kase(5, 'fragmented pong → 1002', async () => {
    const c = await open(h);
    await c.sendRaw(cat(frame({ opcode: OP.pong, payload: 'a', fin: false }), frame({ opcode: OP.cont, payload: 'b' })));
    await expectFail(c, 1002);
  });
  kase(5, 'fragmented close → 1002 (not echoed)', async () => {
    const c = await open(h);
    await c.sendRaw(cat(frame({ opcode: OP.close, payload: Buffer.from([0x03]), fin: false }), frame({ opcode: OP.cont, payload: Buffer.from([0xe8]) })));
    await expectFail(c, 1002);
  });
  kase(5, 'fragmented ping inside a fragmented text message → 1002', async () => {
    const c = await open(h);
    const [a, b] = fragments(splitN(cmd(1), 2));
    await c.sendRaw(cat(a, frame({ opcode: OP.ping, payload: 'x', fin: false }), frame({ opcode: OP.cont, payload: 'y' }), b));
    await expectFail(c, 1002);
  });
});

// ---------------------------------------------------------------------------------------
describe('6 UTF-8', () => {
  let h;
  before(async () => { h = await startHerald(['--client-publish', 'true']); });
  after(async () => { closeAll(); await h?.stop(); });

  kase(6, 'valid 2-, 3- and 4-byte characters → reply', async () => {
    const c = await open(h);
    await c.sendRaw(textFrame(cmdBytes(1, 'κόσμε € 𝄞 😀')));
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(6, 'valid boundary characters U+0080 U+07FF U+0800 U+FFFF U+10000 U+10FFFF U+FEFF U+FFFE', async () => {
    const c = await open(h);
    const raw = Buffer.from([0xc2, 0x80, 0xdf, 0xbf, 0xe0, 0xa0, 0x80, 0xef, 0xbf, 0xbf, 0xf0, 0x90, 0x80, 0x80,
      0xf4, 0x8f, 0xbf, 0xbf, 0xef, 0xbb, 0xbf, 0xef, 0xbf, 0xbe]);
    await c.sendRaw(textFrame(cmdBytes(1, raw)));
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(6, 'valid multi-byte text fragmented at every byte (characters split across frames)', async () => {
    const c = await open(h);
    const m = cmdBytes(1, 'κόσμε€𝄞😀\u{10FFFF}');
    await c.sendRaw(cat(fragments(splitN(m, m.length))));
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(6, 'valid multi-byte text in one frame written one byte per write', async () => {
    const c = await open(h);
    await c.sendPieces(textFrame(cmdBytes(1, '𝄞κόσμε😀')), { chunk: 1, gapMs: 0 });
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(6, 'multi-byte data published over WS comes back byte-exact in the push', async () => {
    const c = await open(h);
    const data = 'κόσμε € 𝄞 😀 \u{10FFFF} \u{FEFF}';
    await c.sendText(JSON.stringify({ id: 1, method: 'subscribe', channel: 'utf8' }));
    assert.equal((await c.nextJson()).result?.channel, 'utf8');
    await c.sendText(JSON.stringify({ id: 2, method: 'publish', channel: 'utf8', data }));
    const got = [await c.nextMessage(), await c.nextMessage()];
    const push = got.find((m) => m.json.push);
    assert.ok(push, `no push: ${got.map((m) => m.text)}`);
    assert.equal(push.json.push.data, data);
    assert.ok(push.data.includes(Buffer.from(data)), 'the push carries the UTF-8 bytes unescaped');
    c.assertClean();
  });

  const invalid = [
    ['lone continuation byte 80', [0x80]],
    ['overlong 2-byte C0 AF', [0xc0, 0xaf]],
    ['overlong 2-byte C1 BF', [0xc1, 0xbf]],
    ['overlong 3-byte E0 80 AF', [0xe0, 0x80, 0xaf]],
    ['overlong 4-byte F0 80 80 AF', [0xf0, 0x80, 0x80, 0xaf]],
    ['high surrogate ED A0 80', [0xed, 0xa0, 0x80]],
    ['low surrogate ED BF BF', [0xed, 0xbf, 0xbf]],
    ['surrogate pair in CESU-8 ED A0 BD ED B2 A9', [0xed, 0xa0, 0xbd, 0xed, 0xb2, 0xa9]],
    ['U+110000 F4 90 80 80', [0xf4, 0x90, 0x80, 0x80]],
    ['F5 lead byte', [0xf5, 0x80, 0x80, 0x80]],
    ['FE and FF bytes', [0xfe, 0xff]],
    ['2-byte lead followed by ASCII C2 41', [0xc2, 0x41]],
  ];
  for (const [name, bytes] of invalid) {
    kase(6, `invalid: ${name} → 1007`, async () => {
      const c = await open(h);
      await c.sendRaw(textFrame(cmdBytes(1, Buffer.from(bytes))));
      await expectFail(c, 1007);
    });
  }
  kase(6, 'invalid: message ends inside a character (… E2 82) → 1007', async () => {
    const c = await open(h);
    await c.sendRaw(textFrame(Buffer.from([0x61, 0x62, 0x63, 0xe2, 0x82])));
    await expectFail(c, 1007);
  });
  kase(6, 'invalid: fragmented message whose last fragment ends inside a character (F0 9F 98) → 1007', async () => {
    const c = await open(h);
    await c.sendRaw(cat(fragments([Buffer.from('{"id":1,'), Buffer.from([0x22, 0xf0, 0x9f, 0x98])])));
    await expectFail(c, 1007);
  });
  kase(6, 'invalid: character split across fragments, bad at fragment 2 (E2 | 28 A1) → 1007', async () => {
    const c = await open(h);
    await c.sendRaw(cat(fragments([Buffer.from([0x22, 0x61, 0xe2]), Buffer.from([0x28, 0xa1, 0x22])])));
    await expectFail(c, 1007);
  });
  kase(6, 'fast fail: valid fragment 1, invalid fragment 2 (C0 AF), message never finished → 1007', async () => {
    const c = await open(h);
    await c.sendRaw(cat(fragments([Buffer.from('{"id":1,"s":"'), Buffer.from([0x61, 0xc0, 0xaf, 0x62])], { lastFin: false })));
    await expectFail(c, 1007, { within: 2000 });
  });
  kase(6, 'fast fail: invalid first fragment (ED A0 80), FIN clear, nothing more sent → 1007', async () => {
    const c = await open(h);
    await c.send({ opcode: OP.text, payload: Buffer.from([0x7b, 0xed, 0xa0, 0x80]), fin: false });
    await expectFail(c, 1007, { within: 2000 });
  });
  kase(6, 'fast fail: first fragment ends with F4 90 (already past U+10FFFF) → 1007 before the rest', async () => {
    const c = await open(h);
    await c.send({ opcode: OP.text, payload: Buffer.from([0x22, 0xf4, 0x90]), fin: false });
    await expectFail(c, 1007, { within: 2000 });
  });
  kase(6, 'binary messages are not UTF-8 checked: invalid bytes in binary do not close the connection', async () => {
    const c = await open(h);
    await c.sendRaw(cat(binaryFrame(Buffer.from([0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xff])), textFrame(cmd(2))));
    for (;;) {
      const e = await c.next();
      assert.notEqual(e.type, 'close', `closed with ${e.code} "${e.reason}" after a binary message`);
      if (e.type === 'message' && e.json?.id === 2) break;
    }
    c.assertClean();
  });
});

// ---------------------------------------------------------------------------------------
describe('7 close handling', () => {
  let h;
  before(async () => { h = await startHerald([]); });
  after(async () => { closeAll(); await h?.stop(); });

  async function closeEcho(sendBuf, expectCode) {
    const c = await open(h);
    await c.sendRaw(sendBuf);
    const r = await c.readClose();
    assert.equal(r.code, expectCode, `sent ${hex(sendBuf)}: expected close ${expectCode}, got ${r.code} "${r.reason}"`);
    assert.deepEqual(r.before.map((e) => e.type), []);
    assert.ok(await c.waitEnd(3000), 'the server did not close the TCP connection after the close handshake');
    c.assertClean();
    return c;
  }

  kase(7, 'close 1000 → echoed 1000, then the server closes TCP', async () => {
    const c = await open(h);
    const t0 = Date.now();
    await c.sendClose(1000);
    const r = await c.readClose();
    assert.equal(r.code, 1000);
    assert.ok(await c.waitEnd(2000), 'the server must close the TCP connection after the close handshake');
    assert.ok(c.endedAt - t0 < 2000);
    c.assertClean();
  });
  kase(7, 'close without payload → 1000', () => closeEcho(frame({ opcode: OP.close }), 1000));
  kase(7, 'close 1000 with a reason → 1000', () => closeEcho(closeFrame(1000, 'bye bye κόσμε'), 1000));
  kase(7, 'close 1000 with a 123-byte reason (125-byte payload) → 1000', () => closeEcho(closeFrame(1000, 'r'.repeat(123)), 1000));
  kase(7, 'close with a 126-byte payload → 1002', () => closeEcho(closeFrame(1000, 'r'.repeat(124)), 1002));
  kase(7, 'close with a 1-byte payload → 1002', () => closeEcho(frame({ opcode: OP.close, payload: Buffer.from([0x03]) }), 1002));
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    kase(7, `invalid close code ${code} → 1002`, () => closeEcho(closeFrame(code), 1002));
  }
  for (const code of [1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]) {
    kase(7, `valid close code ${code} → echoed`, () => closeEcho(closeFrame(code), code));
  }
  kase(7, 'close reason that is not UTF-8 → 1007', () => closeEcho(closeFrame(1000, Buffer.from([0x62, 0xc0, 0xaf, 0x65])), 1007));
  kase(7, 'data, ping and close after a close are ignored (one write)', async () => {
    const c = await open(h);
    await c.sendRaw(cat(closeFrame(1000), textFrame(cmd(1)), pingFrame('after'), closeFrame(1001)));
    const r = await c.readClose();
    assert.equal(r.code, 1000);
    assert.deepEqual(r.before.map((e) => e.type), []);
    assert.ok(await c.waitEnd(3000));
    assert.deepEqual(c.events.map((e) => e.type), [], 'nothing may follow the close echo');
    c.assertClean();
  });
  kase(7, 'close in the middle of a fragmented message → echoed 1000', async () => {
    const c = await open(h);
    await c.sendRaw(cat(frame({ opcode: OP.text, payload: '{"id":1,', fin: false }), closeFrame(1000)));
    const r = await c.readClose();
    assert.equal(r.code, 1000);
    assert.deepEqual(r.before.map((e) => e.type), []);
    assert.ok(await c.waitEnd(3000));
    c.assertClean();
  });
});

// ---------------------------------------------------------------------------------------
describe('8 limits and masking', () => {
  let h;
  before(async () => { h = await startHerald(['--ws-max-message', '4096']); });
  after(async () => { closeAll(); await h?.stop(); });

  kase(8, 'a message of exactly --ws-max-message (4096) bytes is accepted', async () => {
    const c = await open(h);
    await c.sendRaw(textFrame(pingCommand(1, 4096)));
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(8, 'a single frame of 4097 bytes → 1009', async () => {
    const c = await open(h);
    await c.sendRaw(textFrame(pingCommand(1, 4097)));
    await expectFail(c, 1009);
  });
  kase(8, '4097 bytes in fragments of at most 1000, the last one never sent → 1009', async () => {
    const c = await open(h);
    await c.sendRaw(cat(fragments(splitN(pingCommand(1, 4097), 5), { lastFin: false })));
    await expectFail(c, 1009);
  });
  kase(8, 'a header announcing 2^40 bytes → 1009 at once, before any payload', async () => {
    const c = await open(h);
    const f = frame({ opcode: OP.binary, payload: Buffer.alloc(0), declaredLength: 1n << 40n });
    await c.sendRaw(f.subarray(0, 14));  // header + mask key only
    await expectFail(c, 1009, { within: 2000 });
  });
  kase(8, 'unmasked text frame → 1002', async () => {
    const c = await open(h);
    await c.send({ opcode: OP.text, payload: cmd(1), mask: false });
    await expectFail(c, 1002);
  });
  kase(8, 'unmasked ping → 1002, no pong', async () => {
    const c = await open(h);
    await c.send({ opcode: OP.ping, payload: 'x', mask: false });
    await expectFail(c, 1002);
  });
  kase(8, 'unmasked close → 1002', async () => {
    const c = await open(h);
    await c.sendRaw(closeFrame(1000, '', { mask: false }));
    await expectFail(c, 1002);
  });
});

// ---------------------------------------------------------------------------------------
describe('9 permessage-deflate', () => {
  let h;
  const PMD = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
  before(async () => { h = await startHerald(['--ws-deflate', 'true', '--ws-max-message', '131072']); });
  after(async () => { closeAll(); await h?.stop(); });

  const openDeflate = () => open(h, { extensions: 'permessage-deflate; client_max_window_bits' });
  const sendCompressed = (c, s, o = {}) => c.sendRaw(frame({ opcode: OP.text, payload: compress(s, o), rsv: 4 }));

  kase(9, 'offer with client_max_window_bits → permessage-deflate; server_no_context_takeover; client_no_context_takeover', async () => {
    const c = await openDeflate();
    assert.equal(c.headers['sec-websocket-extensions'], PMD);
    c.assertClean();
  });
  kase(9, 'plain offer → the same response', async () => {
    const c = await open(h, { extensions: 'permessage-deflate' });
    assert.equal(c.headers['sec-websocket-extensions'], PMD);
  });
  kase(9, 'offer with server_max_window_bits=10 only → declined, or accepted with that parameter', async () => {
    const c = await open(h, { extensions: 'permessage-deflate; server_max_window_bits=10' });
    const ext = c.headers['sec-websocket-extensions'];
    assert.ok(ext === undefined || /server_max_window_bits=10/.test(ext), `unhonoured parameter accepted: ${ext}`);
  });
  kase(9, 'offer with both no_context_takeover parameters → the same response', async () => {
    const c = await open(h, { extensions: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover' });
    assert.equal(c.headers['sec-websocket-extensions'], PMD);
  });
  kase(9, 'offer client_max_window_bits=9; a message compressed with a 9-bit window is understood', async () => {
    const c = await open(h, { extensions: 'permessage-deflate; client_max_window_bits=9' });
    assert.ok(c.deflate, `not negotiated: ${c.headers['sec-websocket-extensions']}`);
    const ext = c.headers['sec-websocket-extensions'];
    const m = /client_max_window_bits=(\d+)/.exec(ext);
    assert.ok(!m || Number(m[1]) >= 9, ext);
    let z = zlib.deflateRawSync(Buffer.from(pingCommand(1, 3000)), { windowBits: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    z = z.subarray(0, z.length - 4);
    await c.sendRaw(frame({ opcode: OP.text, payload: z, rsv: 4 }));
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(9, 'first offer unacceptable (unknown parameter), second plain → second accepted', async () => {
    const c = await open(h, { extensions: 'permessage-deflate; x_unknown=1, permessage-deflate' });
    assert.equal(c.headers['sec-websocket-extensions'], PMD);
  });
  kase(9, 'no offer → no extension, uncompressed pushes', async () => {
    const c = await open(h);
    assert.equal(c.headers['sec-websocket-extensions'], undefined);
    await c.sendText(JSON.stringify({ id: 1, method: 'subscribe', channel: 'pmd-none' }));
    assert.ok((await c.nextJson()).result);
    await publish(h, 'pmd-none', { n: 1 });
    const m = await c.nextMessage();
    assert.equal(m.compressed, false);
    assert.equal(m.json.push.data.n, 1);
    c.assertClean();
  });
  kase(9, 'a compressed command is understood; the reply is compressed (RSV1) and inflates to JSON', async () => {
    const c = await openDeflate();
    await sendCompressed(c, cmd(1));
    const m = await c.nextMessage();
    assert.equal(m.compressed, true, 'reply without RSV1');
    assert.deepEqual(m.json, { id: 1, result: {} });
    c.assertClean();
  });
  kase(9, 'five compressed commands in a row (no context takeover: each alone)', async () => {
    const c = await openDeflate();
    for (let i = 1; i <= 5; i++) await sendCompressed(c, pingCommand(i, 200 + i));
    for (let i = 1; i <= 5; i++) await expectReply(c, i);
    c.assertClean();
  });
  kase(9, 'compressed commands of 16 B to 64 KB with incompressible padding, and pushes of the same sizes', async () => {
    const c = await openDeflate();
    const sizes = [40, 64, 256, 1024, 4096, 16384, 65536];
    for (const [i, n] of sizes.entries()) {
      const pad = randomBytes(n).toString('base64').slice(0, n - 40);
      await sendCompressed(c, JSON.stringify({ id: i + 1, method: 'ping', pad }));
    }
    for (let i = 1; i <= sizes.length; i++) await expectReply(c, i);
    await sendCompressed(c, JSON.stringify({ id: 100, method: 'subscribe', channel: 'pmd-sizes' }));
    assert.ok((await c.nextJson()).result);
    const datas = sizes.map((n) => randomBytes(n).toString('base64').slice(0, Math.min(n, 65000)));
    for (const d of datas) await publish(h, 'pmd-sizes', d);
    for (const d of datas) {
      const m = await c.nextMessage();
      assert.equal(m.compressed, true);
      assert.equal(m.json.push.data, d);
    }
    c.assertClean();
  });
  kase(9, 'a compressed command ending with a final block (BFINAL set) is understood', async () => {
    const c = await openDeflate();
    await sendCompressed(c, cmd(1), { final: true });
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(9, 'an uncompressed command on a deflate connection is understood', async () => {
    const c = await openDeflate();
    await c.sendText(cmd(1));
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(9, 'a compressed message in 3 fragments (RSV1 on the first only)', async () => {
    const c = await openDeflate();
    await c.sendRaw(cat(fragments(splitN(compress(pingCommand(1, 500)), 3), { rsv: 4 })));
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(9, 'pushes arrive with RSV1 and inflate to the published message', async () => {
    const c = await openDeflate();
    await sendCompressed(c, JSON.stringify({ id: 1, method: 'subscribe', channel: 'pmd' }));
    assert.ok((await c.nextJson()).result);
    const data = { text: 'abc'.repeat(3000), n: 7 };
    const pub = await publish(h, 'pmd', data);
    const m = await c.nextMessage();
    assert.equal(m.compressed, true, 'push without RSV1');
    assert.deepEqual(m.json.push.data, data);
    assert.equal(m.json.push.offset, pub.offset);
    assert.equal(m.json.push.cursor, pub.cursor);
    assert.ok(m.wireBytes < m.data.length / 10, `compressed push of ${m.wireBytes} bytes for ${m.data.length}`);
    c.assertClean();
  });
  kase(9, 'RSV1 on a continuation frame → 1002', async () => {
    const c = await openDeflate();
    const [a, b] = splitN(compress(cmd(1)), 2);
    await c.sendRaw(cat(frame({ opcode: OP.text, payload: a, rsv: 4, fin: false }), frame({ opcode: OP.cont, payload: b, rsv: 4 })));
    await expectFail(c, 1002);
  });
  kase(9, 'RSV1 on a ping → 1002', async () => {
    const c = await openDeflate();
    await c.send({ opcode: OP.ping, payload: 'x', rsv: 4 });
    await expectFail(c, 1002);
  });
  kase(9, 'RSV1 on a connection that did not negotiate deflate → 1002', async () => {
    const c = await open(h);
    await sendCompressed(c, cmd(1));
    await expectFail(c, 1002);
  });
  kase(9, 'decompression bomb: 10 MB of zeros in a ~10 KB message (--ws-max-message 131072) → 1009', async () => {
    const c = await openDeflate();
    const bomb = compress(Buffer.alloc(10 * 1024 * 1024));
    assert.ok(bomb.length < 131072, `bomb is ${bomb.length} bytes`);
    await c.sendRaw(frame({ opcode: OP.binary, payload: bomb, rsv: 4 }));
    await expectFail(c, 1009);
  });
  kase(9, 'a compressed message inflating to 131073 bytes → 1009', async () => {
    const c = await openDeflate();
    await sendCompressed(c, pingCommand(1, 131073));
    await expectFail(c, 1009);
  });
  kase(9, 'corrupt deflate data → connection failed with 1007 or 1002 (not 1009 "too big")', async () => {
    const c = await openDeflate();
    // Block type 3 (reserved) in the first header bits: invalid DEFLATE from byte one.
    await c.sendRaw(frame({ opcode: OP.text, payload: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x11]), rsv: 4 }));
    const r = await c.readClose();
    assert.ok(r.code === 1007 || r.code === 1002, `expected close 1007 or 1002 for undecodable compressed data, got ${r.code} "${r.reason}" (sent ${c.sentSummary()})`);
    assert.ok(await c.waitEnd(3000));
  });
  kase(9, 'compressed text that inflates to invalid UTF-8 → 1007', async () => {
    const c = await openDeflate();
    await sendCompressed(c, cmdBytes(1, Buffer.from([0xed, 0xa0, 0x80])));
    await expectFail(c, 1007);
  });
});

// ---------------------------------------------------------------------------------------
describe('10 opening handshake', () => {
  let h, ho;
  before(async () => {
    h = await startHerald([]);
    ho = await startHerald(['--allowed-origins', 'http://a.example', '--allowed-origins', 'http://b.example:8080']);
  });
  after(async () => { closeAll(); await h?.stop(); await ho?.stop(); });

  const refused = async (opts, status, extra) => {
    const c = await WsConn.connect(h, opts);
    conns.push(c);
    assert.equal(c.status, status, `expected ${status}, got ${c.status}\nrequest:\n${c.request}\nresponse:\n${c.head}\n${c.body}`);
    assert.equal(typeof c.json?.error?.code, 'string', `refusal body is not a JSON error: ${c.body}`);
    if (extra) extra(c);
    return c;
  };

  kase(10, 'a valid request (RFC 6455 sample key) → 101 with the right Sec-WebSocket-Accept', async () => {
    const c = await open(h, { key: 'dGhlIHNhbXBsZSBub25jZQ==' });
    assert.match(c.head, /^HTTP\/1\.1 101 /);
    assert.equal(c.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    assert.equal(acceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    assert.match(c.headers.upgrade, /^websocket$/i);
    assert.match(c.headers.connection, /\bupgrade\b/i);
    assert.equal(c.headers['sec-websocket-extensions'], undefined, 'no extension without --ws-deflate');
    c.assertClean();
  });
  kase(10, 'missing Upgrade → 426', () => refused({ upgrade: null }, 426));
  kase(10, 'Connection without the upgrade token → 426', () => refused({ connection: 'keep-alive' }, 426));
  kase(10, 'Upgrade: h2c → 426 (or 400)', async () => {
    const c = await WsConn.connect(h, { upgrade: 'h2c' });
    conns.push(c);
    assert.ok(c.status === 426 || c.status === 400, `${c.head}`);
  });
  kase(10, 'Sec-WebSocket-Version: 8 → 426 with Sec-WebSocket-Version: 13', () =>
    refused({ version: '8' }, 426, (c) => assert.equal(c.headers['sec-websocket-version'], '13')));
  kase(10, 'missing Sec-WebSocket-Version → 400, or 426 with Sec-WebSocket-Version: 13', async () => {
    const c = await WsConn.connect(h, { version: null });
    conns.push(c);
    assert.ok(c.status === 400 || (c.status === 426 && c.headers['sec-websocket-version'] === '13'), `${c.head}`);
  });
  kase(10, 'missing Sec-WebSocket-Key → 400', () => refused({ key: null }, 400));
  kase(10, 'Sec-WebSocket-Key of 15 bytes → 400', () => refused({ key: Buffer.alloc(15, 1).toString('base64') }, 400));
  kase(10, 'Sec-WebSocket-Key not base64 → 400', () => refused({ key: '!!!!!!!!!!!!!!!!!!!!!!==' }, 400));
  kase(10, 'POST /ws → 405', () => refused({ method: 'POST', headers: { 'Content-Length': '0' } }, 405));
  kase(10, 'HTTP/1.0 upgrade request is refused', async () => {
    const c = await WsConn.connect(h, { httpVersion: '1.0' });
    conns.push(c);
    assert.ok(c.status === 400 || c.status === 426 || /^HTTP\/1\.\d 4\d\d/.test(c.head), `HTTP/1.0 upgrade: ${c.head}`);
    assert.notEqual(c.status, 101);
  });
  kase(10, 'header tokens are case-insensitive and lists are read (Upgrade: WebSocket, Connection: keep-alive, Upgrade)', async () => {
    const c = await open(h, { upgrade: 'WebSocket', connection: 'keep-alive, Upgrade' });
    await c.sendText(cmd(1));
    await expectReply(c, 1);
    c.assertClean();
  });
  kase(10, 'frames sent in the same write as the request are handled', async () => {
    const c = await open(h, { early: cat(textFrame(cmd(1)), pingFrame('early')) });
    await expectReply(c, 1);
    const e = await c.next();
    assert.equal(e.type, 'pong');
    assert.equal(e.data.toString(), 'early');
    c.assertClean();
  });
  kase(10, 'a query string on /ws is accepted (GET /ws?token=abc)', async () => {
    const c = await open(h, { path: '/ws?token=abc&x=1' });
    await c.sendText(cmd(1));
    await expectReply(c, 1);
  });
  kase(10, 'Sec-WebSocket-Protocol offered: the response selects none or one of those offered', async () => {
    const c = await open(h, { headers: { 'Sec-WebSocket-Protocol': 'chat, superchat' } });
    const p = c.headers['sec-websocket-protocol'];
    assert.ok(p === undefined || p === 'chat' || p === 'superchat', `selected ${p}`);
  });
  kase(10, 'an unknown extension offered is not accepted', async () => {
    const c = await open(h, { extensions: 'x-webkit-deflate-frame, permessage-foo' });
    assert.equal(c.headers['sec-websocket-extensions'], undefined);
  });
  kase(10, 'disallowed Origin → 403 (with --allowed-origins)', async () => {
    const c = await WsConn.connect(ho, { origin: 'http://evil.example' });
    conns.push(c);
    assert.equal(c.status, 403, `${c.head}\n${c.body}`);
    assert.equal(c.json?.error?.code, 'origin_not_allowed');
  });
  kase(10, 'allowed Origin → 101', async () => {
    const c = await open(ho, { origin: 'http://a.example' });
    await c.sendText(cmd(1));
    await expectReply(c, 1);
  });
  kase(10, 'second allowed Origin (repeatable option) → 101', async () => {
    await open(ho, { origin: 'http://b.example:8080' });
  });
  kase(10, 'no Origin (a non-browser client) → 101 with --allowed-origins', async () => {
    const c = await open(ho);
    await c.sendText(cmd(1));
    await expectReply(c, 1);
  });
});

// ---------------------------------------------------------------------------------------
describe('11 liveness', () => {
  let h;
  before(async () => { h = await startHerald(['--ws-ping-interval', '1', '--ws-pong-timeout', '1']); });
  after(async () => { closeAll(); await h?.stop(); });

  kase(11, 'a client that never answers pings is closed with 4001 within ~3 s', async () => {
    const c = await open(h, { autoPong: false });
    const t0 = Date.now();
    const r = await c.readClose(6000);
    const elapsed = Date.now() - t0;
    assert.equal(r.code, 4001, `closed with ${r.code} "${r.reason}"`);
    assert.ok(r.before.some((e) => e.type === 'ping'), 'the server closed without pinging first');
    assert.ok(elapsed <= 4000, `closed after ${elapsed} ms (ping interval 1 s + pong timeout 1 s)`);
    assert.ok(await c.waitEnd(3000));
    c.assertClean();
    console.log(`liveness: silent client closed with 4001 after ${elapsed} ms`);
  });
  kase(11, 'a client that answers pings stays open', async () => {
    const c = await open(h, { autoPong: true });
    const events = await c.drain(4500);
    assert.ok(!events.some((e) => e.type === 'close'), `closed: ${events.map((e) => e.type).join(',')}`);
    assert.ok(events.filter((e) => e.type === 'ping').length >= 2, `pings seen: ${events.filter((e) => e.type === 'ping').length}`);
    await c.sendText(cmd(1));
    await expectReply(c, 1);
    c.assertClean();
  });
});
