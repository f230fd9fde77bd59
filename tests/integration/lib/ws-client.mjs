// A raw WebSocket client (RFC 6455, RFC 7692 permessage-deflate) over node:net, written
// for the herald WebSocket tests: every client frame is crafted byte by byte (masked or
// not, any RSV bits, any opcode, any length encoding, any declared length), and every
// server frame is checked as it is parsed:
//   - server frames are unmasked, use the minimal length encoding, have no RSV bits
//     (RSV1 only on the first frame of a data message of a deflate connection), use
//     known opcodes; control frames are whole and at most 125 bytes;
//   - text messages are valid UTF-8 and (for herald) parse with JSON.parse;
//   - nothing follows the server's close frame.
// Each breach is recorded in conn.violations; tests call conn.assertClean().
//
// Only 127.0.0.1 is contacted; every wait is bounded.
import net from 'node:net';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';

export const OP = { cont: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 };
export const HOST = '127.0.0.1';
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

export function acceptKey(key) {
  return crypto.createHash('sha1').update(key + GUID).digest('base64');
}

export const newKey = () => crypto.randomBytes(16).toString('base64');

const toBuf = (p) => (Buffer.isBuffer(p) ? p : p instanceof Uint8Array ? Buffer.from(p) : Buffer.from(String(p), 'utf8'));

/**
 * One client frame.
 * @param o.opcode 0..15
 * @param o.payload string (UTF-8) or Buffer
 * @param o.fin default true
 * @param o.rsv RSV bits as a number 0..7 (4 = RSV1, 2 = RSV2, 1 = RSV3)
 * @param o.mask default true; o.maskKey a 4-byte Buffer (default random)
 * @param o.lengthAs 7 | 16 | 64: force a length encoding
 * @param o.declaredLength a length (number or BigInt) to write in the header instead of
 *   the payload's (the payload bytes are still appended)
 */
export function frame({ opcode, payload = '', fin = true, rsv = 0, mask = true, maskKey, lengthAs, declaredLength } = {}) {
  const p = toBuf(payload);
  const len = BigInt(declaredLength ?? p.length);
  const enc = lengthAs ?? (len < 126n ? 7 : len <= 0xffffn ? 16 : 64);
  const b0 = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  let head;
  if (enc === 7) {
    head = Buffer.from([b0, (mask ? 0x80 : 0) | Number(len)]);
  } else if (enc === 16) {
    head = Buffer.alloc(4);
    head[0] = b0; head[1] = (mask ? 0x80 : 0) | 126;
    head.writeUInt16BE(Number(len), 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0; head[1] = (mask ? 0x80 : 0) | 127;
    head.writeBigUInt64BE(len, 2);
  }
  if (!mask) return Buffer.concat([head, p]);
  const key = maskKey ?? crypto.randomBytes(4);
  const body = Buffer.alloc(p.length);
  for (let i = 0; i < p.length; i++) body[i] = p[i] ^ key[i & 3];
  return Buffer.concat([head, key, body]);
}

export const textFrame = (s, o = {}) => frame({ opcode: OP.text, payload: s, ...o });
export const binaryFrame = (b, o = {}) => frame({ opcode: OP.binary, payload: b, ...o });
export const pingFrame = (b = '', o = {}) => frame({ opcode: OP.ping, payload: b, ...o });
export const pongFrame = (b = '', o = {}) => frame({ opcode: OP.pong, payload: b, ...o });
export function closePayload(code, reason = '') {
  if (code === undefined || code === null) return Buffer.alloc(0);
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code, 0);
  return Buffer.concat([b, toBuf(reason)]);
}
export const closeFrame = (code, reason = '', o = {}) => frame({ opcode: OP.close, payload: closePayload(code, reason), ...o });

