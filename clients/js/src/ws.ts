// The WebSocket transport: GET /ws, JSON commands (docs/protocol.md "WebSocket"), and
// with the raw format binary frames of data alone, counted per channel.

import { type Position, decodeCursor, encodeCompact } from './cursor.js';
import { HeraldError } from './types.js';
import { type Conn, type Host, type OnFail } from './transport.js';
import { type WireMessage, type WirePresence, byteLength, frameBytes, isObject } from './wire.js';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  /** Runs as the reply is read, before any later frame (positions must not wait for a microtask). */
  sync?: (reply: Record<string, unknown>) => void;
}

interface SubscribeResult {
  channel?: string;
  cursor?: string;
  recovered?: boolean;
  format?: string;
  ended?: boolean;
}

export function openWs(host: Host, gen: number, onOpen: () => void, onFail: OnFail, ticket?: string): Conn {
  const WS = host.WS;
  if (!WS) throw new Error('no WebSocket implementation');
  const base = host.abs(host.options.endpoints.ws, true);
  const ws = new WS(ticket ? `${base}${base.includes('?') ? '&' : '?'}ticket=${encodeURIComponent(ticket)}` : base);
  const raw = host.options.format === 'raw';
  if (raw) ws.binaryType = 'arraybuffer';
  // Raw subscriptions: each channel's position, counted per binary frame, and the
  // channel the next binary frame belongs to (named by a {"channel":..} text frame).
  const positions = new Map<string, Position>();
  let current: string | null = null;
  const dec = new TextDecoder();
  const pending = new Map<number, Pending>();
  const subscribed = new Set<string>();  // channels subscribed (or being subscribed) on this socket
  let nextId = 1;
  let lastRx = Date.now();
  let opened = false;
  const live = () => host.live(gen);
  let beat: ReturnType<typeof setInterval> | undefined;
  const failAll = (why: string) => {
    for (const p of pending.values()) p.reject(new HeraldError('disconnected', why));
    pending.clear();
  };
  const fail = (why: string, permanent = false) => {
    clearTimeout(openTimer);
    clearInterval(beat);
    failAll(why);
    onFail(why, permanent);
  };
  const openTimer = setTimeout(() => fail('websocket: not open in time'), host.options.connectTimeoutMs);
  const send = (cmd: Record<string, unknown>, sync?: Pending['sync']): Promise<unknown> => new Promise((resolve, reject) => {
    if (ws.readyState !== 1) { reject(new HeraldError('disconnected', 'not connected')); return; }
    const id = nextId++;
    pending.set(id, { resolve, reject, sync });
    ws.send(JSON.stringify({ id, ...cmd }));
  });
  const sub = (ch: string) => {
    subscribed.add(ch);
    const since = host.cursor(ch);
    const cmd: Record<string, unknown> = { method: 'subscribe', channel: ch };
    if (since) cmd.since = since;
    if (raw) cmd.format = 'raw';
    send(cmd, (reply) => {
      const r = reply.result as SubscribeResult | undefined;
      if (!r || !live() || !subscribed.has(ch) || typeof r.cursor !== 'string') return;
      if (r.ended) {
        // The position is at the stream's end: herald left the channel already.
        subscribed.delete(ch);
        host.storeCursor([ch], r.cursor);
        host.ended(ch, null, 'websocket');
        return;
      }
      // Counting starts here: the frames of this channel follow the result.
      if (r.format === 'raw') { const p = decodeCursor(r.cursor)?.[0]; if (p) positions.set(ch, p); }
      if (r.recovered === false) host.reset(ch, r.cursor, 'websocket');
      else if (!host.cursor(ch) || host.cursor(ch) === since) host.storeCursor([ch], r.cursor);
      host.subscribed(ch, 'websocket');
    }).then(() => {}, (e: HeraldError) => {
      if (!live()) return;
      subscribed.delete(ch);
      if (e.code !== 'disconnected' && e.code !== 'unsubscribed') host.error(e);
      if (e.code === 'unavailable') fail('websocket: broker unavailable');
    });
  };
  const update = () => {
    if (!opened || !live()) return;
    for (const ch of host.active()) if (!subscribed.has(ch)) sub(ch);
    for (const ch of [...subscribed]) {
      if (!host.isSubscribed(ch)) { subscribed.delete(ch); positions.delete(ch); send({ method: 'unsubscribe', channel: ch }).catch(() => {}); }
    }
  };
  const push = (m: WireMessage, bytes: number) => {
    if (m.ephemeral === true || typeof m.offset !== 'number') { host.ephemeral(m, 'websocket'); return; }
    if (typeof m.cursor !== 'string') return;
    // On a raw subscription a message with an event name comes in this form: count on from it.
    if (positions.has(m.channel)) { const p = decodeCursor(m.cursor)?.[0]; if (p) positions.set(m.channel, p); }
    host.deliver(m, m.cursor, 'websocket', bytes);
    if (m.event === 'end') {
      // The end closes the subscription on herald's side.
      subscribed.delete(m.channel);
      positions.delete(m.channel);
    }
  };
  // A reply to no command: the backend's POST /api/subscribe (a JSON subscription from
  // now, its cursor in the result), or an error (of that, or of an unreadable command).
  const serverReply = (msg: Record<string, unknown>) => {
    const err = msg.error as { code?: string; message?: string } | undefined;
    if (isObject(err)) {
      if (err.code !== 'already_subscribed') host.error(new HeraldError(String(err.code), String(err.message ?? '')));
      return;
    }
    const r = msg.result as SubscribeResult | undefined;
    if (!isObject(r) || typeof r.channel !== 'string' || typeof r.cursor !== 'string') return;
    subscribed.add(r.channel);
    host.serverSubscribed(r.channel, r.cursor, 'websocket');
    host.subscribed(r.channel, 'websocket');
  };
  ws.onopen = () => {
    if (!live()) return;
    clearTimeout(openTimer);
    opened = true;
    lastRx = Date.now();
    onOpen();
    update();
    const { wsPingIntervalMs: ping, wsPongTimeoutMs: pong } = host.options;
    let pinged = false;
    beat = setInterval(() => {
      if (!live()) { clearInterval(beat); return; }
      const idle = Date.now() - lastRx;
      if (idle >= ping + pong) { try { ws.close(4001, 'no pong'); } catch { /* */ } fail('websocket: heartbeat lost'); return; }
      if (idle >= ping && !pinged) { pinged = true; send({ method: 'ping' }).catch(() => {}); }
      if (idle < ping) pinged = false;
    }, Math.max(50, Math.min(1000, ping / 4)));
  };
  ws.onmessage = (e) => {
    if (!live()) return;
    lastRx = Date.now();
    if (typeof e.data !== 'string') {
      // A raw message: its channel's next offset.
      const p = current === null ? undefined : positions.get(current);
      if (!p || current === null || !subscribed.has(current)) return;
      const bytes = new Uint8Array(e.data as ArrayBuffer);
      let data: unknown;
      try { data = JSON.parse(dec.decode(bytes)); } catch { return; }
      p.offset += 1;
      host.deliver({ channel: current, offset: p.offset, data }, encodeCompact(p), 'websocket', frameBytes(bytes.length));
      return;
    }
    const text = e.data;
    let msg: unknown;
    try { msg = JSON.parse(text); } catch { return; }
    if (!isObject(msg)) return;
    if (typeof msg.channel === 'string' && !('id' in msg)) {
      current = msg.channel;
      const p = typeof msg.cursor === 'string' ? decodeCursor(msg.cursor)?.[0] : undefined;
      if (p) positions.set(msg.channel, p);
    } else if (isObject(msg.push)) {
      push(msg.push as unknown as WireMessage, frameBytes(byteLength(text)));
    } else if (isObject(msg.join) || isObject(msg.leave)) {
      const kind = isObject(msg.join) ? 'join' : 'leave';
      host.presenceEvent(kind, msg[kind] as unknown as WirePresence, 'websocket');
    } else if (isObject(msg.reset)) {
      const r = msg.reset as { channel: string; cursor: string };
      const p = decodeCursor(r.cursor)?.[0];
      if (p && positions.has(r.channel)) positions.set(r.channel, p);
      host.reset(r.channel, r.cursor, 'websocket');
    } else if (isObject(msg.unsubscribed)) {
      // The backend's POST /api/unsubscribe: herald left the channel already.
      const ch = msg.unsubscribed.channel;
      if (typeof ch !== 'string') return;
      subscribed.delete(ch);
      positions.delete(ch);
      if (current === ch) current = null;
      host.serverUnsubscribed(ch, 'websocket');
    } else if (msg.id === null) {
      serverReply(msg);
    } else if ('id' in msg) {
      const p = pending.get(msg.id as number);
      if (!p) return;
      pending.delete(msg.id as number);
      try { p.sync?.(msg); } catch (err) { host.error(err); }
      const err = msg.error as { code: string; message: string } | undefined;
      if (err) p.reject(new HeraldError(err.code, err.message));
      else p.resolve(msg.result);
    }
  };
  ws.onerror = () => { /* onclose follows */ };
  ws.onclose = (e) => {
    if (!live()) return;
    const code = e?.code ?? 1006;
    const permanent = code >= 4100 && code <= 4199;
    if (permanent) host.error(new HeraldError(code === 4101 ? 'unauthorized' : code === 4105 ? 'disconnected' : 'refused', `websocket closed ${code} ${e?.reason ?? ''}`));
    fail(`websocket: closed ${code}${e?.reason ? ' ' + e.reason : ''}`, permanent);
  };
  return {
    name: 'websocket',
    close: () => { clearTimeout(openTimer); clearInterval(beat); failAll('closed'); try { ws.close(1000); } catch { /* already closed */ } },
    update,
    send: (cmd) => (opened ? send(cmd) : Promise.reject(new HeraldError('disconnected', 'not connected'))),
  };
}
