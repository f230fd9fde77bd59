// client.stream(channel): a stream (docs/streams.md, an AI answer relayed by
// POST /api/stream) as text that grows and an end state. Built on subscribe(): the
// client's offsets and cursors make a resume after a drop exact on every transport (no
// character repeated or lost), and a stream's end (its `end` message, or a 204 /
// "ended":true at a position past it) takes the channel off the transports.

import type { EndInfo, Handlers, Message, ResetInfo, StopResult } from './types.js';
import { isObject } from './wire.js';

/** What stream() needs of the client (the Herald class). */
export interface StreamClient {
  subscribe<T>(channel: string, handlers: Handlers<T>, since?: string): () => void;
  cursor(channel: string): string | undefined;
  stop(channel: string, reason?: string): Promise<StopResult>;
}

export interface StreamDelta {
  /** The text this message added. */
  delta: string;
  /** The whole text so far. */
  text: string;
  message: Message;
}

export interface StreamOptions {
  /** Where to start: a cursor, or 'earliest' (default, unless this client already holds a cursor of the channel). */
  since?: string;
  /**
   * The text of one message's data. Default: a string as it is (text/plain ingest), else
   * OpenAI's `choices[0].delta.content`, Anthropic's `delta.text`, or a `delta` / `text`
   * string field; anything else adds nothing (as does OpenAI's final "[DONE]").
   */
  text?: (data: unknown) => string;
  onDelta?: (d: StreamDelta) => void;
  onEnd?: (e: EndInfo) => void;
  onReset?: (r: ResetInfo) => void;
}

type Events = { delta: StreamDelta; end: EndInfo; reset: ResetInfo };

export class AnswerStream {
  readonly channel: string;
  /** The text so far. */
  text = '';
  /** Messages of text received. */
  messages = 0;
  /** The end, once it came (then the stream is closed). */
  end: EndInfo | null = null;
  /** True when history could not cover a gap: `text` misses a part (a `reset` event said so). */
  gap = false;
  /** Resolves with the end. */
  readonly done: Promise<EndInfo>;
  private readonly client: StreamClient;
  private readonly extract: (data: unknown) => string;
  private sawObject = false;
  private off: (() => void) | null;
  private resolveDone!: (e: EndInfo) => void;
  private listeners: { [K in keyof Events]: Set<(e: Events[K]) => void> } = { delta: new Set(), end: new Set(), reset: new Set() };

  constructor(client: StreamClient, channel: string, opts: StreamOptions = {}) {
    this.client = client;
    this.channel = channel;
    this.extract = opts.text ?? ((d) => this.defaultText(d));
    this.done = new Promise((r) => { this.resolveDone = r; });
    if (opts.onDelta) this.on('delta', opts.onDelta);
    if (opts.onEnd) this.on('end', opts.onEnd);
    if (opts.onReset) this.on('reset', opts.onReset);
    const since = opts.since ?? (client.cursor(channel) ? undefined : 'earliest');
    this.off = client.subscribe(channel, {
      message: (m) => this.onMessage(m),
      reset: (r) => { this.gap = true; this.emit('reset', r); },
      end: (e) => this.finish(e),
    }, since);
  }

  on<K extends keyof Events>(event: K, fn: (e: Events[K]) => void): () => void {
    this.listeners[event].add(fn);
    return () => { this.listeners[event].delete(fn); };
  }

  /** Asks herald to stop the stream (the producer is answered `aborted`); the end follows as usual. */
  stop(reason?: string): Promise<StopResult> {
    return this.client.stop(this.channel, reason);
  }

  /** Stops following (the stream goes on for others). */
  close(): void {
    this.off?.();
    this.off = null;
  }

  private onMessage(m: Message): void {
    if (m.event === 'end') return;  // the end handler has it
    const delta = this.extract(m.data);
    this.messages++;
    this.text += delta;
    this.emit('delta', { delta, text: this.text, message: m });
  }

  private finish(e: EndInfo): void {
    if (this.end) return;
    this.end = e;
    this.close();
    this.emit('end', e);
    this.resolveDone(e);
  }

  private emit<K extends keyof Events>(event: K, arg: Events[K]): void {
    for (const fn of [...this.listeners[event]]) fn(arg);
  }

  private defaultText(d: unknown): string {
    if (typeof d === 'string') return this.sawObject && d === '[DONE]' ? '' : d;
    if (!isObject(d)) return '';
    this.sawObject = true;
    const choice = Array.isArray(d.choices) ? d.choices[0] : undefined;
    const content = isObject(choice) && isObject(choice.delta) ? choice.delta.content : undefined;
    if (typeof content === 'string') return content;
    if (isObject(d.delta) && typeof d.delta.text === 'string') return d.delta.text;
    if (typeof d.delta === 'string') return d.delta;
    if (typeof d.text === 'string') return d.text;
    return '';
  }
}