/** permessage-deflate compression of one message (RFC 7692 7.2.1): sync flush, tail removed. */
export function compress(data, { final = false } = {}) {
  const buf = toBuf(data);
  if (final) return zlib.deflateRawSync(buf);  // a complete stream, BFINAL set (7.2.3.4)
  const out = zlib.deflateRawSync(buf, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  if (out.length >= 4 && out.subarray(out.length - 4).equals(TAIL)) return out.subarray(0, out.length - 4);
  return out;
}

export function inflate(data) {
  return zlib.inflateRawSync(Buffer.concat([toBuf(data), TAIL]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

/** A herald ping command of exactly `len` bytes (pads a field), for length tests. */
export function pingCommand(id, len) {
  const base = `{"id":${id},"method":"ping","pad":""}`;
  if (len < base.length) throw new Error(`a ping command needs at least ${base.length} bytes`);
  return `{"id":${id},"method":"ping","pad":"${'x'.repeat(len - base.length)}"}`;
}

export const hex = (b, max = 64) => {
  const s = toBuf(b).subarray(0, max).toString('hex').replace(/(..)/g, '$1 ').trim();
  return b.length > max ? `${s} … (${b.length} bytes)` : s;
};

const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

/**
 * A WebSocket connection. `await WsConn.connect(h, opts)` resolves once the response
 * head (and, for a refusal, its body) has arrived; check `status` (101 when open).
 */
export class WsConn {
  /**
   * @param h a herald handle ({port}) or a port number
   * @param opts.path default '/ws'; opts.origin; opts.version (default '13', null: omit);
   *   opts.key (default random; null: omit); opts.extensions (Sec-WebSocket-Extensions
   *   offer); opts.upgrade (default 'websocket', null: omit); opts.connection (default
   *   'Upgrade', null: omit); opts.method (default GET); opts.httpVersion (default 1.1);
   *   opts.headers extra headers; opts.early a Buffer sent in the same write as the
   *   request; opts.autoPong answer server pings (default false); opts.json check that
   *   text messages parse as JSON (default true); opts.timeoutMs for the handshake.
   */
  static async connect(h, opts = {}) {
    const c = new WsConn(typeof h === 'number' ? h : h.port, opts);
    await c.opened;
    return c;
  }

  constructor(port, {
    path = '/ws', origin, version = '13', key, extensions, upgrade = 'websocket', connection = 'Upgrade',
    method = 'GET', httpVersion = '1.1', headers = {}, early, autoPong = false, json = true, timeoutMs = 5000,
  } = {}) {
    this.port = port;
    this.key = key === undefined ? newKey() : key;
    this.autoPong = autoPong;
    this.checkJson = json;
    this.violations = [];
    this.events = [];
    this.waiters = [];
    this.sent = [];          // hex of the frames sent, for failure messages
    this.status = null;
    this.headers = {};
    this.head = '';
    this.body = '';
    this.deflate = false;
    this.ended = false;      // the server ended/closed TCP
    this.closeReceived = null;
    this.frameCount = 0;
    this.onEvent = null;     // if set, events are handed to it instead of queued
    this._buf = null;
    this._msg = null;        // message being assembled: {opcode, compressed, parts, size}

    let req = `${method} ${path} HTTP/${httpVersion}\r\nHost: ${HOST}:${port}\r\n`;
    if (upgrade !== null) req += `Upgrade: ${upgrade}\r\n`;
    if (connection !== null) req += `Connection: ${connection}\r\n`;
    if (this.key !== null) req += `Sec-WebSocket-Key: ${this.key}\r\n`;
    if (version !== null) req += `Sec-WebSocket-Version: ${version}\r\n`;
    if (origin !== undefined) req += `Origin: ${origin}\r\n`;
    if (extensions !== undefined) req += `Sec-WebSocket-Extensions: ${extensions}\r\n`;
    for (const [k, v] of Object.entries(headers)) req += `${k}: ${v}\r\n`;
    req += '\r\n';
    this.request = req;

    this.socket = net.connect({ port, host: HOST });
    this.socket.setNoDelay(true);
    this.tcpClosed = new Promise((resolve) => {
      this.socket.on('close', () => {
        this.ended = true;
        this.endedAt = Date.now();
        resolve();
        this._wake();
      });
    });
    this.socket.on('end', () => { this.ended = true; this.endedAt ??= Date.now(); this._wake(); });
    this.socket.on('error', (e) => { this.error = e; });
    this.opened = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`WebSocket handshake: no complete response within ${timeoutMs} ms (got ${JSON.stringify(this.head || this._raw?.toString('latin1') || '')})`));
        this.socket.destroy();
      }, timeoutMs);
      this._openDone = (err) => {
        if (!this._openDone) return;
        this._openDone = null;
        clearTimeout(timer);
        if (err) reject(err); else resolve(this);
      };
    });
    this._raw = Buffer.alloc(0);
    this.socket.on('connect', () => {
      this.socket.write(early ? Buffer.concat([Buffer.from(req, 'latin1'), early]) : req);
    });
    this.socket.on('data', (chunk) => this._onData(chunk));
    this.socket.on('close', () => {
      if (this._openDone) {
        if (this.status !== null) this._openDone();
        else this._openDone(new Error(`connection closed before a response head (${this.error?.code ?? 'no error'}): ${JSON.stringify(this._raw.toString('latin1'))}`));
      }
    });
  }

  _onData(chunk) {
    if (this.status === null) {
      this._raw = Buffer.concat([this._raw, chunk]);
      const sep = this._raw.indexOf('\r\n\r\n');
      if (sep < 0) return;
      this.head = this._raw.subarray(0, sep).toString('latin1');
      const lines = this.head.split('\r\n');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]);
      this.status = m ? Number(m[1]) : 0;
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        const k = l.slice(0, i).trim().toLowerCase();
        const v = l.slice(i + 1).trim();
        this.headers[k] = this.headers[k] === undefined ? v : `${this.headers[k]}, ${v}`;
      }
      const rest = this._raw.subarray(sep + 4);
      this._raw = null;
      if (this.status !== 101) {
        this._bodyBuf = rest;
        return this._maybeBodyDone();
      }
      if (this.headers['sec-websocket-accept'] !== acceptKey(this.key ?? ''))
        this.violations.push(`Sec-WebSocket-Accept ${this.headers['sec-websocket-accept']} != ${acceptKey(this.key ?? '')}`);
      const ext = this.headers['sec-websocket-extensions'];
      this.deflate = !!ext && /^\s*permessage-deflate\b/i.test(ext);
      this._openDone?.();
      if (rest.length) this._frames(rest);
      return;
    }
    if (this.status !== 101) {
      this._bodyBuf = Buffer.concat([this._bodyBuf, chunk]);
      return this._maybeBodyDone();
    }
    this._frames(chunk);
  }

  _maybeBodyDone() {
    const len = this.headers['content-length'];
    if (len !== undefined && this._bodyBuf.length < Number(len)) return;
    this.body = this._bodyBuf.toString('utf8');
    try { this.json = JSON.parse(this.body); } catch { this.json = undefined; }
    this._openDone?.();
  }

  // ---- server frames ----------------------------------------------------------------

  _frames(chunk) {
    let buf = this._buf && this._buf.length ? Buffer.concat([this._buf, chunk]) : chunk;
    let off = 0;
    for (;;) {
      const avail = buf.length - off;
      if (avail < 2) break;
      const b0 = buf[off], b1 = buf[off + 1];
      let len = b1 & 0x7f, head = 2;
      if (len === 126) {
        if (avail < 4) break;
        len = buf.readUInt16BE(off + 2); head = 4;
        if (len < 126) this.violations.push(`server frame uses a 16-bit length for ${len} bytes`);
      } else if (len === 127) {
        if (avail < 10) break;
        const big = buf.readBigUInt64BE(off + 2);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
          this.violations.push(`server frame with 64-bit length ${big}`);
          this.socket.destroy();
          return;
        }
        len = Number(big); head = 10;
        if (len <= 0xffff) this.violations.push(`server frame uses a 64-bit length for ${len} bytes`);
      }
      const masked = (b1 & 0x80) !== 0;
      const total = head + (masked ? 4 : 0) + len;
      if (avail < total) break;
      let payload = buf.subarray(off + head + (masked ? 4 : 0), off + total);
      if (masked) {
        this.violations.push('server frame is masked');
        const key = buf.subarray(off + head, off + head + 4);
        payload = Buffer.from(payload);
        for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
      } else {
        payload = Buffer.from(payload);  // detach from the read buffer
      }
      off += total;
      this._onFrame({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, payload, masked });
    }
    this._buf = off < buf.length ? Buffer.from(buf.subarray(off)) : null;
  }

  _onFrame(f) {
    this.frameCount++;
    if (this.closeReceived) this.violations.push(`server sent a frame (opcode ${f.opcode}) after its close frame`);
    const control = (f.opcode & 0x08) !== 0;
    if (![0, 1, 2, 8, 9, 10].includes(f.opcode)) this.violations.push(`server frame with reserved opcode ${f.opcode}`);
    if (f.rsv & 3) this.violations.push(`server frame with RSV2/RSV3 bits (${f.rsv})`);
    if (f.rsv & 4) {
      if (!this.deflate) this.violations.push('server frame with RSV1 on a connection without permessage-deflate');
      else if (control || f.opcode === OP.cont) this.violations.push(`server frame with RSV1 on opcode ${f.opcode}`);
    }
    if (control) {
      if (!f.fin) this.violations.push(`fragmented server control frame (opcode ${f.opcode})`);
      if (f.payload.length > 125) this.violations.push(`server control frame of ${f.payload.length} bytes`);
      if (f.opcode === OP.ping) {
        if (this.autoPong && !this.closeSent) this.socket.write(pongFrame(f.payload));
        return this._emit({ type: 'ping', data: f.payload, at: Date.now() });
      }
      if (f.opcode === OP.pong) return this._emit({ type: 'pong', data: f.payload });
      if (f.opcode === OP.close) {
        const p = f.payload;
        const ev = { type: 'close', code: null, reason: '', payload: p, at: Date.now() };
        if (p.length === 1) this.violations.push('server close frame with a 1-byte payload');
        if (p.length >= 2) {
          ev.code = p.readUInt16BE(0);
          try { ev.reason = utf8Fatal.decode(p.subarray(2)); } catch { this.violations.push('server close reason is not UTF-8'); }
        }
        this.closeReceived = ev;
        return this._emit(ev);
      }
      return;
    }
    if (f.opcode === OP.cont) {
      if (!this._msg) { this.violations.push('server continuation frame without a message'); return; }
    } else {
      if (this._msg) this.violations.push('server started a message before ending the previous one');
      this._msg = { opcode: f.opcode, compressed: (f.rsv & 4) !== 0, parts: [], size: 0, frames: 0 };
    }
    const m = this._msg;
    m.parts.push(f.payload);
    m.size += f.payload.length;
    m.frames++;
    if (!f.fin) return;
    this._msg = null;
    let data = m.parts.length === 1 ? m.parts[0] : Buffer.concat(m.parts);
    const wire = data.length;
    if (m.compressed) {
      try { data = inflate(data); } catch (e) { this.violations.push(`server message does not inflate: ${e.message}`); return; }
    }
    const ev = { type: 'message', opcode: m.opcode, data, compressed: m.compressed, wireBytes: wire, frames: m.frames };
    if (m.opcode === OP.text) {
      try { ev.text = utf8Fatal.decode(data); } catch { this.violations.push(`server text message is not UTF-8: ${hex(data)}`); ev.text = data.toString('utf8'); }
      if (this.checkJson) {
        try { ev.json = JSON.parse(ev.text); } catch { this.violations.push(`server text message is not JSON: ${ev.text.slice(0, 200)}`); }
      }
    }
    this._emit(ev);
  }

  _emit(ev) {
    if (this.onEvent) return this.onEvent(ev);
    const w = this.waiters.shift();
    if (w) w.resolve(ev); else this.events.push(ev);
  }

  _wake() {
    if (this.events.length) return;
    for (const w of this.waiters.splice(0)) w.resolve({ type: 'eof' });
  }

  /** The next event: {type:'message'|'ping'|'pong'|'close'|'eof', ...}; throws on timeout. */
  next(timeoutMs = 3000) {
    if (this.events.length) return Promise.resolve(this.events.shift());
    if (this.ended) return Promise.resolve({ type: 'eof' });
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (e) => { clearTimeout(t); resolve(e); },
      };
      const t = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no frame from the server within ${timeoutMs} ms (sent: ${this.sentSummary()})`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** The next data message (pings are skipped, and answered when autoPong). */
  async nextMessage(timeoutMs = 3000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = await this.next(Math.max(1, deadline - Date.now()));
      if (e.type === 'message') return e;
      if (e.type === 'ping' || e.type === 'pong') continue;
      throw new Error(`expected a message, got ${describe(e)} (sent: ${this.sentSummary()})`);
    }
  }

  /** The next data message, JSON-decoded. */
  async nextJson(timeoutMs = 3000) {
    const m = await this.nextMessage(timeoutMs);
    if (m.opcode !== OP.text) throw new Error(`expected a text message, got opcode ${m.opcode}`);
    return m.json;
  }

  /** Collects events for `ms` (or until eof). */
  async drain(ms) {
    const out = [];
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return out;
      let e;
      try { e = await this.next(left); } catch { return out; }
      if (e.type === 'eof') return out;
      out.push(e);
    }
  }

  // ---- sending ----------------------------------------------------------------------

  _log(buf) {
    this.sent.push(hex(buf, 48));
    if (this.sent.length > 12) this.sent.shift();
  }

  sentSummary() { return this.sent.length ? `[${this.sent.join(' | ')}]` : '[]'; }

  /** Writes bytes as they are (one write). */
  sendRaw(buf) {
    this._log(buf);
    return new Promise((resolve) => this.socket.write(buf, () => resolve()));
  }

  /** Writes a frame built by frame(opts). */
  send(opts) { return this.sendRaw(frame(opts)); }
  sendText(s, o = {}) { return this.sendRaw(textFrame(s, o)); }
  sendJson(obj) { return this.sendRaw(textFrame(JSON.stringify(obj))); }
  sendClose(code, reason = '', o = {}) { this.closeSent = true; return this.sendRaw(closeFrame(code, reason, o)); }

  /** Writes `buf` in pieces of `chunk` bytes, each its own write, `gapMs` apart
   * (0: next event-loop turn). */
  async sendPieces(buf, { chunk = 1, gapMs = 1 } = {}) {
    this._log(buf);
    for (let i = 0; i < buf.length; i += chunk) {
      if (this.ended) return;
      await new Promise((resolve) => this.socket.write(buf.subarray(i, i + chunk), () => resolve()));
      if (gapMs > 0) await sleep(gapMs); else await new Promise((r) => setImmediate(r));
    }
  }

  // ---- closing ----------------------------------------------------------------------

  /** Waits until the server has closed the TCP connection; false on timeout. */
  async waitEnd(timeoutMs = 3000) {
    if (this.ended) return true;
    let t;
    const r = await Promise.race([
      this.tcpClosed.then(() => true),
      new Promise((resolve) => { t = setTimeout(() => resolve(this.ended), timeoutMs); }),
    ]);
    clearTimeout(t);
    return r;
  }

  /**
   * Reads events until the server's close frame; resolves with {code, reason, before,
   * elapsed}. `before` lists the events received first. Throws when the connection
   * ends (or `timeoutMs` passes) without a close frame.
   */
  async readClose(timeoutMs = 3000) {
    const t0 = Date.now();
    const before = [];
    for (;;) {
      const left = timeoutMs - (Date.now() - t0);
      if (left <= 0) throw new Error(`no close frame within ${timeoutMs} ms; got ${before.map(describe).join(', ') || 'nothing'} (sent: ${this.sentSummary()})`);
      let e;
      try { e = await this.next(left); } catch (err) {
        throw new Error(`no close frame within ${timeoutMs} ms; got ${before.map(describe).join(', ') || 'nothing'} (sent: ${this.sentSummary()})`);
      }
      if (e.type === 'close') return { code: e.code, reason: e.reason, before, elapsed: Date.now() - t0, event: e };
      if (e.type === 'eof') throw new Error(`TCP closed without a close frame; got ${before.map(describe).join(', ') || 'nothing'} (sent: ${this.sentSummary()})`);
      before.push(e);
    }
  }

  destroy() { this.socket.destroy(); }

  assertClean() {
    if (this.violations.length) throw new Error(`server frames broke RFC 6455: ${this.violations.join('; ')}`);
  }
}

export function describe(e) {
  if (!e) return String(e);
  switch (e.type) {
    case 'message': return `${e.opcode === OP.text ? 'text' : `opcode ${e.opcode}`} ${e.text !== undefined ? JSON.stringify(e.text.slice(0, 160)) : hex(e.data, 24)}`;
    case 'ping': case 'pong': return `${e.type}(${hex(e.data, 16)})`;
    case 'close': return `close(${e.code}${e.reason ? ` "${e.reason}"` : ''})`;
    default: return e.type;
  }
}

// ---------------------------------------------------------------------------------------
// The JSON protocol on top of WsConn

/**
 * A herald protocol client: request(obj) → the reply to obj.id; pushes and resets are
 * queued apart. Pings are answered. Replies are checked: exactly one per id.
 */
export class HeraldWs {
  static async open(h, opts = {}) {
    const conn = await WsConn.connect(h, { autoPong: true, ...opts });
    if (conn.status !== 101) throw new Error(`WebSocket handshake refused: ${conn.status} ${conn.body}`);
    return new HeraldWs(conn);
  }

  constructor(conn) {
    this.conn = conn;
    this.nextId = 1;
    this.pending = new Map();   // id -> resolve
    this.replies = new Map();   // id -> count
    this.pushes = [];
    this.pushWaiters = [];
    this.resets = [];
    this.log = [];              // every JSON message, in order
    this.others = [];           // anything that is neither reply, push nor reset
    this.close = null;
    this.keepLog = true;
    this.onPush = null;
    conn.onEvent = (e) => this._on(e);
    conn.tcpClosed.then(() => {
      for (const w of this.pushWaiters.splice(0)) w.wake();
      for (const [, p] of this.pending) p.wake?.();
    });
  }

  get violations() { return this.conn.violations; }

  _on(e) {
    if (e.type === 'close') {
      this.close = e;
      for (const w of this.pushWaiters.splice(0)) w.wake();
      return;
    }
    if (e.type !== 'message') return;
    const j = e.json;
    if (this.keepLog) this.log.push(j);
    if (this.onJson) this.onJson(j);  // sees every message first, in wire order
    if (j && typeof j === 'object' && 'push' in j) {
      if (this.onPush) return this.onPush(j.push);
      const w = this.pushWaiters.shift();
      if (w) w.resolve(j.push); else this.pushes.push(j.push);
      return;
    }
    if (j && typeof j === 'object' && 'reset' in j) { this.resets.push(j.reset); if (this.onReset) this.onReset(j.reset); return; }
    if (j && typeof j === 'object' && 'id' in j && ('result' in j || 'error' in j)) {
      const key = JSON.stringify(j.id);
      if (j.id !== null) {  // id null: an unreadable message, one reply each
        const n = (this.replies.get(key) ?? 0) + 1;
        this.replies.set(key, n);
        if (n > 1) this.conn.violations.push(`second reply to id ${key}: ${JSON.stringify(j)}`);
      }
      const p = j.id !== null && this.pending.get(key);
      if (p) { this.pending.delete(key); p.resolve(j); } else this.others.push(j);
      return;
    }
    this.others.push(j);
  }

  /** Sends a command (id assigned unless given) and resolves with its reply. */
  request(cmd, timeoutMs = 5000) {
    const msg = { ...cmd };
    if (!('id' in msg)) msg.id = this.nextId++;
    const key = JSON.stringify(msg.id);
    const p = new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(key);
        reject(new Error(`no reply to ${JSON.stringify(msg).slice(0, 200)} within ${timeoutMs} ms${this.close ? ` (closed ${this.close.code} ${this.close.reason})` : ''}`));
      }, timeoutMs);
      this.pending.set(key, {
        resolve: (j) => { clearTimeout(t); resolve(j); },
        wake: () => { clearTimeout(t); this.pending.delete(key); reject(new Error(`connection closed before the reply to ${JSON.stringify(msg).slice(0, 200)}${this.close ? ` (close ${this.close.code} ${this.close.reason})` : ''}`)); },
      });
    });
    this.conn.sendRaw(textFrame(JSON.stringify(msg)));
    return p;
  }

  /** Sends raw text (for malformed commands); the reply is collected in `others`. */
  sendText(s) { return this.conn.sendRaw(textFrame(s)); }

  async subscribe(channel, since, timeoutMs = 5000) {
    const cmd = { method: 'subscribe', channel };
    if (since !== undefined) cmd.since = since;
    const r = await this.request(cmd, timeoutMs);
    if (!r.result) throw new Error(`subscribe ${channel} failed: ${JSON.stringify(r)}`);
    return r.result;
  }

  async publish(channel, data, event) {
    const cmd = { method: 'publish', channel, data };
    if (event !== undefined) cmd.event = event;
    const r = await this.request(cmd);
    if (!r.result) throw new Error(`publish to ${channel} failed: ${JSON.stringify(r)}`);
    return r.result;
  }

  /** The next push; throws on timeout or close. */
  nextPush(timeoutMs = 5000) {
    if (this.pushes.length) return Promise.resolve(this.pushes.shift());
    if (this.close || this.conn.ended) return Promise.reject(new Error(`connection closed (${this.close?.code ?? 'no close frame'})`));
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (p) => { clearTimeout(t); resolve(p); },
        wake: () => { clearTimeout(t); reject(new Error(`connection closed while waiting for a push (${this.close?.code ?? 'no close frame'} ${this.close?.reason ?? ''})`)); },
      };
      const t = setTimeout(() => {
        const i = this.pushWaiters.indexOf(w);
        if (i >= 0) this.pushWaiters.splice(i, 1);
        reject(new Error(`no push within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pushWaiters.push(w);
    });
  }

  async takePushes(n, timeoutMs = 5000) {
    const out = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < n) out.push(await this.nextPush(Math.max(1, deadline - Date.now())));
    return out;
  }

  /** Waits `ms` and returns the pushes that arrived meanwhile. */
  async quietPushes(ms) {
    await sleep(ms);
    return this.pushes.splice(0);
  }

  closeNormally() {
    this.conn.sendClose(1000);
    return this.conn.waitEnd(3000);
  }

  destroy() { this.conn.destroy(); }

  assertClean() { this.conn.assertClean(); }
}
