// client.watchPresence(channel): who is in a channel (namespace presence=true and
// join_leave=true, docs/presence.md), kept current: read with presence() each time a
// transport holds the channel, then changed by join and leave. Users are tokens' `sub`;
// anonymous connections are only counted (`anonymous`).

import type { Handlers, PresenceEvent, PresenceInfo } from './types.js';

/** What the tracker needs of the client (the Herald class). */
export interface PresenceClient {
  subscribe<T>(channel: string, handlers: Handlers<T>, since?: string): () => void;
  presence(channel: string, opts?: { limit?: number }): Promise<PresenceInfo>;
}

export interface Member {
  user: string;
  /** Local time the user was first seen here. */
  since: number;
}

type Events = { change: Member[]; join: PresenceEvent; leave: PresenceEvent; error: Error };

export class PresenceTracker {
  readonly channel: string;
  /** Present users by name. */
  readonly members = new Map<string, Member>();
  /** Anonymous connections at the last read (joins and leaves do not count them). */
  anonymous = 0;
  private readonly client: PresenceClient;
  private offSub: () => void;
  /** Events that came while a read was in flight, applied after it. */
  private queued: { kind: 'join' | 'leave'; e: PresenceEvent }[] | null = null;
  private listeners: { [K in keyof Events]: Set<(e: Events[K]) => void> } = { change: new Set(), join: new Set(), leave: new Set(), error: new Set() };

  constructor(client: PresenceClient, channel: string) {
    this.client = client;
    this.channel = channel;
    this.offSub = client.subscribe(channel, {
      join: (e) => this.event('join', e),
      leave: (e) => this.event('leave', e),
      // Events missed while disconnected are not replayed: read again each time a
      // transport holds the channel (then this client's own connection is listed too).
      subscribed: () => { void this.refresh(); },
    });
  }

  on<K extends keyof Events>(event: K, fn: (e: Events[K]) => void): () => void {
    this.listeners[event].add(fn);
    return () => { this.listeners[event].delete(fn); };
  }

  /** The users present, in the order they were seen. */
  list(): Member[] {
    return [...this.members.values()];
  }

  /** Reads presence again (done by itself at every connection). */
  async refresh(): Promise<void> {
    this.queued = [];
    try {
      const p = await this.client.presence(this.channel, { limit: 1000 });
      const users = new Set(p.clients.map((c) => c.user));
      for (const u of [...this.members.keys()]) if (!users.has(u)) this.members.delete(u);
      for (const u of users) if (!this.members.has(u)) this.members.set(u, { user: u, since: Date.now() });
      this.anonymous = p.anonymous;
    } catch (e) {
      this.emit('error', e instanceof Error ? e : new Error(String(e)));
    }
    const q = this.queued ?? [];
    this.queued = null;
    for (const { kind, e } of q) this.apply(kind, e);
    this.emit('change', this.list());
  }

  close(): void {
    this.offSub();
  }

  private event(kind: 'join' | 'leave', e: PresenceEvent): void {
    this.emit(kind, e);
    if (this.queued) { this.queued.push({ kind, e }); return; }
    this.apply(kind, e);
    this.emit('change', this.list());
  }

  private apply(kind: 'join' | 'leave', e: PresenceEvent): void {
    if (kind === 'join' && !this.members.has(e.user)) this.members.set(e.user, { user: e.user, since: Date.now() });
    else if (kind === 'leave') this.members.delete(e.user);
  }

  private emit<K extends keyof Events>(event: K, arg: Events[K]): void {
    for (const fn of [...this.listeners[event]]) {
      try { fn(arg); } catch { /* a listener's error is its own */ }
    }
  }
}
