#!/usr/bin/env node
// Streams under load, measured in one run on this machine: --streams concurrent answers
// of --tokens tokens at --rate tokens/s each, pushed into one herald through
// POST /api/stream (text/plain, coalesced per --coalesce-ms), each followed by --readers
// SSE readers from the first token on; every --drop-every ms one reader of each stream
// drops its connection and resumes with Last-Event-ID.
//
// Reported: token latency (a token's write by the producer → the reader receiving the
// message that holds it; median, p99, max), first-token latency, resume time (reconnect
// → the first replayed or live event), messages per stream, herald's CPU time per token
// and per delivered message, its RSS per active stream, and whether every reader's text
// equals its producer's, byte for byte, with every offset once and in order.
//
// Usage (from the repository root, after `ninja -C build herald`):
//   node bench/stream_load.mjs [--streams 100] [--tokens 200] [--rate 50] [--readers 2]
//        [--coalesce-ms 25] [--drop-every 1000] [--threads 2] [--json]
// One node process drives everything (at about 20,000 token writes/s it is the limit, not
// herald). Everything runs on 127.0.0.1; the herald it starts is stopped at the end.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import * as H from '../tests/integration/lib/herald.mjs';

const opt = { streams: 100, tokens: 200, rate: 50, readers: 2, 'coalesce-ms': 25, 'drop-every': 1000, threads: 2, json: false };
for (let i = 2; i < process.argv.length; i++) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in opt)) throw new Error(`unknown option --${k}`);
  opt[k] = typeof opt[k] === 'boolean' ? true : Number(process.argv[++i]);
}

const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const cpuTicks = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);  // utime + stime, clock ticks
};
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
const pct = (a, p) => { if (!a.length) return NaN; const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

/** One SSE reader of `ch` from the earliest message; resumes after drops. */
class Reader {
  constructor(h, ch, sentAt) {
    Object.assign(this, { h, ch, sentAt, text: '', offsets: [], lat: [], resumes: [], lastId: null, done: null, ended: false });
    this.finished = new Promise((r) => { this.done = r; });
    this.open();
  }
  open() {
    const headers = { Accept: 'text/event-stream' };
    if (this.lastId) headers['Last-Event-ID'] = this.lastId;
    const t0 = performance.now();
    const resuming = this.lastId !== null;
    let first = true;
    this.req = http.get({ host: H.HOST, port: this.h.port, agent, headers,
      path: `/sse?channel=${encodeURIComponent(this.ch)}${resuming ? '' : '&since=earliest'}` }, (res) => {
      if (res.statusCode === 204) { this.ended = true; return this.done(); }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let id, event, data;
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data = line.slice(6);
          }
          if (id !== undefined) this.lastId = id;
          if (data === undefined) continue;
          const now = performance.now();
          if (first && resuming) this.resumes.push(now - t0);
          first = false;
          const m = JSON.parse(data);
          this.offsets.push(m.offset);
          if (event === 'end') { this.ended = true; continue; }
          // The message holds the tokens from the reader's text length on.
          const start = this.text.length;
          this.text += m.data;
          for (const [pos, at] of this.sentAt) {
            if (pos < start) continue;
            if (pos >= this.text.length) break;
            this.lat.push(now - at);
          }
        }
      });
      res.on('error', () => {});
      // Ended by the server after the end, or dropped (by drop() or the network): resume.
      res.on('close', () => (this.ended ? this.done() : setTimeout(() => this.open(), 10)));
    });
    this.req.on('error', () => {
      if (!this.req.res && !this.ended) setTimeout(() => this.open(), 50);  // no response: retry
    });
  }
  drop() { if (!this.ended) this.req.destroy(); }
}

const h = await H.startHerald(['--threads', String(opt.threads), '--max-connections-per-ip', '0',
  '--namespace', `ai:stream_coalesce_ms=${opt['coalesce-ms']},history_size=100000,history_ttl=600`]);
