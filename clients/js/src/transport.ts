// What a transport (ws.ts, sse.ts, poll.ts) needs from the client, and what it gives
// back: the connection interface. The client (herald.ts) owns subscriptions, cursors,
// dedupe and the rounds of fallback and backoff; a transport moves bytes and hands every
// element it reads to the host.

import type { Endpoints, EndInfo, TransportName, WebSocketCtor, WireFormat } from './types.js';
import type { WireMessage, WirePresence } from './wire.js';

export interface ResolvedOptions {
  url: string;
  transports: TransportName[];
  endpoints: Endpoints;
  format: WireFormat;
  connectTimeoutMs: number;
  sseHeartbeatMs: number;
  wsPingIntervalMs: number;
  wsPongTimeoutMs: number;
  pollTimeoutSec: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  headers: Record<string, string>;
}

/** The active connection on one transport. */
export interface Conn {
  name: TransportName;
  close(): void;
  /** The channel set changed (subscribe/unsubscribe/end while connected). */
  update(): void;
  /** WebSocket only: a command and its result. */
  send?(cmd: Record<string, unknown>): Promise<unknown>;
}

export type OnFail = (reason: string, permanent?: boolean) => void;

export interface Host {
  readonly options: ResolvedOptions;
  readonly fetchFn: typeof fetch;
  readonly WS: WebSocketCtor | undefined;
  /** `Authorization` of this connection attempt, if a token is set. */
  readonly auth: string | undefined;
  /** Whether callbacks of connection `gen` still count. */
  live(gen: number): boolean;
  /** The channels the transports carry: subscribed, positioned, not ended. */
  active(): string[];
  isSubscribed(channel: string): boolean;
  isEnded(channel: string): boolean;
  /** Whether some subscription listens for signals (a raw long poll carries none). */
  wantsSignals(): boolean;
  cursor(channel: string): string | undefined;
  storeCursor(channels: string[], cursor: string): void;
  sinceFor(channels: string[]): string[];
  abs(path: string, ws?: boolean): string;
  deliver(m: WireMessage, cursor: string, transport: TransportName, bytes: number, cursorChannels?: string[]): void;
  reset(channel: string, cursor: string, transport: TransportName, cursorChannels?: string[]): void;
  ephemeral(m: WireMessage, transport: TransportName): void;
  presenceEvent(kind: 'join' | 'leave', body: WirePresence, transport: TransportName): void;
  /** The channel's stream ended; `end` null when only its position said so (204, "ended":true). */
  ended(channel: string, end: Omit<EndInfo, 'channel'> | null, transport: TransportName): void;
  error(e: unknown): void;
  /** The transport holds `channel` now (after every connection that carries it). */
  subscribed(channel: string, transport: TransportName): void;
  /** The backend subscribed this connection to `channel` (users API), from `cursor` if given. */
  serverSubscribed(channel: string, cursor: string | undefined, transport: TransportName): void;
  /** The backend took `channel` off this connection (users API): the client leaves it. */
  serverUnsubscribed(channel: string, transport: TransportName): void;
  /** Replaces the connection by a new one on the same transport (the channel set changed). */
  reopen(): void;
  /** A refused HTTP connection attempt: permanent unless the token merely expired. */
  refusal(res: Response, what: string, onFail: OnFail): Promise<void>;
}

/** Builds the query of /sse and /poll for `channels` from the host's cursors. */
export function channelQuery(host: Host, channels: string[], raw: boolean): URLSearchParams {
  const q = new URLSearchParams();
  for (const c of channels) q.append('channel', c);
  for (const s of host.sinceFor(channels)) q.append('since', s);
  if (raw) q.set('format', 'raw');
  return q;
}

/** Headers of a fetch-based transport request. */
export function requestHeaders(host: Host, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { ...extra, ...host.options.headers };
  if (host.auth) h.Authorization = host.auth;
  return h;
}

export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
