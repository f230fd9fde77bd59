// A load client built on ordinary libraries, so that herald's figures do not rest on its
// own client (herald-bench): subscribers are npm `ws` WebSockets, node:http SSE streams
// or node:http long polls (keep-alive), the publisher node:http POSTs, either paced
// (--rate R publishes per second) or as fast as replies come (--rate 0: the next publish
// leaves when the previous one is answered, one in flight). Against herald, Nchan
// (bench/peers/nchan.conf) or herald-bench's physical baseline (`--peer baseline`: the
// same bytes, one send() per message per socket), started here or reached with --port.
//
//   node bench/node-load.mjs --peer herald|nchan|baseline --transport ws|sse|poll [--subscribers 1000]
//        [--messages 300] [--rate 150] [--size 100] [--procs 1] [--port P --pid PID]
//   (subscribers run in --procs child processes, the publisher in the parent)
//        [--server build/src/herald] [--json FILE] [--label TEXT]
//
// Prints one Markdown row: deliveries, msgs/s, publish→receive p50/p99, publish reply
// p50/p99, server CPU per delivery (utime+stime of the server's processes from /proc),
// TCP segments per delivery (the machine's OutSegs, /proc/net/snmp), client CPU. Every
// run is bounded: connections, messages and a deadline. Loopback only.
import { spawn, fork } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/integration/package.json'));
const WebSocket = require('ws');
const HOST = '127.0.0.1';
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function parseArgs(argv) {
  const o = { peer: 'herald', transport: 'ws', subscribers: 1000, messages: 300, rate: 150, size: 100, procs: 1,
    port: 0, pid: 0, server: path.join(here, '../build/src/herald'), bench: path.join(here, '../build/tools/bench/herald-bench'), json: '', label: '', deadline: 120, channel: 'bench' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in o)) throw new Error(`unknown option --${k}`);
    const v = argv[++i];
    o[k] = typeof o[k] === 'number' ? Number(v) : v;
  }
  if (!['herald', 'nchan', 'baseline'].includes(o.peer)) throw new Error('--peer herald|nchan|baseline');
  if (o.peer === 'baseline' && o.transport === 'poll') throw new Error('the baseline serves ws and sse');
  if (!['ws', 'sse', 'poll'].includes(o.transport)) throw new Error('--transport ws|sse|poll');
  if (o.subscribers / o.procs > 15000) throw new Error('at most 15000 subscribers per process (--procs)');
  return o;
}

// ---------------------------------------------------------------------------------------
// Servers

function freePort() {
  return new Promise((resolve) => { const s = net.createServer().listen(0, HOST, () => { const p = s.address().port; s.close(() => resolve(p)); }); });
}

