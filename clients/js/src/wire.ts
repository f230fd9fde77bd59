// Wire-level helpers shared by the transports: the SSE event parser, the raw long-poll
// reply reader (docs/protocol.md "Raw formats") and the shapes of herald's JSON elements.

import { type Position, encodeCompact, positionOf } from './cursor.js';

const enc = typeof TextEncoder !== 'undefined' ? new TextEncoder() : null;
export const byteLength = (s: string): number => (enc ? enc.encode(s).length : s.length);

/** WebSocket frame bytes for a payload of `n` bytes (server frames: unmasked). */
export const frameBytes = (n: number): number => n + (n < 126 ? 2 : n < 65536 ? 4 : 10);

/** A message element as herald writes it (JSON format), or as the raw readers rebuild it. */
export interface WireMessage {
  channel: string;
  offset: number;
  time?: number;
  event?: string;
  data: unknown;
  cursor?: string;
  ephemeral?: boolean;
}

/** A join or leave body. */
export interface WirePresence {
  channel: string;
  user: string;
  client: string;
  transport: 'ws' | 'sse' | 'poll';
}

export const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** One SSE event's fields (WHATWG parsing: `field: value` lines, data lines joined by \n). */
export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
  hasData: boolean;
}

export function parseSseBlock(block: string): SseEvent {
  const ev: SseEvent = { data: '', hasData: false };
  for (const line of block.split(/\r\n|\n|\r/)) {
    if (!line || line[0] === ':') continue;
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? '' : line.slice(c + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'id') ev.id = value;
    else if (field === 'event') ev.event = value;
    else if (field === 'data') { ev.data += (ev.hasData ? '\n' : '') + value; ev.hasData = true; }
  }
  return ev;
}

/** Splits complete SSE events off the front of `buf`; returns them and the rest. */
export function splitSseEvents(buf: string): { blocks: { text: string; sepLen: number }[]; rest: string } {
  const blocks: { text: string; sepLen: number }[] = [];
  let i: number;
  while ((i = buf.search(/\r\n\r\n|\n\n|\r\r/)) >= 0) {
    const sepLen = buf.startsWith('\r\n\r\n', i) ? 4 : 2;
    blocks.push({ text: buf.slice(0, i), sepLen });
    buf = buf.slice(i + sepLen);
  }
  return { blocks, rest: buf };
}

export interface RawPollReply {
  cursor: string;
  reset: string[];
  messages: (WireMessage & { cursor: string })[];
}

/**
 * A raw long-poll body as the JSON reply's fields: first line
 * "<cursor>[ reset <channel>…][ end <channel>…]", then one line per message ("<data>", or
 * "<channel> <data>" for several channels; a message with an event name other than a
 * stream's end: "!" and its JSON element). A channel's messages end at the cursor's
 * position for it: offsets are counted back. A channel named after "end" has its stream's
 * end as its last line (event "end").
 */
export function rawPollReply(text: string, channels: string[]): RawPollReply {
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
  const messages = lines.map((l): WireMessage => {
    if (l[0] === '!') return JSON.parse(l.slice(1)) as WireMessage;
    if (channels.length === 1) return { channel: channels[0], data: JSON.parse(l), offset: 0 };
    const sp = l.indexOf(' ');
    return { channel: l.slice(0, sp), data: JSON.parse(l.slice(sp + 1)), offset: 0 };
  });
  const next = new Map<string, Position>();
  for (let i = messages.length - 1; i >= 0; i--) {
    const ch = messages[i].channel;
    const known = next.get(ch) ?? positionOf(cursor, ch);
    if (!known) throw new Error(`the cursor does not cover ${ch}`);
    // A named message's line says its offset; the others follow from the cursor.
    const p = lines[i][0] === '!' ? { ...known, offset: messages[i].offset } : known;
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
  return { cursor, reset, messages: messages as RawPollReply['messages'] };
}

