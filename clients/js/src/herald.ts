// herald browser/Node client: one API over WebSocket, Server-Sent Events and long
// polling, with transport fallback, capped exponential backoff with full jitter,
// heartbeats watched on every transport, and resume from the last cursor of each
// channel on whatever transport comes next. No runtime dependencies.
//
// Wire formats: docs/protocol.md of the herald repository. By default the client asks
// for the raw formats (format=raw: the data alone, positions carried by counting) and
// derives each message's offset and cursor itself (cursor.ts).

import { type Position, decodeCursor, encodeCompact, positionOf } from './cursor.js';

export type TransportName = 'websocket' | 'sse' | 'poll';
export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closed';

/** A message as herald sends it, plus how it reached this client. */
export interface Message<T = unknown> {
  channel: string;
  offset: number;
  /** Server time at publication, unix milliseconds (format 'json' only). */
  time?: number;
  /** The publisher's event name (format 'json', and SSE in either format). */
  event?: string;
  data: T;
  /** Cursor after this message (covers at least its channel). */
  cursor: string;
  /** The transport that delivered it. */
  transport: TransportName;
  /** Bytes of the wire element that carried it (frame payload, SSE event, or share of a poll reply). */
  bytes: number;
  /** Local time (Date.now()) when it was received. */
  receivedAt: number;
}

/** History could not cover a gap: messages of `channel` may have been missed before `cursor`. */
export interface ResetInfo {
  channel: string;
  cursor: string;
  transport: TransportName;
}

export interface StateChange {
  state: ConnectionState;
  transport: TransportName | null;
  /** Why we left the previous state, when there is a reason. */
  reason?: string;
}

export interface Handlers<T = unknown> {
  message?: (m: Message<T>) => void;
  reset?: (r: ResetInfo) => void;
}

export interface Endpoints {
  ws: string;
  sse: string;
  poll: string;
  publish: string;
  history: string;
  ticket: string;
}

export type WireFormat = 'raw' | 'json';

export interface HeraldOptions {
  /**
   * 'raw' (default): messages carry their data only and the client counts offsets and
   * builds cursors itself (fewer bytes per message; `time` is absent, `event` only on SSE).
   * 'json': every message carries channel, offset, time, event and cursor.
   */
  format?: WireFormat;
  /** Base URL of herald (http: or https:); default: the page's origin. */
  url?: string;
  /** Transports tried in this order; default websocket, sse, poll. */
  transports?: TransportName[];
  /** Endpoint paths (or absolute URLs); defaults /ws, /sse, /poll, /publish, /api/history, /ticket. */
  endpoints?: Partial<Endpoints>;
  /** Time allowed to establish a transport (WS open, first SSE bytes, first poll reply). Default 5000 ms. */
  connectTimeoutMs?: number;
  /** herald's --sse-heartbeat in ms (default 15000): an SSE stream silent for 2× this is dead. */
  sseHeartbeatMs?: number;
  /** WebSocket: a protocol ping after this much silence (default 20000 ms)… */
  wsPingIntervalMs?: number;
  /** …and the connection is dead if nothing arrives within this (default 10000 ms). */
  wsPongTimeoutMs?: number;
  /** Long-poll hold in seconds (default 25); a poll not answered within hold + 10 s is dead. */
  pollTimeoutSec?: number;
  /** Backoff: first delay cap (default 500 ms), doubled per failed round, capped (default 15000 ms). Full jitter. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Extra headers for HTTP requests (publish, history; fetch-based SSE and polling). */
  headers?: Record<string, string>;
  /**
   * A connection token (JWT) or a function returning one (called before every connection
   * attempt, so it can refresh an expiring token). Sent as `Authorization: Bearer` on SSE,
   * long polling and publish; a WebSocket first trades it for a single-use ticket
   * (`POST /ticket`). An expired token (close 4003, `event: token_expired`, 401
   * token_expired) makes the client reconnect with a fresh one; an invalid one closes it.
   */
  token?: string | (() => string | Promise<string>);
  /** WebSocket constructor (Node < 22: pass one from a library); default globalThis.WebSocket. */
  WebSocket?: any;
  /** fetch implementation; default globalThis.fetch. */
  fetch?: typeof fetch;
}

type Listener = (arg: any) => void;

interface Sub {
  handlers: Set<Handlers<any>>;
}

interface Pending {
  resolve: (v: any) => void;
  reject: (e: Error) => void;
  /** Runs as the reply is read, before any later frame (positions must not wait for a microtask). */
  sync?: (reply: any) => void;
}

