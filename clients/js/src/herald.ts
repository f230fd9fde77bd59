// herald browser/Node client: one API over WebSocket, Server-Sent Events and long
// polling, with transport fallback, capped exponential backoff with full jitter,
// heartbeats watched on every transport, and resume from the last cursor of each
// channel on whatever transport comes next. No runtime dependencies.
//
// Wire formats: docs/protocol.md of the herald repository. By default the client asks
// for the raw formats (format=raw: the data alone, positions carried by counting) and
// derives each message's offset and cursor itself (cursor.ts). The transports are
// ws.ts, sse.ts and poll.ts behind transport.ts's Host, started, replaced and backed off
// by connector.ts; streams (stream.ts) and presence (presence.ts) are built on subscribe().

import {
  type EndInfo, type Handlers, type HeraldOptions, type HistoryResult, type Message, type PresenceEvent,
  type PresenceInfo, type PublishOptions, type PublishResult, type ResetInfo, type Signal, type StateChange,
  type StopResult, type SubscribedInfo, type UnsubscribedInfo, type ConnectionState, type TransportName, type WebSocketCtor, HeraldError,
} from './types.js';
import { type Conn, type Host, type ResolvedOptions, errorText } from './transport.js';
import { Connector } from './connector.js';
import { CursorBook } from './cursor.js';
import type { WireMessage, WirePresence } from './wire.js';
import { type StreamOptions, AnswerStream } from './stream.js';
import { PresenceTracker } from './presence.js';

export * from './types.js';
export { AnswerStream, type StreamOptions, type StreamDelta } from './stream.js';
export { PresenceTracker, type Member } from './presence.js';

type Listener = (arg: never) => void;
interface EventMap {
  message: Message; reset: ResetInfo; state: StateChange; error: Error;
  signal: Signal; join: PresenceEvent; leave: PresenceEvent; end: EndInfo; subscribed: SubscribedInfo;
  unsubscribed: UnsubscribedInfo;
}

const DEFAULT_ORDER: TransportName[] = ['websocket', 'sse', 'poll'];

export class Herald {
  readonly options: ResolvedOptions & { token?: HeraldOptions['token'] };
  /** Current state and transport. */
  state: ConnectionState = 'idle';
  transport: TransportName | null = null;

  private subs = new Map<string, Set<Handlers<never>>>();
  /** Subscribed channels whose starting position is still being read (see position()). */
  private positioning = new Set<string>();
  /** Subscribed channels whose stream ended: no transport carries them any more. */
  private endedChannels = new Map<string, EndInfo>();
  /** Channels the current connection holds (announced by 'subscribed'). */
  private held = new Set<string>();
  /** Channels the backend subscribed (users API) whose first 'subscribed' is still due. */
  private byServer = new Set<string>();
  /** Per channel: the newest cursor covering it (any transport), in receipt order. */
  private cursors = new CursorBook();
  /** Per channel: the last offset delivered (dedupe across reconnects and transports). */
  private lastOffset = new Map<string, number>();
  private listeners = new Map<string, Set<Listener>>();
  private readonly host: Host;
  private readonly connector: Connector;