try {
  const streams = [];
  for (let s = 0; s < opt.streams; s++) {
    const ch = `ai:load-${s}`;
    const sentAt = new Map();  // text position of each token -> its write time (ordered)
    const req = http.request({ host: H.HOST, port: h.port, method: 'POST', agent,
      path: `/api/stream?channel=${ch}`, headers: { 'Content-Type': 'text/plain' } });
    const reply = new Promise((resolve, reject) => {
      req.on('response', (res) => { let b = ''; res.on('data', (c) => { b += c; }); res.on('end', () => resolve(JSON.parse(b))); });
      req.on('error', reject);
    });
    req.flushHeaders();
    streams.push({ ch, sentAt, req, reply, text: '', readers: [] });
  }
  await H.sleep(300);
  for (const st of streams) for (let r = 0; r < opt.readers; r++) st.readers.push(new Reader(h, st.ch, st.sentAt));
  await H.sleep(300);

  const cpu0 = cpuTicks(h.proc.pid);
  const t0 = performance.now();
  let rssPeak = 0;
  const dropper = setInterval(() => { for (const st of streams) st.readers[0].drop(); }, opt['drop-every']);
  const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, rss(h.proc.pid)); }, 200);
  const interval = 1000 / opt.rate;
  for (let i = 0; i < opt.tokens; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await H.sleep(wait);
    const now = performance.now();
    for (const st of streams) {
      const tok = `t${i} `;
      st.sentAt.set(st.text.length, now);
      st.text += tok;
      st.req.write(tok);
    }
  }
  for (const st of streams) st.req.end();
  const replies = await Promise.all(streams.map((st) => st.reply));
  clearInterval(dropper);
  await H.withTimeout(Promise.all(streams.flatMap((st) => st.readers.map((r) => r.finished))), 60000, 'readers reaching the end');
  clearInterval(sampler);
  const elapsed = (performance.now() - t0) / 1000;
  const cpuSec = (cpuTicks(h.proc.pid) - cpu0) / 100;

  let exact = 0, lat = [], first = [], resumes = [], delivered = 0;
  for (const st of streams) {
    for (const r of st.readers) {
      const inOrder = r.offsets.every((o, k) => o === k + 1);
      if (r.text === st.text && inOrder) exact++;
      lat.push(...r.lat);
      if (r.lat.length) first.push(r.lat[0]);
      resumes.push(...r.resumes);
      delivered += r.offsets.length;
    }
  }
  const tokens = opt.streams * opt.tokens;
  const messages = replies.reduce((n, r) => n + r.offset, 0);
  const out = {
    time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), tool: 'stream_load', server: 'herald', scenario: 'stream',
    streams: opt.streams, tokens_per_stream: opt.tokens, rate: opt.rate, readers_per_stream: opt.readers,
    coalesce_ms: opt['coalesce-ms'], threads: opt.threads, cpus: os.cpus().length,
    completed: replies.filter((r) => r.state === 'completed').length,
    readers_exact: `${exact}/${opt.streams * opt.readers}`,
    tokens_per_s: Math.round(tokens / elapsed),
    messages_per_stream: Math.round(messages / opt.streams),
    token_latency_ms: { p50: +pct(lat, 0.5).toFixed(1), p99: +pct(lat, 0.99).toFixed(1), max: +lat.reduce((m, x) => Math.max(m, x), 0).toFixed(1) },
    first_token_latency_ms: { p50: +pct(first, 0.5).toFixed(1), p99: +pct(first, 0.99).toFixed(1) },
    resume_ms: { count: resumes.length, p50: +pct(resumes, 0.5).toFixed(1), p99: +pct(resumes, 0.99).toFixed(1) },
    herald_cpu_us_per_token: +(cpuSec * 1e6 / tokens).toFixed(1),
    herald_cpu_us_per_delivered_message: +(cpuSec * 1e6 / delivered).toFixed(1),
    herald_rss_peak_mb: +(rssPeak / 1048576).toFixed(1),
    herald_rss_per_stream_kb: +(rssPeak / 1024 / opt.streams).toFixed(1),
  };
  console.log(opt.json ? JSON.stringify(out) : out);
} finally {
  agent.destroy();
  await h.stop();
}