export class HeraldError extends Error {
  code: string;
  status?: number;
  constructor(code: string, message: string, status?: number) {
    super(message);
    this.name = 'HeraldError';
    this.code = code;
    this.status = status;
  }
}

const DEFAULT_ORDER: TransportName[] = ['websocket', 'sse', 'poll'];

/** The active connection on one transport. */
interface Conn {
  name: TransportName;
  close(): void;
  /** The channel set changed (subscribe/unsubscribe while connected). */
  update(): void;
  send?(cmd: Record<string, unknown>): Promise<any>;
}

const enc = typeof TextEncoder !== 'undefined' ? new TextEncoder() : null;
const byteLength = (s: string) => (enc ? enc.encode(s).length : s.length);

export class Herald {
  readonly options: Required<Omit<HeraldOptions, 'url' | 'endpoints' | 'WebSocket' | 'fetch' | 'headers' | 'token'>> & {
    url: string; endpoints: Endpoints; headers: Record<string, string>; token?: HeraldOptions['token'];
  };
  /** Current state and transport. */
  state: ConnectionState = 'idle';
  transport: TransportName | null = null;

  private subs = new Map<string, Sub>();
  /** Subscribed channels whose starting position is still being read (see position()). */
  private positioning = new Set<string>();
  /** Per channel: the newest cursor covering it (any transport). */
  private cursors = new Map<string, string>();
  /** Receipt order of cursors, so that the newest entry per channel wins in `since`. */
  private cursorSeq = new Map<string, number>();
  private seq = 0;
  /** Per channel: the last offset delivered (dedupe across reconnects and transports). */
  private lastOffset = new Map<string, number>();
  private listeners = new Map<string, Set<Listener>>();
  private conn: Conn | null = null;
  private attempt = 0;          // failed rounds in a row (backoff exponent)
  private index = 0;            // transport being tried in the current round
  private timer: any = null;
  private generation = 0;       // bumps on every connect/close, so stale callbacks are ignored
  private WS: any;
  private fetchFn: typeof fetch;
  /** `Authorization` value of the current connection (from `token`), if any. */
  private auth: string | undefined;

  constructor(opts: HeraldOptions = {}) {
    const loc = (globalThis as any).location;
    const url = (opts.url ?? (loc ? loc.origin : 'http://127.0.0.1:8080')).replace(/\/+$/, '');
    this.options = {
      url,
      transports: opts.transports?.length ? [...opts.transports] : [...DEFAULT_ORDER],
      endpoints: { ws: '/ws', sse: '/sse', poll: '/poll', publish: '/publish', history: '/api/history', ticket: '/ticket', ...opts.endpoints },
      format: opts.format ?? 'raw',
      connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
      sseHeartbeatMs: opts.sseHeartbeatMs ?? 15000,
      wsPingIntervalMs: opts.wsPingIntervalMs ?? 20000,
      wsPongTimeoutMs: opts.wsPongTimeoutMs ?? 10000,
      pollTimeoutSec: opts.pollTimeoutSec ?? 25,
      backoffBaseMs: opts.backoffBaseMs ?? 500,
      backoffMaxMs: opts.backoffMaxMs ?? 15000,
      headers: { ...opts.headers },
      token: opts.token,
    };
    this.WS = opts.WebSocket ?? (globalThis as any).WebSocket;
    this.fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
  }

  // ------------------------------------------------------------------ events

  /** Events: 'message' (Message), 'reset' (ResetInfo), 'state' (StateChange), 'error' (Error). */
  on(event: 'message', fn: (m: Message) => void): () => void;
  on(event: 'reset', fn: (r: ResetInfo) => void): () => void;
  on(event: 'state', fn: (s: StateChange) => void): () => void;
  on(event: 'error', fn: (e: Error) => void): () => void;
  on(event: string, fn: Listener): () => void {
    let s = this.listeners.get(event);
    if (!s) this.listeners.set(event, (s = new Set()));
    s.add(fn);
    return () => this.off(event, fn);
  }

  off(event: string, fn: Listener): void {
    this.listeners.get(event)?.delete(fn);
  }

  private emit(event: string, arg: unknown): void {
    for (const fn of [...(this.listeners.get(event) ?? [])]) {
      try { fn(arg); } catch (e) { if (event !== 'error') this.emit('error', e); }
    }
  }

  private setState(state: ConnectionState, transport: TransportName | null, reason?: string): void {
    if (this.state === state && this.transport === transport) return;
    this.state = state;
    this.transport = transport;
    this.emit('state', reason ? { state, transport, reason } : { state, transport });
  }

  // ------------------------------------------------------------------ public API