async function waitOpen(port, ms = 10000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((r) => { const s = net.connect(port, HOST); s.on('connect', () => { s.destroy(); r(true); }); s.on('error', () => r(false)); });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${port}`);
}

async function startServer(o) {
  const port = await freePort();
  if (o.peer === 'herald') {
    const p = spawn(o.server, ['--listen', `${HOST}:${port}`, '--history-size', '20000', '--log-level', 'warn'], { stdio: 'ignore' });
    await waitOpen(port);
    return { port, pids: () => [p.pid], stop: () => { p.kill('SIGKILL'); } };
  }
  if (o.peer === 'baseline') {
    // herald-bench's physical baseline: one send() of the same bytes per message per socket.
    const p = spawn(o.bench, ['--baseline-server', String(port), '--baseline-bytes', String(o.size + 100)], { stdio: 'ignore' });
    await waitOpen(port);
    return { port, pids: () => [p.pid], stop: () => { p.kill('SIGKILL'); } };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-node-load-nchan-'));
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(dir, d));
  const conf = fs.readFileSync(path.join(here, 'peers/nchan.conf'), 'utf8').replaceAll('@PORT@', String(port)).replaceAll('@PREFIX@', dir);
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const p = spawn('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
  await waitOpen(port);
  const pids = () => [p.pid, ...childPids(p.pid)];
  return { port, pids, stop: () => { for (const k of pids().reverse()) { try { process.kill(k, 'SIGKILL'); } catch { /* gone */ } } fs.rmSync(dir, { recursive: true, force: true }); } };
}

function childPids(pid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try { if (Number(fs.readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ')[1]) === pid) out.push(Number(d)); } catch { /* gone */ }
  }
  return out;
}

function cpuSeconds(pids) {
  const tick = 100;  // USER_HZ
  let t = 0;
  for (const p of pids) {
    try { const f = fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' '); t += (Number(f[11]) + Number(f[12])) / tick; } catch { /* gone */ }
  }
  return t;
}

function outSegs() {
  const lines = fs.readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Tcp:'));
  const keys = lines[0].split(/\s+/), vals = lines[1].split(/\s+/);
  return Number(vals[keys.indexOf('OutSegs')]);
}

// ---------------------------------------------------------------------------------------
// Subscribers (one process: its share of them)

function subscribe(o, port, onData, onReady, onError) {
  const ch = o.channel;
  const herald = o.peer === 'herald';
  if (o.transport === 'ws') {
    const ws = new WebSocket(herald ? `ws://${HOST}:${port}/ws` : `ws://${HOST}:${port}/sub/${ch}`, { perMessageDeflate: false });
    ws.on('open', () => { if (herald) ws.send(JSON.stringify({ id: 1, method: 'subscribe', channel: ch })); else onReady(); });
    ws.on('message', (buf) => {
      const m = JSON.parse(buf.toString());
      if (!herald) return onData(m);
      if (m.push) return onData(m.push.data);
      if (m.id === 1) return m.error ? onError(m.error.code) : onReady();
    });
    ws.on('error', (e) => onError(e.code ?? e.message));
    return () => ws.terminate();
  }
  if (o.transport === 'sse') {
    const req = http.get({ host: HOST, port, agent: false, path: herald ? `/sse?channel=${ch}` : `/sub/${ch}`, headers: { Accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) return onError(`status ${res.statusCode}`);
      if (!herald) onReady();
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let data = null, event = null, id = null;
          for (const line of block.split('\n')) {
            if (line.startsWith('data:')) data = line.slice(line[5] === ' ' ? 6 : 5);
            else if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('id:')) id = line;
          }
          if (data === null) { if (herald && id) onReady(); continue; }
          if (event === 'reset') continue;
          const m = JSON.parse(data);
          onData(herald ? m.data : m);
        }
      });
      res.on('error', (e) => onError(e.code ?? e.message));
    });
    req.on('error', (e) => onError(e.code ?? e.message));
    return () => req.destroy();
  }
  // Long polling: each reply carries the position of the next request.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let stopped = false, cursor = null, etag = null, lastModified = null, first = true;
  const once = () => {
    if (stopped) return;
    const headers = {};
    let p;
    if (herald) p = `/poll?channel=${ch}&timeout=60&limit=1000${cursor ? `&since=${cursor}` : ''}`;
    else {
      p = `/sub/${ch}`;
      if (etag) headers['If-None-Match'] = etag;
      if (lastModified) headers['If-Modified-Since'] = lastModified;
    }
    const req = http.get({ host: HOST, port, path: p, agent, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        if (res.statusCode === 200) {
          if (herald) {
            const j = JSON.parse(body);
            cursor = j.cursor;
            for (const m of j.messages) onData(m.data);
          } else {
            etag = res.headers.etag; lastModified = res.headers['last-modified'];
            onData(JSON.parse(body));
          }
        } else if (res.statusCode !== 304 && res.statusCode !== 408) return onError(`status ${res.statusCode}`);
        once();
      });
    });
    req.on('error', (e) => { if (!stopped) onError(e.code ?? e.message); });
    if (first) { first = false; setTimeout(onReady, 0); }
  };
  once();
  return () => { stopped = true; agent.destroy(); };
}

/** Runs `count` subscribers (a child process); reports {ready}, then {deliveries, latencies} when told to stop. */
async function subscriberProcess(o, port, count, report) {
  let ready = 0, errors = 0, deliveries = 0;
  const latencies = [];
  const closers = [];
  for (let i = 0; i < count; i++) {
    closers.push(subscribe(o, port, (d) => {
      deliveries++;
      if (d && typeof d.t === 'number') latencies.push(now() - d.t);
    }, () => { if (++ready === count) report({ type: 'ready' }); }, () => { errors++; }));
    if (i % 200 === 199) await sleep(20);  // a steady connect, not a SYN storm
  }
  return {
    snapshot: () => ({ deliveries, errors, ready }),
    finish: () => { for (const c of closers) c(); return { deliveries, errors, latencies }; },
  };
}

// ---------------------------------------------------------------------------------------
// Publisher

function publishOnce(o, port, agent, seq, pad) {
  const data = JSON.stringify({ t: now(), s: seq, p: pad });
  const body = o.peer === 'herald' ? `{"channel":"${o.channel}","data":${data}}` : data;
  const p = o.peer === 'herald' ? '/api/publish' : `/pub/${o.channel}`;
  const t0 = now();
  return new Promise((resolve) => {
    const req = http.request({ host: HOST, port, path: p, method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ok: res.statusCode >= 200 && res.statusCode < 300, ms: now() - t0 }));
    });
    req.on('error', () => resolve({ ok: false, ms: now() - t0 }));
    req.end(body);
  });
}

