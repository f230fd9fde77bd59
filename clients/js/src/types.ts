// The client's public types (re-exported by herald.ts).

export type TransportName = 'websocket' | 'sse' | 'poll';
export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closed';

/** A message as herald sends it, plus how it reached this client. */
export interface Message<T = unknown> {
  channel: string;
  offset: number;
  /** Server time at publication, unix milliseconds (format 'json', or a named message over WebSocket or polling). */
  time?: number;
  /** The publisher's event name, if any ('end' for a stream's end). */
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

/**
 * An ephemeral message (`"ephemeral": true` on a publish: typing indicators): live only,
 * no offset, no cursor; it never moves this client's position.
 */
export interface Signal<T = unknown> {
  channel: string;
  data: T;
  event?: string;
  time?: number;
  transport: TransportName;
  receivedAt: number;
}

/** A user's join or leave in a channel whose namespace has `join_leave=true`. */
export interface PresenceEvent {
  channel: string;
  /** The token's `sub`. */
  user: string;
  /** herald's id of the connection that made the change. */
  client: string;
  /** That connection's transport as herald names it. */
  clientTransport: 'ws' | 'sse' | 'poll';
  /** The transport that delivered the event to this client. */
  transport: TransportName;
  receivedAt: number;
}

/** `presence(channel)`: who is subscribed (users are tokens' `sub`; anonymous clients are only counted). */
export interface PresenceInfo {
  clients: { client: string; user: string; transport: 'ws' | 'sse' | 'poll' }[];
  users: number;
  connections: number;
  anonymous: number;
  truncated?: boolean;
}

export type EndState = 'completed' | 'aborted' | 'error';

/**
 * A stream's end (docs/streams.md): the channel's last message. `state` is null when the
 * client resumed at a position already past the end (herald answered 204 or
 * `"ended":true`) and so never saw the end message itself.
 */
export interface EndInfo {
  channel: string;
  state: EndState | null;
  reason: string | null;
  /** Offset and cursor of the end message, when it was seen. */
  offset?: number;
  cursor?: string;
  transport: TransportName;
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
  /** Ephemeral messages of the channel. */
  signal?: (s: Signal<T>) => void;
  join?: (e: PresenceEvent) => void;
  leave?: (e: PresenceEvent) => void;
  /** The channel's stream ended (after its end message went to `message`). */
  end?: (e: EndInfo) => void;
  /** A transport holds the channel (its subscription is registered and synced): after every (re)connection. */
  subscribed?: (s: SubscribedInfo) => void;
  /** The backend (`POST /api/unsubscribe`) took the channel off this client: it is no longer subscribed. */
  unsubscribed?: (u: UnsubscribedInfo) => void;
}

export interface SubscribedInfo {
  channel: string;
  transport: TransportName;
  /** The backend subscribed this client (`POST /api/subscribe`); the channel is in channels() now. */
  byServer?: true;
}

export interface UnsubscribedInfo {
  channel: string;
  transport: TransportName;
}

export interface Endpoints {
  ws: string;
  sse: string;
  poll: string;
  publish: string;
  history: string;
  ticket: string;
  /** POST /stop: a client's stop of a stream. */
  stop: string;
  /** GET /api/presence (a server API: open only without --api-key, or behind your backend). */
  presence: string;
}

export type WireFormat = 'raw' | 'json';

/** The parts of a WebSocket implementation the client uses (browser WebSocket, npm `ws`). */
export interface WebSocketLike {
  readyState: number;
  binaryType: string;
  onopen: ((e: unknown) => void) | null;
  onmessage: ((e: { data: unknown }) => void) | null;
  onerror: ((e: unknown) => void) | null;
  onclose: ((e: { code?: number; reason?: string }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketCtor = new (url: string) => WebSocketLike;

export interface HeraldOptions {
  /**
   * 'raw' (default): messages carry their data only and the client counts offsets and
   * builds cursors itself (fewer bytes per message; `time` is absent from most).
   * 'json': every message carries channel, offset, time, event and cursor.
   * Long polling switches to 'json' while a subscription listens for signals (join,
   * leave, ephemeral), which a raw poll reply does not carry.
   */
  format?: WireFormat;
  /** Base URL of herald (http: or https:); default: the page's origin. */
  url?: string;
  /** Transports tried in this order; default websocket, sse, poll. */
  transports?: TransportName[];
  /** Endpoint paths (or absolute URLs); defaults /ws, /sse, /poll, /publish, /api/history, /ticket, /stop, /api/presence. */
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
  WebSocket?: unknown;
  /** fetch implementation; default globalThis.fetch. */
  fetch?: typeof fetch;
}

export interface PublishOptions {
  event?: string;
  /** Live only (typing indicators): no offset, no history; the reply is `{ephemeral: true}`. */
  ephemeral?: boolean;
  /** Append only at this offset (piecewise producers), else `offset_mismatch`. */
  expectedOffset?: number;
}

export interface PublishResult {
  offset: number;
  cursor: string;
}

/** The reply to `stop()`: the end's position, state `aborted`. */
export interface StopResult {
  channel: string;
  offset: number;
  cursor: string;
  state: EndState;
}

export interface HistoryResult {
  messages: { channel: string; offset: number; time?: number; event?: string; data: unknown }[];
  cursor: string;
  recovered: boolean;
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