  /** Starts (or restarts) connecting; resolves once connected on some transport. */
  connect(): Promise<void> {
    if (this.state === 'idle' || this.state === 'closed') {
      this.attempt = 0;
      this.startRound();
    }
    return this.whenConnected();
  }

  /** Resolves when the state becomes 'connected' (at once if it is). */
  whenConnected(): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const off = this.on('state', (s) => {
        if (s.state === 'connected') { off(); resolve(); } else if (s.state === 'closed') { off(); reject(new HeraldError('closed', s.reason ?? 'closed')); }
      });
    });
  }

  /** Closes the connection for good (until connect() is called again). */
  close(): void {
    this.generation++;
    clearTimeout(this.timer);
    const c = this.conn;
    this.conn = null;
    c?.close();
    this.setState('closed', null, 'closed by the client');
  }

  /**
   * Subscribes to a channel. `since` (a cursor) resumes from there; without it, from the
   * last cursor this client saw for the channel, else from "now": the moment of this call,
   * not the moment a transport gets through (see position()). Returns an unsubscribe function.
   */
  subscribe<T = unknown>(channel: string, handlers: Handlers<T> = {}, since?: string): () => void {
    if (since) this.storeCursor([channel], since);
    let s = this.subs.get(channel);
    const isNew = !s;
    if (!s) this.subs.set(channel, (s = { handlers: new Set() }));
    s.handlers.add(handlers);
    if (isNew && !this.cursors.has(channel)) this.position(channel);
    else if (isNew) this.conn?.update();
    return () => {
      const cur = this.subs.get(channel);
      if (!cur) return;
      cur.handlers.delete(handlers);
      if (cur.handlers.size === 0) this.unsubscribe(channel);
    };
  }

  /** Leaves a channel (all its handlers). */
  unsubscribe(channel: string): void {
    if (!this.subs.delete(channel)) return;
    this.conn?.update();
  }

  /** Channels subscribed. */
  channels(): string[] {
    return [...this.subs.keys()];
  }

  /** The channels the transports carry: subscribed and positioned. */
  private active(): string[] {
    return [...this.subs.keys()].filter((c) => !this.positioning.has(c));
  }

  /**
   * A fresh subscription starts at "now" as of subscribe(): one `GET /poll?timeout=0`
   * reads the channel's cursor, and the transports then carry the channel from it, so what
   * is published while the client is still connecting or falling back (seconds behind a
   * buffering proxy) is replayed, not lost. If the read fails, the channel starts at "now"
   * when a transport carries it, as before (an 'error' event says so).
   */
  private position(channel: string): void {
    this.positioning.add(channel);
    const q = new URLSearchParams({ channel, timeout: '0' });
    const auth = this.options.token ? this.resolveToken().then((t) => `Bearer ${t}`) : Promise.resolve(undefined);
    auth
      .then((a) => this.http('GET', `${this.options.endpoints.poll}?${q}`, undefined, a))
      .then(
        (r) => { if (typeof r?.cursor === 'string' && !this.cursors.has(channel)) this.storeCursor([channel], r.cursor); },
        (e) => {
          // Refused credentials: the transports report them (and stop); not twice.
          if (e instanceof HeraldError && (e.status === 401 || e.status === 403)) return;
          this.emit('error', new HeraldError('position_unknown', `${channel}: could not read the starting position (${e?.message ?? e}); starting when connected`));
        },
      )
      .finally(() => {
        this.positioning.delete(channel);
        if (this.subs.has(channel)) this.conn?.update();
      });
  }

  /** The newest cursor this client holds for a channel. */
  cursor(channel: string): string | undefined {
    return this.cursors.get(channel);
  }

  /**
   * Publishes (where the channel's namespace allows client publishing): over the
   * WebSocket when that is the transport, else POST /publish.
   */
  async publish(channel: string, data: unknown, event?: string): Promise<{ offset: number; cursor: string }> {
    const body: Record<string, unknown> = { channel, data };
    if (event !== undefined) body.event = event;
    if (this.conn?.send) return this.conn.send({ method: 'publish', ...body });
    const auth = this.options.token ? `Bearer ${await this.resolveToken()}` : undefined;
    return this.http('POST', this.options.endpoints.publish, body, auth);
  }

  /** Messages of a channel after `since` (default: the oldest kept), up to `limit`. */
  async history(channel: string, opts: { since?: string; limit?: number } = {}): Promise<{ messages: any[]; cursor: string; recovered: boolean }> {
    if (this.conn?.send) {
      const cmd: Record<string, unknown> = { method: 'history', channel };
      if (opts.since) cmd.since = opts.since;
      if (opts.limit) cmd.limit = opts.limit;
      return this.conn.send(cmd);
    }
    const q = new URLSearchParams({ channel });
    if (opts.since) q.set('since', opts.since);
    if (opts.limit) q.set('limit', String(opts.limit));
    return this.http('GET', `${this.options.endpoints.history}?${q}`);
  }

  // ------------------------------------------------------------------ internals

  private abs(p: string, ws = false): string {
    let u = /^[a-z]+:\/\//i.test(p) ? p : this.options.url + p;
    if (ws) u = u.replace(/^http/i, 'ws');
    return u;
  }

  private async http(method: string, p: string, body?: unknown, auth?: string): Promise<any> {
    const headers: Record<string, string> = { ...this.options.headers };
    if (auth) headers.Authorization = auth;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await this.fetchFn(this.abs(p), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    const text = await res.text();
    let json: any;
    try { json = JSON.parse(text); } catch { json = undefined; }
    if (!res.ok) throw new HeraldError(json?.error?.code ?? 'http_error', json?.error?.message ?? `HTTP ${res.status}`, res.status);
    return json;
  }

  /** Records `cursor` as the newest position of each of `channels`. */
  private storeCursor(channels: string[], cursor: string): void {
    this.cursorSeq.set(cursor, ++this.seq);
    for (const c of channels) {
      const old = this.cursors.get(c);
      this.cursors.set(c, cursor);
      if (old && old !== cursor && ![...this.cursors.values()].includes(old)) this.cursorSeq.delete(old);
    }
  }

  /**
   * The `since` values for a set of channels: distinct cursors, oldest first, so that
   * (entries of later cursors replacing earlier ones) each channel gets its newest.
   */
  private sinceFor(channels: string[]): string[] {
    const set = new Set<string>();
    for (const c of channels) { const x = this.cursors.get(c); if (x) set.add(x); }
    return [...set].sort((a, b) => (this.cursorSeq.get(a) ?? 0) - (this.cursorSeq.get(b) ?? 0));
  }

  private deliver(raw: any, cursor: string, transport: TransportName, bytes: number, cursorChannels?: string[]): void {
    const ch: string = raw.channel;
    this.storeCursor(cursorChannels ?? [ch], cursor);
    const last = this.lastOffset.get(ch) ?? 0;
    if (raw.offset <= last) return;  // already delivered (replay overlap after a switch)
    this.lastOffset.set(ch, raw.offset);
    const m: Message = { channel: ch, offset: raw.offset, data: raw.data, cursor, transport, bytes, receivedAt: Date.now() };
    if (raw.time !== undefined) m.time = raw.time;
    if (raw.event !== undefined) m.event = raw.event;
    const s = this.subs.get(ch);
    if (!s) return;
    for (const h of [...s.handlers]) {
      try { h.message?.(m); } catch (e) { this.emit('error', e); }
    }
    this.emit('message', m);
  }

  private doReset(channel: string, cursor: string, transport: TransportName, cursorChannels?: string[]): void {
    this.storeCursor(cursorChannels ?? [channel], cursor);
    this.lastOffset.delete(channel);
    const r: ResetInfo = { channel, cursor, transport };
    const s = this.subs.get(channel);
    if (s) for (const h of [...s.handlers]) { try { h.reset?.(r); } catch (e) { this.emit('error', e); } }
    this.emit('reset', r);
  }

  // ---- connection lifecycle

  /** Starts a round over the configured transports, from the first. */
  private startRound(): void {
    this.index = 0;
    this.tryTransport();
  }

  /** Replaces the current connection by a new one on the same transport (channel set changed). */
  private reopen(): void {
    const c = this.conn;
    this.generation++;
    this.conn = null;
    try { c?.close(); } catch { /* */ }
    this.tryTransport();
  }

  private tryTransport(): void {
    const gen = ++this.generation;
    const name = this.options.transports[this.index];
    this.setState('connecting', name);
    let established = false;
    const onOpen = () => {
      if (gen !== this.generation) return;
      established = true;
      this.attempt = 0;
      this.setState('connected', name);
    };
    const onFail = (reason: string, permanent = false) => {
      if (gen !== this.generation) return;
      this.generation++;
      const c = this.conn;
      this.conn = null;
      try { c?.close(); } catch { /* already closed */ }
      if (permanent) { this.setState('closed', null, reason); return; }
      if (!established && this.index + 1 < this.options.transports.length) {
        // This transport could not be established: fall back to the next one at once.
        this.index++;
        this.setState('disconnected', name, reason);
        this.tryTransport();
        return;
      }
      // A live connection dropped, or every transport failed: back off, then start over.
      const cap = Math.min(this.options.backoffMaxMs, this.options.backoffBaseMs * 2 ** Math.min(this.attempt, 20));
      this.attempt++;
      const delay = Math.random() * cap;
      this.setState('disconnected', name, reason);
      clearTimeout(this.timer);
      const g2 = this.generation;
      this.timer = setTimeout(() => { if (g2 === this.generation) this.startRound(); }, delay);
    };
    const open = (ticket?: string) => {
      if (gen !== this.generation) return;
      try {
        if (name === 'websocket') this.conn = this.openWs(gen, onOpen, onFail, ticket);
        else if (name === 'sse') this.conn = this.openSse(gen, onOpen, onFail);
        else this.conn = this.openPoll(gen, onOpen, onFail);
      } catch (e: any) {
        onFail(`${name}: ${e?.message ?? e}`);
      }
    };
    if (!this.options.token) { this.auth = undefined; open(); return; }
    // Credentials first: the token (possibly refreshed), and for a WebSocket a ticket.
    (async () => {
      this.auth = `Bearer ${await this.resolveToken()}`;
      if (name !== 'websocket') return undefined;
      const r = await this.http('POST', this.options.endpoints.ticket, undefined, this.auth);
      return String(r.ticket);
    })().then(open, (e: any) => {
      if (gen !== this.generation) return;
      if (e instanceof HeraldError && e.status === 401 && e.code !== 'token_expired') this.emit('error', e);
      onFail(`${name}: credentials: ${e?.message ?? e}`, e instanceof HeraldError && e.status === 401 && e.code !== 'token_expired');
    });
  }

  private async resolveToken(): Promise<string> {
    const t = this.options.token;
    return typeof t === 'function' ? await t() : String(t);
  }

  /** A refused HTTP connection attempt: permanent unless the token merely expired. */
  private async refusal(res: Response, what: string, onFail: (r: string, permanent?: boolean) => void): Promise<void> {
    let code = '', message = '';
    try { const j = JSON.parse(await res.text()); code = j?.error?.code ?? ''; message = j?.error?.message ?? ''; } catch { /* not JSON */ }
    const permanent = (res.status === 401 || res.status === 403) && code !== 'token_expired';
    if (permanent) this.emit('error', new HeraldError(code || 'http_error', message || `HTTP ${res.status}`, res.status));
    onFail(`${what}: HTTP ${res.status}${code ? ' ' + code : ''}`, permanent);
  }

  // ---- WebSocket

  private openWs(gen: number, onOpen: () => void, onFail: (r: string, permanent?: boolean) => void, ticket?: string): Conn {
    if (!this.WS) throw new Error('no WebSocket implementation');
    const base = this.abs(this.options.endpoints.ws, true);
    const ws = new this.WS(ticket ? `${base}${base.includes('?') ? '&' : '?'}ticket=${encodeURIComponent(ticket)}` : base);
    const raw = this.options.format === 'raw';
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
    const live = () => gen === this.generation;
    const openTimer = setTimeout(() => fail('websocket: not open in time'), this.options.connectTimeoutMs);
    let beat: any = null;
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
    const send = (cmd: Record<string, unknown>, sync?: (reply: any) => void): Promise<any> => new Promise((resolve, reject) => {
      if (ws.readyState !== 1) { reject(new HeraldError('disconnected', 'not connected')); return; }
      const id = nextId++;
      pending.set(id, { resolve, reject, sync });
      ws.send(JSON.stringify({ id, ...cmd }));
    });
    const sub = (ch: string) => {
      subscribed.add(ch);
      const since = this.cursors.get(ch);
      const cmd: Record<string, unknown> = { method: 'subscribe', channel: ch };
      if (since) cmd.since = since;
      if (raw) cmd.format = 'raw';
      send(cmd, (reply) => {
        const r = reply.result;
        if (!r || !live() || !subscribed.has(ch)) return;
        // Counting starts here: the frames of this channel follow the result.
        if (r.format === 'raw') { const p = decodeCursor(r.cursor)?.[0]; if (p) positions.set(ch, p); }
        if (r.recovered === false) this.doReset(ch, r.cursor, 'websocket');
        else if (!this.cursors.has(ch) || this.cursors.get(ch) === since) this.storeCursor([ch], r.cursor);
      }).then(() => {}, (e: HeraldError) => {
        if (!live()) return;
        subscribed.delete(ch);
        if (e.code !== 'disconnected' && e.code !== 'unsubscribed') this.emit('error', e);
        if (e.code === 'unavailable') fail('websocket: broker unavailable');
      });
    };
    const update = () => {
      if (!opened || !live()) return;
      for (const ch of this.active()) if (!subscribed.has(ch)) sub(ch);
      for (const ch of [...subscribed]) {
        if (!this.subs.has(ch)) { subscribed.delete(ch); positions.delete(ch); send({ method: 'unsubscribe', channel: ch }).catch(() => {}); }
      }
    };
    ws.onopen = () => {
      if (!live()) return;
      clearTimeout(openTimer);
      opened = true;
      lastRx = Date.now();
      onOpen();
      update();
      const { wsPingIntervalMs: ping, wsPongTimeoutMs: pong } = this.options;
      let pinged = false;
      beat = setInterval(() => {
        if (!live()) { clearInterval(beat); return; }
        const idle = Date.now() - lastRx;
        if (idle >= ping + pong) { try { ws.close(4001, 'no pong'); } catch { /* */ } fail('websocket: heartbeat lost'); return; }
        if (idle >= ping && !pinged) { pinged = true; send({ method: 'ping' }).catch(() => {}); }
        if (idle < ping) pinged = false;
      }, Math.max(50, Math.min(1000, ping / 4)));
    };
    ws.onmessage = (e: any) => {
      if (!live()) return;
      lastRx = Date.now();
      if (typeof e.data !== 'string') {
        // A raw message: its channel's next offset.
        const p = current === null ? undefined : positions.get(current);
        if (!p || !subscribed.has(current!)) return;
        const bytes = new Uint8Array(e.data);
        let data: unknown;
        try { data = JSON.parse(dec.decode(bytes)); } catch { return; }
        p.offset += 1;
        const n = bytes.length;
        this.deliver({ channel: current, offset: p.offset, data }, encodeCompact(p), 'websocket', n + (n < 126 ? 2 : n < 65536 ? 4 : 10));
        return;
      }
      const text = e.data as string;
      let msg: any;
      try { msg = JSON.parse(text); } catch { return; }
      if (typeof msg.channel === 'string' && !('id' in msg)) {
        current = msg.channel;
        const p = msg.cursor ? decodeCursor(msg.cursor)?.[0] : undefined;
        if (p) positions.set(msg.channel, p);
      } else if (msg.push) {
        const bytes = byteLength(text);
        this.deliver(msg.push, msg.push.cursor, 'websocket', bytes + (bytes < 126 ? 2 : bytes < 65536 ? 4 : 10));
      } else if (msg.reset) {
        const p = decodeCursor(msg.reset.cursor)?.[0];
        if (p && positions.has(msg.reset.channel)) positions.set(msg.reset.channel, p);
        this.doReset(msg.reset.channel, msg.reset.cursor, 'websocket');
      } else if ('id' in msg) {
        const p = pending.get(msg.id);
        if (!p) return;
        pending.delete(msg.id);
        try { p.sync?.(msg); } catch (err) { this.emit('error', err); }
        if (msg.error) p.reject(new HeraldError(msg.error.code, msg.error.message));
        else p.resolve(msg.result);
      }
    };
    ws.onerror = () => { /* onclose follows */ };
    ws.onclose = (e: any) => {
      if (!live()) return;
      const code = e?.code ?? 1006;
      const permanent = code >= 4100 && code <= 4199;
      if (permanent) this.emit('error', new HeraldError(code === 4101 ? 'unauthorized' : 'refused', `websocket closed ${code} ${e?.reason ?? ''}`));
      fail(`websocket: closed ${code}${e?.reason ? ' ' + e.reason : ''}`, permanent);
    };
    return {
      name: 'websocket',
      close: () => { clearTimeout(openTimer); clearInterval(beat); failAll('closed'); try { ws.close(1000); } catch { /* */ } },
      update,
      send: (cmd) => (opened ? send(cmd) : Promise.reject(new HeraldError('disconnected', 'not connected'))),
    };
  }

  // ---- Server-Sent Events (fetch + stream parser, so that heartbeats are visible)

  private channelQuery(channels: string[]): URLSearchParams {
    const q = new URLSearchParams();
    for (const c of channels) q.append('channel', c);
    for (const s of this.sinceFor(channels)) q.append('since', s);
    if (this.options.format === 'raw') q.set('format', 'raw');
    return q;
  }

  private openSse(gen: number, onOpen: () => void, onFail: (r: string, permanent?: boolean) => void): Conn {
    const ctl = new AbortController();
    const live = () => gen === this.generation && !ctl.signal.aborted;
    let watchdog: any = null;
    let lastRx = Date.now();
    let opened = false;
    const channels = this.active();
    const fail = (why: string, permanent = false) => { clearInterval(watchdog); ctl.abort(); onFail(why, permanent); };
    const conn: Conn = {
      name: 'sse',
      close: () => { clearInterval(watchdog); ctl.abort(); },
      // The channel set is fixed per stream: reopen on the same transport, from the cursors.
      update: () => { if (live()) this.reopen(); },
    };
    if (channels.length === 0) {
      // Nothing to stream: connected, idle until a subscribe reopens.
      setTimeout(() => { if (live()) onOpen(); }, 0);
      return conn;
    }
    const url = `${this.abs(this.options.endpoints.sse)}?${this.channelQuery(channels)}`;
    const openTimer = setTimeout(() => { if (live() && !opened) fail('sse: no bytes in time (buffering proxy?)'); }, this.options.connectTimeoutMs);
    (async () => {
      const headers: Record<string, string> = { Accept: 'text/event-stream', ...this.options.headers };
      if (this.auth) headers.Authorization = this.auth;
      const res = await this.fetchFn(url, { headers, cache: 'no-store', signal: ctl.signal });
      if (res.status === 401 || res.status === 403) {
        clearTimeout(openTimer);
        await this.refusal(res, 'sse', (why, permanent) => { if (live()) fail(why, permanent); });
        return;
      }
      if (!res.ok || !res.body || !/text\/event-stream/.test(res.headers.get('content-type') ?? '')) {
        clearTimeout(openTimer);
        try { await res.body?.cancel(); } catch { /* */ }
        fail(`sse: HTTP ${res.status}`);
        return;
      }
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      const hb = this.options.sseHeartbeatMs;
      watchdog = setInterval(() => { if (live() && Date.now() - lastRx > 2 * hb) fail('sse: heartbeat lost'); }, Math.max(100, Math.min(1000, hb / 4)));
      for (;;) {
        const { value, done } = await reader.read();
        if (!live()) return;
        if (done) { fail('sse: stream ended'); return; }
        lastRx = Date.now();
        buf += dec.decode(value, { stream: true });
        let i: number;
        while ((i = buf.search(/\r\n\r\n|\n\n|\r\r/)) >= 0) {
          const block = buf.slice(0, i);
          const sepLen = buf.startsWith('\r\n\r\n', i) ? 4 : 2;
          buf = buf.slice(i + sepLen);
          if (!opened) { opened = true; clearTimeout(openTimer); onOpen(); }
          if (/^event: ?token_expired$/m.test(block)) {
            // Resume from this event's id with a fresh token.
            const id = /^id: ?(.*)$/m.exec(block)?.[1];
            if (id) this.storeCursor(channels, id);
            fail('sse: token expired');
            return;
          }
          this.sseBlock(block, channels, byteLength(block) + sepLen);
          if (!live()) return;
        }
      }
    })().catch((e) => { clearTimeout(openTimer); if (live()) fail(`sse: ${e?.message ?? e}`); });
    return conn;
  }

  private sseBlock(block: string, channels: string[], bytes: number): void {
    let id: string | undefined, event: string | undefined, data = '', hasData = false;
    for (const line of block.split(/\r\n|\n|\r/)) {
      if (!line || line[0] === ':') continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? '' : line.slice(c + 1);
      if (value[0] === ' ') value = value.slice(1);
      if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'data') { data += (hasData ? '\n' : '') + value; hasData = true; }
    }
    if (!hasData) {
      if (id) this.storeCursor(channels, id);
      return;
    }
    if (event !== 'reset' && this.options.format === 'raw') {
      // Raw: the data alone (after its channel's line on a stream of several channels);
      // the offset is the id's position for the channel.
      if (!id) return;
      let ch = channels[0], text = data;
      if (channels.length > 1) { const nl = data.indexOf('\n'); ch = data.slice(0, nl); text = data.slice(nl + 1); }
      const p = positionOf(id, ch);
      let value: unknown;
      try { value = JSON.parse(text); } catch { return; }
      if (!p) return;
      const m: any = { channel: ch, offset: p.offset, data: value };
      if (event !== undefined) m.event = event;
      this.deliver(m, id, 'sse', bytes, channels);
      return;
    }
    let obj: any;
    try { obj = JSON.parse(data); } catch { return; }
    if (event === 'reset') {
      const cur = obj.cursor ?? id;
      for (const ch of obj.channels ?? []) this.doReset(ch, cur, 'sse', channels);
      return;
    }
    if (id) this.deliver(obj, id, 'sse', bytes, channels);
  }

  // ---- long polling

  private openPoll(gen: number, onOpen: () => void, onFail: (r: string, permanent?: boolean) => void): Conn {
    let ctl = new AbortController();
    let opened = false;
    let changed = false;
    const live = () => gen === this.generation;
    const loop = async () => {
      for (let first = true; live(); first = false) {
        const channels = this.active();
        if (channels.length === 0) {
          if (!opened) { opened = true; onOpen(); }
          await new Promise<void>((r) => { const t = setInterval(() => { if (!live() || this.active().length) { clearInterval(t); r(); } }, 100); });
          continue;
        }
        const q = this.channelQuery(channels);
        // The first poll answers at once (it establishes the transport and the cursor).
        const hold = first || changed ? 0 : this.options.pollTimeoutSec;
        changed = false;
        q.set('timeout', String(hold));
        ctl = new AbortController();
        const limit = hold * 1000 + (first ? this.options.connectTimeoutMs : 10000);
        const t = setTimeout(() => ctl.abort(), limit);
        let res: Response, text: string;
        try {
          const headers: Record<string, string> = { ...this.options.headers };
          if (this.auth) headers.Authorization = this.auth;
          res = await this.fetchFn(`${this.abs(this.options.endpoints.poll)}?${q}`, { headers, cache: 'no-store', signal: ctl.signal });
          if (res.status === 401 || res.status === 403) {
            clearTimeout(t);
            if (live()) await this.refusal(res, 'poll', onFail);
            return;
          }
          text = await res.text();
        } catch (e: any) {
          clearTimeout(t);
          if (!live()) return;
          if (changed) continue;  // aborted to change the channel set
          onFail(`poll: ${ctl.signal.aborted ? 'no reply in time' : e?.message ?? e}`);
          return;
        }
        clearTimeout(t);
        if (!live()) return;
        if (!res.ok) { onFail(`poll: HTTP ${res.status}`); return; }
        let r: any;
        try { r = this.options.format === 'raw' ? rawPollReply(text, channels) : JSON.parse(text); } catch { onFail('poll: bad reply'); return; }
        if (!opened) { opened = true; onOpen(); }
        const resetSet = new Set<string>(r.reset ?? []);
        for (const ch of resetSet) this.doReset(ch, r.cursor, 'poll', channels);
        const msgs: any[] = r.messages ?? [];
        const share = msgs.length ? Math.round(byteLength(text) / msgs.length) : 0;
        // A raw reply gives each message its own (derived) cursor; a JSON one the reply's.
        for (const m of msgs) { if (!live()) return; this.deliver(m, m.cursor ?? r.cursor, 'poll', share, m.cursor ? [m.channel] : channels); }
        if (!live()) return;
        this.storeCursor(channels, r.cursor);
      }
    };
    loop().catch((e) => { if (live()) onFail(`poll: ${e?.message ?? e}`); });
    return {
      name: 'poll',
      close: () => ctl.abort(),
      update: () => { changed = true; ctl.abort(); },
    };
  }
}

