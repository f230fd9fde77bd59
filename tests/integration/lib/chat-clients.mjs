// Clients of presence and chat tests built on packages this project did not write: a
// WebSocket client on the `ws` package and an `eventsource` EventSource, both with the
// request headers given (a token's Authorization).
import assert from 'node:assert/strict';
import EventSource from 'eventsource';
import WebSocket from 'ws';
import * as H from './herald.mjs';

/** A WebSocket client on the `ws` package: commands with replies, every other message kept. */
export async function wsClient(h, headers = {}) {
  const sock = new WebSocket(`ws://${H.HOST}:${h.port}/ws`, { headers });
  const c = { sock, messages: [], waiters: [], pending: new Map(), nextId: 1 };
  sock.on('message', (d) => {
    const j = JSON.parse(d.toString());
    if (j.id !== undefined && c.pending.has(j.id)) {
      c.pending.get(j.id)(j);
      c.pending.delete(j.id);
      return;
    }
    c.messages.push(j);
    for (const w of c.waiters.splice(0)) w();
  });
  c.closed = new Promise((resolve) => sock.on('close', resolve));
  await new Promise((resolve, reject) => { sock.once('open', resolve); sock.once('error', reject); });
  c.cmd = (cmd, timeoutMs = 5000) => {
    const id = c.nextId++;
    sock.send(JSON.stringify({ id, ...cmd }));
    return H.withTimeout(new Promise((resolve) => c.pending.set(id, resolve)), timeoutMs, `reply to ${JSON.stringify(cmd)}`);
  };
  /** Resolves with the first kept message matching `pred` (waits up to timeoutMs). */
  c.until = async (pred, timeoutMs = 5000, what = 'a WebSocket message') => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = c.messages.find(pred);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(c.messages)}`);
      await new Promise((resolve) => { c.waiters.push(resolve); setTimeout(resolve, 50); });
    }
  };
  c.close = async () => { sock.close(); await H.withTimeout(c.closed, 5000, 'WebSocket close'); };
  return c;
}

export async function subscribed(c, channel, since) {
  const r = await c.cmd({ method: 'subscribe', channel, ...(since ? { since } : {}) });
  assert.ok(r.result, `subscribe ${channel}: ${JSON.stringify(r)}`);
  return r.result;
}

/** An `eventsource` client; events by type, with the lastEventId each one left. */
export function eventSource(h, channels, headers = {}) {
  const url = `http://${H.HOST}:${h.port}/sse?${H.query(channels)}`;
  const es = new EventSource(url, { headers });
  const got = [];
  const record = (type) => (e) => got.push({ type, data: JSON.parse(e.data), lastEventId: es.lastEventId ?? e.lastEventId });
  es.onmessage = record('message');
  for (const t of ['join', 'leave', 'typing']) es.addEventListener(t, record(t));
  const opened = new Promise((resolve, reject) => { es.onopen = resolve; es.onerror = reject; });
  return { es, got, opened };
}

