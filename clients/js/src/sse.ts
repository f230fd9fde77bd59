// The SSE transport: GET /sse read with fetch and a stream parser (not EventSource), so
// that heartbeats are visible and a 204 (every channel at its stream's end) is told
// apart from a failure.

import { positionOf } from './cursor.js';
import { HeraldError } from './types.js';
import { type Conn, type Host, type OnFail, channelQuery, errorText, requestHeaders } from './transport.js';
import { type WireMessage, type WirePresence, byteLength, isObject, parseSseBlock, splitSseEvents } from './wire.js';

export function openSse(host: Host, gen: number, onOpen: () => void, onFail: OnFail): Conn {
  const ctl = new AbortController();
  const live = () => host.live(gen) && !ctl.signal.aborted;
  let watchdog: ReturnType<typeof setInterval> | undefined;
  let lastRx = Date.now();
  let opened = false;
  let openTimer: ReturnType<typeof setTimeout> | undefined;
  const channels = host.active();
  const raw = host.options.format === 'raw';
  const fail = (why: string, permanent = false) => { clearInterval(watchdog); ctl.abort(); onFail(why, permanent); };
  // herald sends the response head once the subscription is synced.
  const open = () => {
    if (opened) return;
    opened = true;
    clearTimeout(openTimer);
    onOpen();
    for (const ch of channels) if (live()) host.subscribed(ch, 'sse');
  };
  const conn: Conn = {
    name: 'sse',
    close: () => { clearInterval(watchdog); clearTimeout(openTimer); ctl.abort(); },
    // The channel set is fixed per stream: reopen on the same transport, from the cursors.
    update: () => { if (live()) host.reopen(); },
  };
  if (channels.length === 0) {
    // Nothing to stream: connected, idle until a subscribe reopens.
    setTimeout(() => { if (live()) onOpen(); }, 0);
    return conn;
  }
  const url = `${host.abs(host.options.endpoints.sse)}?${channelQuery(host, channels, raw)}`;
  openTimer = setTimeout(() => { if (live() && !opened) fail('sse: no bytes in time (buffering proxy?)'); }, host.options.connectTimeoutMs);
  (async () => {
    const res = await host.fetchFn(url, { headers: requestHeaders(host, { Accept: 'text/event-stream' }), cache: 'no-store', signal: ctl.signal });
    if (!live()) return;
    if (res.status === 401 || res.status === 403) {
      clearTimeout(openTimer);
      await host.refusal(res, 'sse', (why, permanent) => { if (live()) fail(why, permanent); });
      return;
    }
    if (res.status === 204) {
      // Every channel of the request is at its stream's end: done, not a failure (no
      // fallback, no reconnect); the connection goes on idle or with the other channels.
      opened = true;
      clearTimeout(openTimer);
      onOpen();
      for (const ch of channels) host.ended(ch, null, 'sse');
      host.reopen();
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
    const hb = host.options.sseHeartbeatMs;
    watchdog = setInterval(() => { if (live() && Date.now() - lastRx > 2 * hb) fail('sse: heartbeat lost'); }, Math.max(100, Math.min(1000, hb / 4)));
    for (;;) {
      const { value, done } = await reader.read();
      if (!live()) return;
      if (done) {
        // herald ends the response once every channel reached its stream's end.
        if (channels.every((c) => host.isEnded(c))) { clearInterval(watchdog); host.reopen(); return; }
        fail('sse: stream ended');
        return;
      }
      lastRx = Date.now();
      const split = splitSseEvents(buf + dec.decode(value, { stream: true }));
      buf = split.rest;
      for (const { text, sepLen } of split.blocks) {
        open();
        if (/^event: ?token_expired$/m.test(text)) {
          // Resume from this event's id with a fresh token.
          const id = /^id: ?(.*)$/m.exec(text)?.[1];
          if (id) host.storeCursor(channels, id);
          fail('sse: token expired');
          return;
        }
        sseEvent(host, text, channels, byteLength(text) + sepLen, fail);
        if (!live()) return;
      }
    }
  })().catch((e) => { clearTimeout(openTimer); if (live()) fail(`sse: ${errorText(e)}`); });
  return conn;
}

function sseEvent(host: Host, block: string, channels: string[], bytes: number, fail: OnFail): void {
  const { id, event, data, hasData } = parseSseBlock(block);
  if (!hasData) {
    if (id) host.storeCursor(channels, id);
    return;
  }
  if (!id) {
    // A signal (docs/protocol.md "Signals"): no id, the cursor stays where it is; the
    // same JSON form in both formats.
    let obj: unknown;
    try { obj = JSON.parse(data); } catch { return; }
    if (!isObject(obj)) return;
    if (event === 'disconnect') {
      // The backend's users API ended this connection: stop unless it says reconnect.
      const permanent = obj.reconnect !== true;
      if (permanent) host.error(new HeraldError('disconnected', `sse: disconnected by the server (${String(obj.code)} ${String(obj.reason ?? '')})`));
      fail(`sse: disconnected by the server (${String(obj.code)})`, permanent);
      return;
    }
    if (event === 'resubscribe') {
      // The backend's users API changed the channel set; herald ends this stream. Reopen
      // at once (no backoff) with the new set, from the last event's id.
      if (typeof obj.subscribe === 'string') host.serverSubscribed(obj.subscribe, undefined, 'sse');
      if (typeof obj.unsubscribe === 'string') host.serverUnsubscribed(obj.unsubscribe, 'sse');
      host.reopen();
      return;
    }
    if (event === 'join' || event === 'leave') host.presenceEvent(event, obj as unknown as WirePresence, 'sse');
    else if (obj.ephemeral === true) host.ephemeral(obj as unknown as WireMessage, 'sse');
    return;
  }
  if (event !== 'reset' && host.options.format === 'raw') {
    // Raw: the data alone (after its channel's line on a stream of several channels);
    // the offset is the id's position for the channel.
    let ch = channels[0], text = data;
    if (channels.length > 1) { const nl = data.indexOf('\n'); ch = data.slice(0, nl); text = data.slice(nl + 1); }
    const p = positionOf(id, ch);
    let value: unknown;
    try { value = JSON.parse(text); } catch { return; }
    if (!p) return;
    const m: WireMessage = { channel: ch, offset: p.offset, data: value };
    if (event !== undefined) m.event = event;
    host.deliver(m, id, 'sse', bytes, channels);
    return;
  }
  let obj: unknown;
  try { obj = JSON.parse(data); } catch { return; }
  if (!isObject(obj)) return;
  if (event === 'reset') {
    const cur = typeof obj.cursor === 'string' ? obj.cursor : id;
    for (const ch of (obj.channels as string[] | undefined) ?? []) host.reset(ch, cur, 'sse', channels);
    return;
  }
  host.deliver(obj as unknown as WireMessage, id, 'sse', bytes, channels);
}
