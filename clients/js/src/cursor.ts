// herald's cursor layouts (docs/protocol.md "Cursor" and "Raw formats"), for the raw
// wire formats: they carry a position by counting, so the client reads the position a
// cursor names and writes the cursor after each message itself.
//
// Long form: base64url of [version 1][per channel: tag u32 LE, epoch u32 LE, offset
// LEB128][check u16 LE: FNV-1a of all before]. Compact form (one channel): 15-24
// base64url characters read as one bit string: marker 10, tag (32), epoch (32), offset
// (6n - 78 bits), check (12 bits: FNV-1a of the first n - 2 characters).

export interface Position {
  /** FNV-1a 32 of the channel name. */
  tag: number;
  epoch: number;
  /** Last offset seen (exact up to 2^53). */
  offset: number;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const SEXTET: Record<string, number> = {};
for (let i = 0; i < 64; i++) SEXTET[B64[i]] = i;

function fnv1a(bytes: ArrayLike<number>): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 16777619) >>> 0;
  return h >>> 0;
}

const tags = new Map<string, number>();
/** The tag a cursor matches a channel by (channel names are ASCII). */
export function channelTag(channel: string): number {
  let t = tags.get(channel);
  if (t === undefined) {
    const b: number[] = [];
    for (let i = 0; i < channel.length; i++) b.push(channel.charCodeAt(i));
    t = fnv1a(b);
    if (tags.size < 4096) tags.set(channel, t);
  }
  return t;
}

/** Appends `bits` bits of the non-negative integer `v` (up to 2^53) to `out`, high first. */
function pushBits(out: number[], v: number, bits: number): void {
  for (let i = bits - 1; i >= 0; i--) out.push(i >= 53 ? 0 : Math.floor(v / 2 ** i) % 2);
}

/** The compact cursor of one channel's position. */
export function encodeCompact(p: Position): string {
  let n = 15;
  while (6 * n - 78 < 53 && p.offset >= 2 ** (6 * n - 78)) n++;
  const bits: number[] = [1, 0];
  pushBits(bits, p.tag >>> 0, 32);
  pushBits(bits, p.epoch >>> 0, 32);
  pushBits(bits, p.offset, 6 * n - 78);
  let body = '';
  for (let i = 0; i < bits.length; i += 6) {
    let x = 0;
    for (let j = 0; j < 6; j++) x = x * 2 + bits[i + j];
    body += B64[x];
  }
  const codes: number[] = [];
  for (let i = 0; i < body.length; i++) codes.push(body.charCodeAt(i));
  const check = fnv1a(codes) & 0xfff;
  return body + B64[check >> 6] + B64[check & 63];
}

/** The positions a cursor names (either form), or null when it is not one of herald's. */
export function decodeCursor(token: string): Position[] | null {
  if (!token) return null;
  const first = SEXTET[token[0]];
  if (first === undefined) return null;
  if (first >> 4 === 2) {
    if (token.length < 15 || token.length > 24) return null;
    const bits: number[] = [];
    for (const c of token.slice(0, -2)) {
      const x = SEXTET[c];
      if (x === undefined) return null;
      pushBits(bits, x, 6);
    }
    const read = (from: number, count: number) => {
      let v = 0;
      for (let i = from; i < from + count; i++) v = v * 2 + bits[i];
      return v;
    };
    const p = { tag: read(2, 32) >>> 0, epoch: read(34, 32) >>> 0, offset: read(66, bits.length - 66) };
    return encodeCompact(p) === token ? [p] : null;
  }
  // Long form: base64url to bytes.
  const bytes: number[] = [];
  let acc = 0, nbits = 0;
  for (const c of token) {
    const x = SEXTET[c];
    if (x === undefined) return null;
    acc = (acc << 6) | x;
    nbits += 6;
    if (nbits >= 8) { nbits -= 8; bytes.push((acc >> nbits) & 0xff); }
  }
  if (bytes.length < 3 || bytes[0] !== 1) return null;
  const body = bytes.length - 2;
  const check = fnv1a(bytes.slice(0, body));
  if (bytes[body] !== (check & 0xff) || bytes[body + 1] !== ((check >>> 8) & 0xff)) return null;
  const out: Position[] = [];
  let i = 1;
  const u32 = () => { const v = (bytes[i] | bytes[i + 1] << 8 | bytes[i + 2] << 16 | bytes[i + 3] << 24) >>> 0; i += 4; return v; };
  while (i < body) {
    if (body - i < 9) return null;
    const tag = u32(), epoch = u32();
    let offset = 0, scale = 1;
    for (;;) {
      if (i >= body) return null;
      const b = bytes[i++];
      offset += (b & 0x7f) * scale;
      scale *= 128;
      if (!(b & 0x80)) break;
    }
    out.push({ tag, epoch, offset });
  }
  return out.length ? out : null;
}

/** The position of `channel` in a cursor, if the cursor covers it. */
export function positionOf(token: string, channel: string): Position | undefined {
  const tag = channelTag(channel);
  return decodeCursor(token)?.find((p) => p.tag === tag);
}

/**
 * The newest cursor of each channel, from any transport, and the order they came in: a
 * request for several channels sends their distinct cursors oldest first, so that
 * (entries of later cursors replacing earlier ones) each channel gets its newest.
 */
export class CursorBook {
  private byChannel = new Map<string, string>();
  private seqOf = new Map<string, number>();
  private seq = 0;

  get(channel: string): string | undefined {
    return this.byChannel.get(channel);
  }

  has(channel: string): boolean {
    return this.byChannel.has(channel);
  }

  /** Records `cursor` as the newest position of each of `channels`. */
  store(channels: string[], cursor: string): void {
    if (typeof cursor !== 'string' || !cursor) return;
    this.seqOf.set(cursor, ++this.seq);
    for (const c of channels) {
      const old = this.byChannel.get(c);
      this.byChannel.set(c, cursor);
      if (old && old !== cursor && ![...this.byChannel.values()].includes(old)) this.seqOf.delete(old);
    }
  }

  /** The `since` values for a set of channels: distinct cursors, oldest first. */
  since(channels: string[]): string[] {
    const set = new Set<string>();
    for (const c of channels) { const x = this.byChannel.get(c); if (x) set.add(x); }
    return [...set].sort((a, b) => (this.seqOf.get(a) ?? 0) - (this.seqOf.get(b) ?? 0));
  }
}
