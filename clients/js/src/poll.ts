// The long-polling transport: GET /poll in a loop (docs/protocol.md "Long polling").
// A raw reply carries no signals, so while a subscription listens for them the polls
// ask for the JSON format (a cursor is valid in both).

import { type Conn, type Host, type OnFail, channelQuery, errorText, requestHeaders } from './transport.js';
import { type WireMessage, type WirePresence, byteLength, isObject, rawPollReply } from './wire.js';

interface PollReply {
  cursor: string;
  reset?: string[];
  messages?: unknown[];
}

export function openPoll(host: Host, gen: number, onOpen: () => void, onFail: OnFail): Conn {
  let ctl = new AbortController();
  let opened = false;
  let changed = false;
  const held = new Set<string>();  // channels a reply of this connection answered
  const live = () => host.live(gen);
  const open = () => { if (!opened) { opened = true; onOpen(); } };
  const loop = async () => {
    for (let first = true; live(); first = false) {
      const channels = host.active();
      if (channels.length === 0) {
        open();
        await new Promise<void>((r) => { const t = setInterval(() => { if (!live() || host.active().length) { clearInterval(t); r(); } }, 100); });
        continue;
      }
      const raw = host.options.format === 'raw' && !host.wantsSignals();
      const q = channelQuery(host, channels, raw);
      // The first poll answers at once (it establishes the transport and the cursor).
      const hold = first || changed ? 0 : host.options.pollTimeoutSec;
      changed = false;
      q.set('timeout', String(hold));
      ctl = new AbortController();
      const limit = hold * 1000 + (first ? host.options.connectTimeoutMs : 10000);
      const t = setTimeout(() => ctl.abort(), limit);
      let res: Response, text: string;
      try {
        res = await host.fetchFn(`${host.abs(host.options.endpoints.poll)}?${q}`, { headers: requestHeaders(host), cache: 'no-store', signal: ctl.signal });
        if (res.status === 401 || res.status === 403) {
          clearTimeout(t);
          if (live()) await host.refusal(res, 'poll', onFail);
          return;
        }
        text = await res.text();
      } catch (e) {
        clearTimeout(t);
        if (!live()) return;
        if (changed) continue;  // aborted to change the channel set
        onFail(`poll: ${ctl.signal.aborted ? 'no reply in time' : errorText(e)}`);
        return;
      }
      clearTimeout(t);
      if (!live()) return;
      if (res.status === 204) {
        // Every channel of the poll is at its stream's end: not a failure.
        open();
        for (const ch of channels) host.ended(ch, null, 'poll');
        continue;
      }
      if (!res.ok) { onFail(`poll: HTTP ${res.status}`); return; }
      let r: PollReply;
      try { r = raw ? rawPollReply(text, channels) : JSON.parse(text) as PollReply; } catch { onFail('poll: bad reply'); return; }
      if (typeof r?.cursor !== 'string') { onFail('poll: bad reply'); return; }
      open();
      for (const ch of new Set(r.reset ?? [])) host.reset(ch, r.cursor, 'poll', channels);
      const msgs = r.messages ?? [];
      const share = msgs.length ? Math.round(byteLength(text) / msgs.length) : 0;
      for (const el of msgs) {
        if (!live()) return;
        if (!isObject(el)) continue;
        if (isObject(el.join) || isObject(el.leave)) {
          const kind = isObject(el.join) ? 'join' : 'leave';
          host.presenceEvent(kind, el[kind] as unknown as WirePresence, 'poll');
          continue;
        }
        const m = el as unknown as WireMessage;
        if (m.ephemeral === true || typeof m.offset !== 'number') { host.ephemeral(m, 'poll'); continue; }
        // A raw reply gives each message its own (derived) cursor; a JSON one the reply's.
        host.deliver(m, m.cursor ?? r.cursor, 'poll', share, m.cursor ? [m.channel] : channels);
      }
      if (!live()) return;
      host.storeCursor(channels, r.cursor);
      for (const ch of channels) if (!held.has(ch) && !host.isEnded(ch)) { held.add(ch); host.subscribed(ch, 'poll'); }
    }
  };
  loop().catch((e) => { if (live()) onFail(`poll: ${errorText(e)}`); });
  return {
    name: 'poll',
    close: () => ctl.abort(),
    update: () => { changed = true; ctl.abort(); },
  };
}