/**
 * A raw long-poll body as the JSON reply's fields: first line
 * "<cursor>[ reset <channel>…][ end <channel>…]", then one line per message ("<data>", or
 * "<channel> <data>" for several channels). A channel's messages end at the cursor's
 * position for it: offsets are counted back. A channel named after "end" has its stream's
 * end as its last line (event "end").
 */
function rawPollReply(text: string, channels: string[]): { cursor: string; reset: string[]; messages: any[] } {
  const lines = text.split('\n');
  if (lines.pop() !== '') throw new Error('truncated');
  const [cursor, ...words] = (lines.shift() ?? '').split(' ');
  const reset: string[] = [];
  const ended: string[] = [];
  let into: string[] | null = null;
  for (const w of words) {
    if (w === 'reset') into = reset;
    else if (w === 'end') into = ended;
    else if (into) into.push(w);
    else throw new Error('bad head');
  }
  if (!cursor) throw new Error('bad head');
  const messages = lines.map((l): { channel: string; data: unknown; offset: number; cursor?: string; event?: string } => {
    if (channels.length === 1) return { channel: channels[0], data: JSON.parse(l), offset: 0 };
    const sp = l.indexOf(' ');
    return { channel: l.slice(0, sp), data: JSON.parse(l.slice(sp + 1)), offset: 0 };
  });
  const next = new Map<string, Position>();
  for (let i = messages.length - 1; i >= 0; i--) {
    const ch = messages[i].channel;
    const p = next.get(ch) ?? positionOf(cursor, ch);
    if (!p) throw new Error(`the cursor does not cover ${ch}`);
    messages[i].offset = p.offset;
    messages[i].cursor = encodeCompact(p);
    next.set(ch, { ...p, offset: p.offset - 1 });
  }
  for (const ch of ended) {
    for (let i = messages.length - 1; i >= 0; i--) {
      if (messages[i].channel === ch) {
        messages[i].event = 'end';
        break;
      }
    }
  }
  return { cursor, reset, messages };
}

export default Herald;