const pct = (a, p) => { if (!a.length) return NaN; const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const server = o.port ? { port: o.port, pids: () => (o.pid ? [o.pid, ...childPids(o.pid)] : []), stop: () => {} } : await startServer(o);
  const port = server.port;
  // Each message's data is {"t":…,"s":…,"p":"…"} padded to about --size bytes.
  const pad = 'x'.repeat(Math.max(0, o.size - 40));
  const workers = [];
  try {
    // Subscribers in forked children, so that the publisher's replies are not timed by
    // a loop busy with deliveries.
    const per = Math.ceil(o.subscribers / o.procs);
    const readyAll = [];
    const results = [];
    for (let i = 0; i < o.procs; i++) {
      const w = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, NODE_LOAD_CHILD: JSON.stringify({ o, port, count: Math.min(per, o.subscribers - i * per) }) } });
      workers.push(w);
      readyAll.push(new Promise((res) => w.on('message', (m) => { if (m.type === 'ready') res(); else if (m.type === 'done') results.push(m); })));
    }
    const connectDeadline = sleep(30000).then(() => { throw new Error('subscribers not ready within 30 s'); });
    await Promise.race([Promise.all(readyAll), connectDeadline]);
    await sleep(300);  // held polls reach the server

    const agent = new http.Agent({ keepAlive: true, maxSockets: o.rate > 0 ? 8 : 1 });
    const clientPids = () => [process.pid, ...workers.map((w) => w.pid)];
    const cpu0 = cpuSeconds(server.pids()), segs0 = outSegs(), client0 = cpuSeconds(clientPids());
    const t0 = now();
    const replies = [];
    let failed = 0;
    if (o.rate > 0) {
      const pending = [];
      for (let s = 1; s <= o.messages; s++) {
        const wait = t0 + ((s - 1) * 1000) / o.rate - now();
        if (wait > 0) await sleep(wait);
        pending.push(publishOnce(o, port, agent, s, pad).then((r) => { replies.push(r.ms); if (!r.ok) failed++; }));
      }
      await Promise.all(pending);
    } else {
      for (let s = 1; s <= o.messages; s++) {
        const r = await publishOnce(o, port, agent, s, pad);
        replies.push(r.ms);
        if (!r.ok) failed++;
      }
    }
    const want = (o.messages - failed) * o.subscribers;
    const deadline = t0 + o.deadline * 1000;
    // Wait for every delivery (or the deadline), then for quiet.
    let delivered = 0;
    for (;;) {
      const snaps = await Promise.all(workers.map((w) => new Promise((res) => { w.once('message', (m) => res(m)); w.send({ type: 'snapshot' }); })));
      delivered = snaps.reduce((a, m) => a + m.deliveries, 0);
      if (delivered >= want || now() > deadline) break;
      await sleep(50);
    }
    const elapsed = (now() - t0) / 1000;
    const cpu = cpuSeconds(server.pids()) - cpu0, segs = outSegs() - segs0;
    const client = cpuSeconds(clientPids()) - client0;
    agent.destroy();
    let latencies = [], errors = 0;
    for (const w of workers) w.send({ type: 'finish' });
    await Promise.race([new Promise((res) => { const iv = setInterval(() => { if (results.length === workers.length) { clearInterval(iv); res(); } }, 20); }), sleep(10000)]);
    for (const r of results) { latencies = latencies.concat(r.latencies); errors += r.errors; }
    delivered = results.reduce((a, r) => a + r.deliveries, 0);
    const row = {
      tool: 'node-load', peer: o.peer, transport: o.transport, subscribers: o.subscribers, messages: o.messages, rate: o.rate, size: o.size, label: o.label,
      delivered, expected: want, publish_failures: failed, errors,
      msgs_per_s: delivered / elapsed,
      latency_p50_ms: pct(latencies, 50), latency_p99_ms: pct(latencies, 99),
      reply_p50_ms: pct(replies, 50), reply_p99_ms: pct(replies, 99),
      server_cpu_us_per_msg: (cpu * 1e6) / Math.max(1, delivered),
      segments_per_msg: segs / Math.max(1, delivered),
      client_cpu_s: client,
    };
    const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
    console.log(`| node-load | ${o.peer} | ${o.transport} | ${o.subscribers} subs | ${o.messages} msgs x ${o.size} B, ${o.rate > 0 ? `${o.rate}/s` : 'closed loop'} | delivered ${delivered}/${want}, errors ${errors} | ${Math.round(row.msgs_per_s)} msgs/s | p50 ${f1(row.latency_p50_ms)} ms, p99 ${f1(row.latency_p99_ms)} ms | reply p50 ${f1(row.reply_p50_ms)} ms, p99 ${f1(row.reply_p99_ms)} ms | server ${row.server_cpu_us_per_msg.toFixed(2)} us CPU/msg | ${row.segments_per_msg.toFixed(2)} segs/msg | client CPU ${row.client_cpu_s.toFixed(1)} s |`);
    if (o.json) fs.appendFileSync(o.json, `${JSON.stringify(row)}\n`);
    if (delivered < want) process.exitCode = 1;
  } finally {
    for (const w of workers) w.kill('SIGKILL');
    server.stop();
  }
}

if (process.env.NODE_LOAD_CHILD) {
  const { o, port, count } = JSON.parse(process.env.NODE_LOAD_CHILD);
  const p = await subscriberProcess(o, port, count, (m) => process.send(m));
  process.on('message', (m) => {
    if (m.type === 'snapshot') process.send(p.snapshot());
    else if (m.type === 'finish') { process.send({ type: 'done', ...p.finish() }); setTimeout(() => process.exit(0), 100); }
  });
} else {
  main().catch((e) => { console.error(`node-load: ${e.message}`); process.exit(2); });
}
