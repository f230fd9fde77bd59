// The connection's life: rounds over the configured transports (an attempt that cannot
// be established falls back to the next transport at once), capped exponential backoff
// with full jitter after a drop, credentials before each attempt (a token, and for a
// WebSocket a single-use ticket), and the generation that makes stale callbacks of
// closed connections harmless.

import { type ConnectionState, type HeraldOptions, type TransportName, HeraldError } from './types.js';
import { type Conn, type Host, type OnFail, type ResolvedOptions, errorText } from './transport.js';
import { openWs } from './ws.js';
import { openSse } from './sse.js';
import { openPoll } from './poll.js';

export interface ConnectorClient {
  readonly state: ConnectionState;
  setState(state: ConnectionState, transport: TransportName | null, reason?: string): void;
  error(e: Error): void;
  http(method: string, path: string, body?: unknown, auth?: string): Promise<unknown>;
}

export class Connector {
  /** The active connection, if any. */
  conn: Conn | null = null;
  /** Bumps on every connect/close, so stale callbacks are ignored. */
  generation = 0;
  /** `Authorization` value of the current attempt (from `token`), if any. */
  auth: string | undefined;
  private attempt = 0;          // failed rounds in a row (backoff exponent)
  private index = 0;            // transport being tried in the current round
  private timer: ReturnType<typeof setTimeout> | undefined;
  private dropCurrent: (() => void) | null = null;

  constructor(
    private readonly options: ResolvedOptions & { token?: HeraldOptions['token'] },
    private readonly client: ConnectorClient,
    private readonly host: () => Host,
  ) {}

  /** Starts a round from the first transport, the backoff reset. */
  start(): void {
    this.attempt = 0;
    this.startRound();
  }

  /** Closes the connection for good. */
  close(): void {
    this.generation++;
    clearTimeout(this.timer);
    const c = this.conn;
    this.conn = null;
    this.dropCurrent = null;
    c?.close();
  }

  /** Fails the current connection as a network drop would. */
  drop(): void {
    this.dropCurrent?.();
  }

  /** Replaces the current connection by a new one on the same transport (channel set changed). */
  reopen(): void {
    const c = this.conn;
    this.generation++;
    this.conn = null;
    try { c?.close(); } catch { /* */ }
    this.tryTransport(true);
  }

  async resolveToken(): Promise<string> {
    const t = this.options.token;
    return typeof t === 'function' ? await t() : String(t);
  }

  async authHeader(): Promise<string | undefined> {
    return this.options.token ? `Bearer ${await this.resolveToken()}` : undefined;
  }

  /** A refused HTTP connection attempt: permanent unless the token merely expired. */
  async refusal(res: Response, what: string, onFail: OnFail): Promise<void> {
    let code = '', message = '';
    try {
      const j = JSON.parse(await res.text()) as { error?: { code?: string; message?: string } };
      code = j?.error?.code ?? ''; message = j?.error?.message ?? '';
    } catch { /* not JSON */ }
    const permanent = (res.status === 401 || res.status === 403) && code !== 'token_expired';
    if (permanent) this.client.error(new HeraldError(code || 'http_error', message || `HTTP ${res.status}`, res.status));
    onFail(`${what}: HTTP ${res.status}${code ? ' ' + code : ''}`, permanent);
  }

  private startRound(): void {
    this.index = 0;
    this.tryTransport();
  }

  private tryTransport(reopening = false): void {
    const gen = ++this.generation;
    const name = this.options.transports[this.index];
    const client = this.client;
    // A reopen on a working transport (the channel set changed) is no new attempt.
    let established = reopening && client.state === 'connected';
    if (!established) client.setState('connecting', name);
    const onOpen = () => {
      if (gen !== this.generation) return;
      established = true;
      this.attempt = 0;
      client.setState('connected', name);
    };
    const onFail: OnFail = (reason, permanent = false) => {
      if (gen !== this.generation) return;
      this.generation++;
      const c = this.conn;
      this.conn = null;
      this.dropCurrent = null;
      try { c?.close(); } catch { /* already closed */ }
      if (permanent) { client.setState('closed', null, reason); return; }
      if (!established && this.index + 1 < this.options.transports.length) {
        // This transport could not be established: fall back to the next one at once.
        this.index++;
        client.setState('disconnected', name, reason);
        this.tryTransport();
        return;
      }
      // A live connection dropped, or every transport failed: back off, then start over.
      const cap = Math.min(this.options.backoffMaxMs, this.options.backoffBaseMs * 2 ** Math.min(this.attempt, 20));
      this.attempt++;
      const delay = Math.random() * cap;
      client.setState('disconnected', name, reason);
      clearTimeout(this.timer);
      const g2 = this.generation;
      this.timer = setTimeout(() => { if (g2 === this.generation) this.startRound(); }, delay);
    };
    this.dropCurrent = () => onFail(`${name}: dropped by the application`);
    const open = (ticket?: string) => {
      if (gen !== this.generation) return;
      const host = this.host();
      try {
        if (name === 'websocket') this.conn = openWs(host, gen, onOpen, onFail, ticket);
        else if (name === 'sse') this.conn = openSse(host, gen, onOpen, onFail);
        else this.conn = openPoll(host, gen, onOpen, onFail);
      } catch (e) {
        onFail(`${name}: ${errorText(e)}`);
      }
    };
    if (!this.options.token) { this.auth = undefined; open(); return; }
    // Credentials first: the token (possibly refreshed), and for a WebSocket a ticket.
    (async () => {
      this.auth = `Bearer ${await this.resolveToken()}`;
      if (name !== 'websocket') return undefined;
      const r = await client.http('POST', this.options.endpoints.ticket, undefined, this.auth) as { ticket?: unknown };
      return String(r?.ticket);
    })().then(open, (e: unknown) => {
      if (gen !== this.generation) return;
      const refused = e instanceof HeraldError && e.status === 401 && e.code !== 'token_expired';
      if (refused) client.error(e);
      onFail(`${name}: credentials: ${errorText(e)}`, refused);
    });
  }
}