  constructor(opts: HeraldOptions = {}) {
    const loc = (globalThis as { location?: { origin: string } }).location;
    const url = (opts.url ?? (loc ? loc.origin : 'http://127.0.0.1:8080')).replace(/\/+$/, '');
    this.options = {
      url,
      transports: opts.transports?.length ? [...opts.transports] : [...DEFAULT_ORDER],
      endpoints: {
        ws: '/ws', sse: '/sse', poll: '/poll', publish: '/publish', history: '/api/history', ticket: '/ticket',
        stop: '/stop', presence: '/api/presence', ...opts.endpoints,
      },
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
    const WS = (opts.WebSocket ?? (globalThis as { WebSocket?: unknown }).WebSocket) as WebSocketCtor | undefined;
    const fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
    const self = this;  // for the getters below
    this.host = this.makeHost(WS, fetchFn);
    this.connector = new Connector(this.options, {
      get state() { return self.state; },
      setState: (st, t, r) => this.setState(st, t, r),
      error: (e) => this.emit('error', e),
      http: (m, path, body, auth) => this.http(m, path, body, auth),
    }, () => this.host);
  }

  private get conn(): Conn | null {
    return this.connector.conn;
  }

  // ------------------------------------------------------------------ events

  /**
   * Events: 'message', 'reset', 'state', 'error', and for every subscribed channel
   * 'signal' (ephemeral messages), 'join', 'leave', 'end' (a stream's end), 'subscribed'
   * (`byServer` when the backend added the channel) and 'unsubscribed' (the backend took it off).
   */
  on<K extends keyof EventMap>(event: K, fn: (arg: EventMap[K]) => void): () => void {
    let s = this.listeners.get(event);
    if (!s) this.listeners.set(event, (s = new Set()));
    s.add(fn as Listener);
    return () => this.off(event, fn);
  }

  off<K extends keyof EventMap>(event: K, fn: (arg: EventMap[K]) => void): void {
    this.listeners.get(event)?.delete(fn as Listener);
  }

  private emit<K extends keyof EventMap>(event: K, arg: EventMap[K]): void {
    for (const fn of [...(this.listeners.get(event) ?? [])]) {
      try { (fn as (a: EventMap[K]) => void)(arg); } catch (e) { if (event !== 'error') this.emit('error', asError(e)); }
    }
  }

  /** Calls `pick(handlers)` of every handler set of `channel`, then the client's `event` listeners. */
  private dispatch<K extends 'message' | 'reset' | 'signal' | 'join' | 'leave' | 'end' | 'subscribed' | 'unsubscribed'>(channel: string, event: K, arg: EventMap[K]): void {
    for (const h of [...(this.subs.get(channel) ?? [])]) {
      const fn = (h as Handlers<unknown>)[event] as ((a: EventMap[K]) => void) | undefined;
      try { fn?.(arg); } catch (e) { this.emit('error', asError(e)); }
    }
    this.emit(event, arg);
  }

  private setState(state: ConnectionState, transport: TransportName | null, reason?: string): void {
    if (state !== 'connected') this.held.clear();
    if (this.state === state && this.transport === transport) return;
    this.state = state;
    this.transport = transport;
    this.emit('state', reason ? { state, transport, reason } : { state, transport });
  }

  // ------------------------------------------------------------------ public API

  /** Starts (or restarts) connecting; resolves once connected on some transport. */
  connect(): Promise<void> {
    if (this.state === 'idle' || this.state === 'closed') this.connector.start();
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
    this.connector.close();
    this.setState('closed', null, 'closed by the client');
  }

  /**
   * Drops the current connection as a network failure would (for demos and tests): the
   * client backs off, reconnects and resumes from its cursors.
   */
  drop(): void {
    this.connector.drop();
  }

  /**
   * Subscribes to a channel. `since` (a cursor, or 'earliest': the oldest message history
   * holds) resumes from there; without it, from the last cursor this client saw for the
   * channel, else from "now": the moment of this call, not the moment a transport gets
   * through (see position()). Returns an unsubscribe function.
   */
  subscribe<T = unknown>(channel: string, handlers: Handlers<T> = {}, since?: string): () => void {
    if (since) this.cursors.store([channel], since);
    let s = this.subs.get(channel);
    const isNew = !s;
    if (!s) this.subs.set(channel, (s = new Set()));
    s.add(handlers as Handlers<never>);
    // Held already: a late `subscribed` handler learns it at once.
    const t = this.transport;
    if (handlers.subscribed && this.held.has(channel) && t) queueMicrotask(() => handlers.subscribed?.({ channel, transport: t }));
    if (isNew && !this.cursors.has(channel)) this.position(channel);
    else if (isNew) this.conn?.update();
    // A raw long poll carries no signals: the next poll asks for JSON.
    else if (wantsSignals(handlers as Handlers<unknown>) && this.conn?.name === 'poll') this.conn.update();
    return () => {
      const cur = this.subs.get(channel);
      if (!cur) return;
      cur.delete(handlers as Handlers<never>);
      if (cur.size === 0) this.unsubscribe(channel);
    };
  }

  /** Leaves a channel (all its handlers). */
  unsubscribe(channel: string): void {
    if (!this.subs.delete(channel)) return;
    this.held.delete(channel);
    this.byServer.delete(channel);
    this.endedChannels.delete(channel);
    this.conn?.update();
  }

  /** Channels subscribed. */
  channels(): string[] {
    return [...this.subs.keys()];
  }

  /** The newest cursor this client holds for a channel. */
  cursor(channel: string): string | undefined {
    return this.cursors.get(channel);
  }

  /** The end of a subscribed channel's stream, once seen. */
  ended(channel: string): EndInfo | undefined {
    return this.endedChannels.get(channel);
  }

  /**
   * Follows a stream (an AI answer relayed by `POST /api/stream`): the text as it grows
   * and the end state, from the first message history holds; resumes after a drop on
   * any transport without repeating or losing a character. See stream.ts.
   */
  stream(channel: string, opts: StreamOptions = {}): AnswerStream {
    return new AnswerStream(this, channel, opts);
  }

  /** Who is in a channel, kept current by join and leave (presence.ts). */
  watchPresence(channel: string): PresenceTracker {
    return new PresenceTracker(this, channel);
  }

  /**
   * Publishes (where the channel's namespace allows client publishing): over the
   * WebSocket when that is the transport, else POST /publish. The third argument is an
   * event name or PublishOptions (`ephemeral: true`: live only, `{ephemeral: true}` back).
   */
  publish(channel: string, data: unknown, event?: string): Promise<PublishResult>;
  publish(channel: string, data: unknown, opts: PublishOptions & { ephemeral: true }): Promise<{ ephemeral: true }>;
  publish(channel: string, data: unknown, opts?: PublishOptions): Promise<PublishResult | { ephemeral: true }>;
  async publish(channel: string, data: unknown, opts?: string | PublishOptions): Promise<PublishResult | { ephemeral: true }> {
    const o: PublishOptions = typeof opts === 'string' ? { event: opts } : opts ?? {};
    const body: Record<string, unknown> = { channel, data };
    if (o.event !== undefined) body.event = o.event;
    if (o.ephemeral) body.ephemeral = true;
    if (o.expectedOffset !== undefined) body.expected_offset = o.expectedOffset;
    if (this.conn?.send) return await this.conn.send({ method: 'publish', ...body }) as PublishResult;
    return await this.http('POST', this.options.endpoints.publish, body, await this.connector.authHeader()) as PublishResult;
  }

  /**
   * Stops a stream (where the client may publish on the channel): WebSocket `stop` when
   * that is the transport, else POST /stop. herald answers the producer `aborted`.
   */
  async stop(channel: string, reason?: string): Promise<StopResult> {
    const body: Record<string, unknown> = { channel };
    if (reason !== undefined) body.reason = reason;
    if (this.conn?.send) return await this.conn.send({ method: 'stop', ...body }) as StopResult;
    return await this.http('POST', this.options.endpoints.stop, body, await this.connector.authHeader()) as StopResult;
  }

  /**
   * Who is subscribed to a channel (namespace `presence=true`): the WebSocket `presence`
   * command when that is the transport, else GET /api/presence (a server API: open only
   * when herald runs without --api-key; point `endpoints.presence` at your backend otherwise).
   */
  async presence(channel: string, opts: { limit?: number } = {}): Promise<PresenceInfo> {
    if (this.conn?.send) {
      const cmd: Record<string, unknown> = { method: 'presence', channel };
      if (opts.limit !== undefined) cmd.limit = opts.limit;
      return await this.conn.send(cmd) as PresenceInfo;
    }
    const q = new URLSearchParams({ channel });
    if (opts.limit !== undefined) q.set('limit', String(opts.limit));
    return await this.http('GET', `${this.options.endpoints.presence}?${q}`) as PresenceInfo;
  }

  /** Messages of a channel after `since` (default: the oldest kept), up to `limit`. */
  async history(channel: string, opts: { since?: string; limit?: number } = {}): Promise<HistoryResult> {
    if (this.conn?.send) {
      const cmd: Record<string, unknown> = { method: 'history', channel };
      if (opts.since) cmd.since = opts.since;
      if (opts.limit) cmd.limit = opts.limit;
      return await this.conn.send(cmd) as HistoryResult;
    }
    const q = new URLSearchParams({ channel });
    if (opts.since) q.set('since', opts.since);
    if (opts.limit) q.set('limit', String(opts.limit));
    return await this.http('GET', `${this.options.endpoints.history}?${q}`) as HistoryResult;
  }

  // ------------------------------------------------------------------ internals

  /** The channels the transports carry: subscribed, positioned, not ended. */
  private active(): string[] {
    return [...this.subs.keys()].filter((c) => !this.positioning.has(c) && !this.endedChannels.has(c));
  }

  private wantsSignals(): boolean {
    for (const ch of this.active()) for (const h of this.subs.get(ch) ?? []) if (wantsSignals(h as Handlers<unknown>)) return true;
    return ['signal', 'join', 'leave'].some((e) => (this.listeners.get(e)?.size ?? 0) > 0);
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
    this.connector.authHeader()
      .then((a) => this.http('GET', `${this.options.endpoints.poll}?${q}`, undefined, a))
      .then(
        (r) => {
          const cursor = (r as { cursor?: unknown } | undefined)?.cursor;
          if (typeof cursor === 'string' && !this.cursors.has(channel)) this.cursors.store([channel], cursor);
        },
        (e) => {
          // Refused credentials: the transports report them (and stop); not twice.
          if (e instanceof HeraldError && (e.status === 401 || e.status === 403)) return;
          this.emit('error', new HeraldError('position_unknown', `${channel}: could not read the starting position (${errorText(e)}); starting when connected`));
        },
      )
      .finally(() => {
        this.positioning.delete(channel);
        if (this.subs.has(channel)) this.conn?.update();
      });
  }

  private abs(p: string, ws = false): string {
    let u = /^[a-z]+:\/\//i.test(p) ? p : this.options.url + p;
    if (ws) u = u.replace(/^http/i, 'ws');
    return u;
  }

  private async http(method: string, p: string, body?: unknown, auth?: string): Promise<unknown> {
    const headers: Record<string, string> = { ...this.options.headers };
    if (auth) headers.Authorization = auth;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await this.host.fetchFn(this.abs(p), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    const text = await res.text();
    let json: { error?: { code?: string; message?: string } } | undefined;
    try { json = JSON.parse(text); } catch { json = undefined; }
    if (!res.ok) throw new HeraldError(json?.error?.code ?? 'http_error', json?.error?.message ?? `HTTP ${res.status}`, res.status);
    return json;
  }

  private deliver(raw: WireMessage, cursor: string, transport: TransportName, bytes: number, cursorChannels?: string[]): void {
    const ch = raw.channel;
    this.cursors.store(cursorChannels ?? [ch], cursor);
    const last = this.lastOffset.get(ch) ?? 0;
    if (!(raw.offset > last)) return;  // already delivered (replay overlap after a switch)
    this.lastOffset.set(ch, raw.offset);
    if (!this.subs.has(ch)) return;
    const m: Message = { channel: ch, offset: raw.offset, data: raw.data, cursor, transport, bytes, receivedAt: m0() };
    if (raw.time !== undefined) m.time = raw.time;
    if (raw.event !== undefined) m.event = raw.event;
    this.dispatch(ch, 'message', m);
    if (raw.event === 'end') {
      const d = (raw.data ?? {}) as { state?: EndInfo['state']; reason?: string | null };
      this.markEnded(ch, { state: d.state ?? null, reason: d.reason ?? null, offset: raw.offset, cursor, transport }, transport);
    }
  }

  private markEnded(channel: string, end: Omit<EndInfo, 'channel'> | null, transport: TransportName): void {
    if (!this.subs.has(channel) || this.endedChannels.has(channel)) return;
    const info: EndInfo = end ? { channel, ...end } : { channel, state: null, reason: null, transport };
    this.endedChannels.set(channel, info);
    this.dispatch(channel, 'end', info);
  }

  private doReset(channel: string, cursor: string, transport: TransportName, cursorChannels?: string[]): void {
    this.cursors.store(cursorChannels ?? [channel], cursor);
    this.lastOffset.delete(channel);
    this.dispatch(channel, 'reset', { channel, cursor, transport });
  }

  private ephemeral(raw: WireMessage, transport: TransportName): void {
    if (typeof raw?.channel !== 'string' || !this.subs.has(raw.channel)) return;
    const s: Signal = { channel: raw.channel, data: raw.data, transport, receivedAt: m0() };
    if (raw.event !== undefined) s.event = raw.event;
    if (raw.time !== undefined) s.time = raw.time;
    this.dispatch(raw.channel, 'signal', s);
  }

  private presenceEvent(kind: 'join' | 'leave', b: WirePresence, transport: TransportName): void {
    if (typeof b?.channel !== 'string' || !this.subs.has(b.channel)) return;
    this.dispatch(b.channel, kind, { channel: b.channel, user: b.user, client: b.client, clientTransport: b.transport, transport, receivedAt: m0() });
  }

  /**
   * The backend subscribed this client (`POST /api/subscribe`): the channel joins the
   * subscriptions (without handlers: the client's listeners get its messages) from the
   * cursor herald gave, and is carried on every later connection as the application's are.
   */
  private serverSubscribed(channel: string, cursor: string | undefined): void {
    if (cursor) this.cursors.store([channel], cursor);
    this.endedChannels.delete(channel);
    if (this.subs.has(channel)) return;
    this.subs.set(channel, new Set());
    // Announced ('subscribed', byServer) once a transport holds it: WebSocket at once,
    // SSE when the reopened stream does.
    this.byServer.add(channel);
  }

  /** The backend unsubscribed this client: the channel is left, not resubscribed on a reconnect. */
  private serverUnsubscribed(channel: string, transport: TransportName): void {
    if (!this.subs.has(channel)) return;
    this.dispatch(channel, 'unsubscribed', { channel, transport });
    this.subs.delete(channel);
    this.held.delete(channel);
    this.byServer.delete(channel);
    this.endedChannels.delete(channel);
    this.positioning.delete(channel);
  }

  private announce(channel: string, transport: TransportName): void {
    if (!this.subs.has(channel)) return;
    this.held.add(channel);
    const info: SubscribedInfo = { channel, transport };
    if (this.byServer.delete(channel)) info.byServer = true;
    this.dispatch(channel, 'subscribed', info);
  }

  private makeHost(WS: WebSocketCtor | undefined, fetchFn: typeof fetch): Host {
    const self = this;  // for the getter below
    return {
      options: this.options,
      fetchFn,
      WS,
      get auth() { return self.connector.auth; },
      live: (gen) => gen === this.connector.generation,
      active: () => this.active(),
      isSubscribed: (c) => this.subs.has(c),
      isEnded: (c) => this.endedChannels.has(c),
      wantsSignals: () => this.wantsSignals(),
      cursor: (c) => this.cursors.get(c),
      storeCursor: (cs, x) => this.cursors.store(cs, x),
      sinceFor: (cs) => this.cursors.since(cs),
      abs: (p, ws) => this.abs(p, ws),
      deliver: (m, x, t, b, cs) => this.deliver(m, x, t, b, cs),
      reset: (c, x, t, cs) => this.doReset(c, x, t, cs),
      ephemeral: (m, t) => this.ephemeral(m, t),
      presenceEvent: (k, b, t) => this.presenceEvent(k, b, t),
      ended: (c, e, t) => this.markEnded(c, e, t),
      error: (e) => this.emit('error', asError(e)),
      subscribed: (c, t) => this.announce(c, t),
      serverSubscribed: (c, x) => this.serverSubscribed(c, x),
      serverUnsubscribed: (c, t) => this.serverUnsubscribed(c, t),
      reopen: () => this.connector.reopen(),
      refusal: (res, what, onFail) => this.connector.refusal(res, what, onFail),
    };
  }

}

const m0 = (): number => Date.now();
const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));
const wantsSignals = (h: Handlers<unknown>): boolean => !!(h.signal || h.join || h.leave);

export default Herald;
