// Helpers of the multi-node tests (cluster-*.test.mjs) and of bench/cluster_latency.mjs:
// real redis-server, herald, nginx and HAProxy processes on free loopback ports, the
// balancer configurations rendered from the shipped deploy/ files (only the ports are
// replaced), and followers: SSE, long-poll and WebSocket clients that reconnect with
// their last cursor (as a browser or a client library would) and record every offset
// they receive, so that a test can check "1..N, exactly once, in order".
//
// Everything talks to 127.0.0.1 only; every wait and every loop is bounded; only the
// processes started here (and the worker processes of the nginx started here) are ever
// signalled, by PID.
import { spawn, execFile } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import net from 'node:net';
import * as H from './herald.mjs';
import { HeraldWs } from './ws-client.mjs';
import { childPids, killTree } from './procs.mjs';

const { sleep, HOST } = H;
export const REPO_DIR = path.resolve(H.TESTS_DIR, '../..');
export const DEPLOY_DIR = path.join(REPO_DIR, 'deploy');

// ---------------------------------------------------------------------------------------
// Processes other than herald (herald.mjs tracks its own)

const procs = new Set();  // ChildProcess of redis-server, nginx, haproxy started here

function killNow(child) {
  killTree(child, Boolean(child.treeKill));
}

process.on('exit', () => { for (const c of procs) killNow(c); });

/** Which of the tools the cluster tests need is missing (names), [] when all are there. */
export function missingTools(names = ['redis-server', 'redis-cli', 'nginx', 'haproxy']) {
  const dirs = (process.env.PATH || '').split(':').concat(['/usr/sbin', '/sbin', '/usr/local/sbin']);
  return names.filter((n) => !dirs.some((d) => { try { fs.accessSync(path.join(d, n), fs.constants.X_OK); return true; } catch { return false; } }));
}

function which(name) {
  const dirs = (process.env.PATH || '').split(':').concat(['/usr/sbin', '/sbin', '/usr/local/sbin']);
  for (const d of dirs) {
    const p = path.join(d, name);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return name;
}

/**
 * Spawns a long-running tool; resolves with a handle once `ready()` resolves truthy
 * (polled, bounded). Output is kept (the last 64 KiB) for failure messages.
 */
async function spawnTool(cmd, args, { ready, what, timeoutMs = 10000, treeKill = false, cwd } = {}) {
  const child = spawn(which(cmd), args, { stdio: ['ignore', 'pipe', 'pipe'], cwd });
  child.treeKill = treeKill;
  procs.add(child);
  let out = '';
  const keep = (d) => { out += d; if (out.length > 65536) out = out.slice(-65536); };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  const exited = new Promise((resolve) => child.on('close', (code, signal) => { procs.delete(child); resolve({ code, signal }); }));
  child.on('error', (e) => { keep(`spawn error: ${e.message}`); });
  const handle = {
    proc: child,
    pid: child.pid,
    exited,
    output: () => out,
    alive: () => child.exitCode === null && child.signalCode === null,
    /** `sig` (default SIGTERM), SIGKILL after graceMs; also kills the children (nginx workers). */
    async stop(sig = 'SIGTERM', graceMs = 5000) {
      if (!handle.alive()) return exited;
      const kids = treeKill ? childPids(child.pid) : [];
      child.kill(sig);
      const t = setTimeout(() => {
        try { child.kill('SIGKILL'); } catch { /* gone */ }
        for (const k of kids) { try { process.kill(k, 'SIGKILL'); } catch { /* gone */ } }
      }, graceMs);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
    kill() { return handle.stop('SIGKILL', 0); },
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!handle.alive()) {
      await exited;
      throw new Error(`${what ?? cmd} exited at start (code ${child.exitCode}, signal ${child.signalCode})\n  command: ${cmd} ${args.join(' ')}\n  output: ${out}`);
    }
    if (await ready().catch(() => false)) return handle;
    if (Date.now() > deadline) {
      await handle.kill();
      throw new Error(`${what ?? cmd} not ready within ${timeoutMs} ms\n  command: ${cmd} ${args.join(' ')}\n  output: ${out}`);
    }
    await sleep(50);
  }
}

/** Resolves true when something accepts TCP connections on 127.0.0.1:port. */
export function tcpOpen(port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const s = net.connect(port, HOST);
    const done = (v) => { clearTimeout(t); s.destroy(); resolve(v); };
    const t = setTimeout(() => done(false), timeoutMs);
    s.on('connect', () => done(true));
    s.on('error', () => done(false));
  });
}

export function tmpDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(d, 0o755);  // nginx workers may run as another user when started as root
  return d;
}

// ---------------------------------------------------------------------------------------
// Redis

/** Runs redis-cli against 127.0.0.1:port; resolves with stdout (rejects on failure). */
export function redisCli(port, args, { timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(which('redis-cli'), ['-h', HOST, '-p', String(port), ...args],
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => (err ? reject(new Error(`redis-cli ${args.join(' ')}: ${err.message} ${stderr}`)) : resolve(stdout)));
  });
}

/**
 * Starts redis-server on 127.0.0.1 (a free port unless given), empty and without
 * persistence (no RDB, no AOF), its directory a fresh temporary one.
 */
export async function startRedis({ port } = {}) {
  for (let attempt = 0; ; attempt++) {
    const p = port ?? (await H.freePort());
    const dir = tmpDir('herald-redis-');
    try {
      const r = await spawnTool('redis-server', ['--port', String(p), '--bind', HOST, '--save', '', '--appendonly', 'no',
        '--dir', dir, '--daemonize', 'no', '--protected-mode', 'yes', '--loglevel', 'warning', '--databases', '1'], {
        what: `redis-server :${p}`,
        ready: async () => (await redisCli(p, ['PING'], { timeoutMs: 2000 })).trim() === 'PONG',
      });
      r.port = p;
      r.dir = dir;
      r.url = `redis://${HOST}:${p}`;
      const stop = r.stop;
      r.stop = async (...a) => { const x = await stop(...a); fs.rmSync(dir, { recursive: true, force: true }); return x; };
      return r;
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      if (port !== undefined || attempt >= 3) throw e;
    }
  }
}

/** A replica of `primary` (startRedis's options), synced before this resolves. */
export async function startReplica(primary) {
  const r = await startRedis();
  await redisCli(r.port, ['REPLICAOF', HOST, String(primary.port)]);
  await H.waitFor(async () => /master_link_status:up/.test(await redisCli(r.port, ['INFO', 'replication'])),
    { timeoutMs: 10000, intervalMs: 50, what: `replica :${r.port} of :${primary.port} in sync` });
  return r;
}

/**
 * A Redis Sentinel (redis-server --sentinel) monitoring `primary` as master `name`, with
 * a quick failure detection (down after `downAfterMs`); its config file in a temp dir
 * (Sentinel rewrites it).
 */
export async function startSentinel(primary, { name = 'herald', quorum = 2, downAfterMs = 1000 } = {}) {
  const p = await H.freePort();
  const dir = tmpDir('herald-sentinel-');
  const conf = path.join(dir, 'sentinel.conf');
  fs.writeFileSync(conf, [`port ${p}`, `bind ${HOST}`, `dir ${dir}`, 'sentinel resolve-hostnames no',
    `sentinel monitor ${name} ${HOST} ${primary.port} ${quorum}`, `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
    `sentinel failover-timeout ${name} 10000`, `sentinel parallel-syncs ${name} 1`, ''].join('\n'));
  const s = await spawnTool('redis-server', [conf, '--sentinel', '--loglevel', 'warning'], {
    what: `redis-sentinel :${p}`,
    ready: async () => (await redisCli(p, ['PING'], { timeoutMs: 2000 })).trim() === 'PONG',
  });
  s.port = p;
  s.dir = dir;
  s.addr = `${HOST}:${p}`;
  const stop = s.stop;
  s.stop = async (...a) => { const x = await stop(...a); fs.rmSync(dir, { recursive: true, force: true }); return x; };
  return s;
}

/** The address Sentinel `s` gives for master `name` ("host:port"). */
export async function sentinelPrimary(s, name = 'herald') {
  const out = (await redisCli(s.port, ['SENTINEL', 'get-master-addr-by-name', name])).trim().split('\n');
  return out.length >= 2 ? `${out[0]}:${out[1]}` : null;
}

/** Keys of a Redis instance (SCAN through redis-cli --scan). */
export async function redisKeys(port, pattern = '*') {
  const out = await redisCli(port, ['--scan', '--pattern', pattern]);
  return out.split('\n').filter(Boolean);
}

/** INFO commandstats as a Map command -> calls. */
export async function commandStats(port) {
  const out = await redisCli(port, ['INFO', 'commandstats']);
  const m = new Map();
  for (const line of out.split(/\r?\n/)) {
    const r = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (r) m.set(r[1], Number(r[2]));
  }
  return m;
}

// ---------------------------------------------------------------------------------------
// herald nodes

/** The environment without HERALD_* variables (HERALD_BIN included). */
function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
  return env;
}

/**
 * Starts a herald node on the given brokers (array of redis:// URLs, or 'memory') and
 * waits for its "herald listening on http://127.0.0.1:PORT (broker: ...)" line.
 * `port` 0 lets herald draw one; give the old port to restart a node where it was.
 * (herald.mjs's startHerald expects a one-word broker name in that line, so the
 * launcher here is its own.) Returns a handle like startHerald's: port, base, proc,
 * exited, stop(graceMs), kill(), stdout(), stderr().
 */
export async function startNode(brokers, { port = 0, drainSeconds = 2, historySize = 5000, threads = 1, args = [], timeoutMs = 10000 } = {}) {
  const broker = Array.isArray(brokers) ? brokers.join(',') : brokers;
  const argv = ['--listen', `${HOST}:${port}`, '--broker', broker, '--threads', String(threads),
    '--drain-seconds', String(drainSeconds), '--history-size', String(historySize), ...args];
  const child = spawn(H.HERALD_BIN, argv, { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  procs.add(child);
  let stdout = '', stderr = '';
  const exited = new Promise((resolve) => child.on('close', (code, signal) => { procs.delete(child); resolve({ code, signal }); }));
  const isAlive = () => child.exitCode === null && child.signalCode === null;
  const h = {
    proc: child, pid: child.pid, args: argv, exited,
    stdout: () => stdout, stderr: () => stderr,
    /** SIGTERM (graceful drain), then SIGKILL after `graceMs`; resolves with the exit status. */
    async stop(graceMs = 8000) {
      if (!isAlive()) return exited;
      child.kill('SIGTERM');
      const t = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, graceMs);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
    /** SIGKILL: a crash. */
    async kill() {
      if (isAlive()) child.kill('SIGKILL');
      return exited;
    },
  };
  const listening = new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new Error(`cannot start ${H.HERALD_BIN}: ${e.message}`)));
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; if (stderr.length > 65536) stderr = stderr.slice(-65536); });
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
      if (stdout.length > 65536) stdout = stdout.slice(-65536);
      const m = /herald listening on http:\/\/127\.0\.0\.1:(\d+) \(broker: ([^)]*)\)/.exec(stdout);
      if (m) resolve(Number(m[1]));
    });
    exited.then(({ code, signal }) => reject(new Error(`herald exited at start (code ${code}, signal ${signal})\n  command: ${H.HERALD_BIN} ${argv.join(' ')}\n  stdout: ${stdout}\n  stderr: ${stderr}`)));
  });
  let timer;
  try {
    h.port = await Promise.race([listening, new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`herald did not report its port within ${timeoutMs} ms\n  command: ${H.HERALD_BIN} ${argv.join(' ')}\n  stdout: ${stdout}\n  stderr: ${stderr}`)), timeoutMs);
    })]);
  } catch (e) {
    await h.kill();
    throw e;
  } finally {
    clearTimeout(timer);
  }
  h.base = `http://${HOST}:${h.port}`;
  return h;
}

export const alive = (h) => h.proc.exitCode === null && h.proc.signalCode === null;

/** How a node ended (for failure messages). */
export function deathNote(h) {
  if (alive(h)) return 'running';
  return `exited (code ${h.proc.exitCode}, signal ${h.proc.signalCode}) — command: ${h.args.join(' ')}; stderr: ${h.stderr().slice(-2000)}`;
}

/** Waits until GET /readyz on `target` answers `status`. */
export async function waitReady(target, status = 200, timeoutMs = 15000) {
  return H.waitFor(async () => {
    if (target.proc && !alive(target)) throw new Error(`waiting for :${target.port}/readyz -> ${status}: the node ${deathNote(target)}`);
    try { return (await H.get(target, '/readyz', { timeoutMs: 2000 })).status === status; } catch { return false; }
  }, { timeoutMs, intervalMs: 100, what: `GET :${target.port}/readyz -> ${status}` });
}

// ---------------------------------------------------------------------------------------
// Balancers: the shipped deploy/ files, ports replaced

const NODE_PLACEHOLDERS = ['127.0.0.1:8081', '127.0.0.1:8082', '127.0.0.1:8083'];

/**
 * The shipped configuration `file` (nginx.conf or haproxy.cfg) with its listening port
 * and the three node addresses replaced. Throws if the file no longer has the expected
 * shape (so that the tests and the shipped files cannot drift apart silently).
 */
export function renderConfig(file, { listenPort, nodePorts }) {
  let text = fs.readFileSync(path.join(DEPLOY_DIR, file), 'utf8');
  if (nodePorts.length !== NODE_PLACEHOLDERS.length) throw new Error(`${file} has ${NODE_PLACEHOLDERS.length} nodes`);
  const listen = file.startsWith('nginx')
    ? { re: /^(\s*)listen 8000;$/m, to: `$1listen ${HOST}:${listenPort};` }
    : { re: /^(\s*)bind :8000$/m, to: `$1bind ${HOST}:${listenPort}` };
  if ((text.match(new RegExp(listen.re.source, 'gm')) || []).length !== 1) throw new Error(`deploy/${file}: expected one ${listen.re} line`);
  text = text.replace(listen.re, listen.to);
  NODE_PLACEHOLDERS.forEach((ph, i) => {
    const directives = text.split('\n').filter((l) => !l.trim().startsWith('#') && l.includes(ph)).length;
    if (directives !== 2) throw new Error(`deploy/${file}: expected ${ph} in two server lines (both upstreams/backends), found ${directives}`);
    text = text.split(ph).join(`${HOST}:${nodePorts[i]}`);
  });
  const left = text.split('\n').filter((l) => !l.trim().startsWith('#') && /:80[0-9][0-9]\b/.test(l));
  if (left.length) throw new Error(`deploy/${file}: unreplaced ports: ${left.join(' | ')}`);
  return text;
}

/** Waits until GET /healthz through the balancer answers 200. */
async function balancerUp(port) {
  if (!(await tcpOpen(port))) return false;
  try { return (await H.get({ port }, '/healthz', { timeoutMs: 2000 })).status === 200; } catch { return false; }
}

/** nginx with deploy/nginx.conf (ports replaced), as a child process, files in a temp dir. */
export async function startNginx(nodePorts, { port } = {}) {
  const listenPort = port ?? (await H.freePort());
  const dir = tmpDir('herald-nginx-');
  fs.mkdirSync(path.join(dir, 'logs'));
  fs.mkdirSync(path.join(dir, 'temp'));
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, renderConfig('nginx.conf', { listenPort, nodePorts }));
  // -e: the log of nginx's own start-up, before the configuration's error_log applies.
  const args = ['-c', conf, '-p', dir, '-e', 'logs/error.log', '-g', 'daemon off;'];
  let lb;
  try {
    lb = await spawnTool('nginx', args, { what: 'nginx', treeKill: true, ready: () => balancerUp(listenPort) });
  } catch (e) {
    let log = '';
    try { log = fs.readFileSync(path.join(dir, 'logs/error.log'), 'utf8'); } catch { /* none */ }
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`${e.message}\n  error.log: ${log}`);
  }
  return finishBalancer(lb, 'nginx', listenPort, dir, () => {
    try { return fs.readFileSync(path.join(dir, 'logs/error.log'), 'utf8'); } catch { return ''; }
  });
}

/** HAProxy with deploy/haproxy.cfg (ports replaced), in the foreground (-db). */
export async function startHaproxy(nodePorts, { port } = {}) {
  const listenPort = port ?? (await H.freePort());
  const dir = tmpDir('herald-haproxy-');
  const conf = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(conf, renderConfig('haproxy.cfg', { listenPort, nodePorts }));
  let lb;
  try {
    lb = await spawnTool('haproxy', ['-f', conf, '-db'], { what: 'haproxy', ready: () => balancerUp(listenPort) });
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return finishBalancer(lb, 'haproxy', listenPort, dir, () => lb.output());
}

function finishBalancer(lb, kind, port, dir, log) {
  lb.kind = kind;
  lb.port = port;
  lb.base = `http://${HOST}:${port}`;
  lb.dir = dir;
  lb.log = log;
  const stop = lb.stop;
  lb.stop = async () => {
    const r = await stop('SIGTERM', 5000);
    fs.rmSync(dir, { recursive: true, force: true });
    return r;
  };
  return lb;
}

// ---------------------------------------------------------------------------------------
// A cluster: Redis (one or more shards), herald nodes, optionally a balancer

/**
 * Starts `shards` Redis instances, `nodes` herald nodes on all of them, and the balancer
 * ('nginx', 'haproxy' or null). Returns { redis: [...], nodes: [...], lb, stop(), ... }.
 * Stopping is safe after a partial start and after a failure.
 */
export async function startCluster({ balancer = null, nodes = 3, shards = 1, drainSeconds = 2, historySize = 5000, nodeArgs = [] } = {}) {
  const c = {
    redis: [], nodes: [], lb: null, nodeOpts: { drainSeconds, historySize, args: nodeArgs },
    get urls() { return this.redis.map((r) => r.url); },
    async stop() {
      const errs = [];
      if (this.lb) await this.lb.stop().catch((e) => errs.push(e));
      for (const n of this.nodes) if (n && alive(n)) await n.stop(5000).catch((e) => errs.push(e));
      for (const r of this.redis) await r.stop().catch((e) => errs.push(e));
      if (errs.length) throw errs[0];
    },
    /** Starts node i again on its old port (after a kill or a drain) and waits until ready. */
    async restartNode(i) {
      const old = this.nodes[i];
      if (alive(old)) throw new Error(`node ${i} is still running`);
      this.nodes[i] = await startNode(this.urls, { ...this.nodeOpts, port: old.port });
      await waitReady(this.nodes[i]);
      return this.nodes[i];
    },
    /** Kills Redis shard i (SIGKILL) and starts it again, empty, on the same port. */
    async killRedis(i = 0) {
      await this.redis[i].kill();
      fs.rmSync(this.redis[i].dir, { recursive: true, force: true });
    },
    async startRedisAgain(i = 0) {
      this.redis[i] = await startRedis({ port: this.redis[i].port });
      return this.redis[i];
    },
  };
  try {
    for (let i = 0; i < shards; i++) c.redis.push(await startRedis());
    for (let i = 0; i < nodes; i++) c.nodes.push(await startNode(c.urls, c.nodeOpts));
    for (const n of c.nodes) await waitReady(n);
    if (balancer === 'nginx') c.lb = await startNginx(c.nodes.map((n) => n.port));
    else if (balancer === 'haproxy') c.lb = await startHaproxy(c.nodes.map((n) => n.port));
    else if (balancer) throw new Error(`unknown balancer ${balancer}`);
  } catch (e) {
    await c.stop().catch(() => {});
    throw e;
  }
  return c;
}

/** Per-node values of one metric ('herald_connections{transport="sse"}' ...). */
export async function nodeMetric(nodes, name) {
  return Promise.all(nodes.map(async (n) => (alive(n) ? (await H.metrics(n)).get(name) ?? 0 : 0)));
}

/**
 * Runs `open()` (which opens one long-lived connection of `transport`) and tells which
 * node took it, from the herald_connections gauges. Nothing else may open or close
 * connections of that transport meanwhile.
 */
export async function landedOn(nodes, transport, open) {
  const name = `herald_connections{transport="${transport}"}`;
  const before = await nodeMetric(nodes, name);
  const result = await open();
  let idx = -1;
  await H.waitFor(async () => {
    const now = await nodeMetric(nodes, name);
    const up = now.map((v, i) => v - before[i]);
    const i = up.findIndex((d) => d > 0);
    if (i >= 0 && up.filter((d) => d !== 0).length === 1) { idx = i; return true; }
    return false;
  }, { timeoutMs: 5000, intervalMs: 30, what: `a ${transport} connection to show up in the gauges` });
  return { node: idx, result };
}

// ---------------------------------------------------------------------------------------
// Publishing

/**
 * Publishes `count` messages {seq, t} to `channel` through `target`, one after another
 * (optionally paced: `ratePerSec`), retrying a failed publish (balancer 502/503, reset
 * connection) after a short pause. Calls `onProgress(i)` after each success. Resolves
 * with { acks: [{seq, offset, cursor}], failures: [...] }; a failure answered 502 or by a
 * dropped connection may still have been accepted (then that seq appears twice).
 */
export async function publishSequence(target, channel, count, { ratePerSec = 0, onProgress, maxAttempts = 50, agent } = {}) {
  const own = !agent;
  agent ??= H.keepAliveAgent(1);
  const acks = [];
  const failures = [];
  const t0 = Date.now();
  try {
    for (let seq = 1; seq <= count; seq++) {
      if (ratePerSec > 0) {
        const due = t0 + (seq - 1) * (1000 / ratePerSec);
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
      }
      for (let attempt = 1; ; attempt++) {
        let r, err;
        try { r = await H.publishRaw(target, channel, { seq, t: Date.now() }, { agent }); } catch (e) { err = e; }
        if (r && r.status === 200 && r.json && typeof r.json.offset === 'number') {
          acks.push({ seq, offset: r.json.offset, cursor: r.json.cursor });
          break;
        }
        failures.push({ seq, attempt, status: r?.status ?? null, error: err?.code ?? err?.message ?? r?.text?.slice(0, 200) });
        if (attempt >= maxAttempts) throw new Error(`publish seq ${seq} to ${channel} failed ${attempt} times; last: ${JSON.stringify(failures.at(-1))}`);
        await sleep(Math.min(20 * attempt, 200));
      }
      onProgress?.(seq);
    }
  } finally {
    if (own) agent.destroy();
  }
  return { acks, failures };
}

/** The current cursor of `channel` (GET /api/history, no messages): a "since" for followers. */
export async function currentCursor(target, channel) {
  const r = await H.history(target, channel, { limit: 1 });
  if (r.status !== 200) throw new Error(`history ${channel}: ${r.status} ${r.text}`);
  return r.json.cursor;
}

// ---------------------------------------------------------------------------------------
// Followers: clients that reconnect with their last cursor and record what they get

class Follower {
  constructor(kind, target, channel, { since, name, retryMs = 50 } = {}) {
    this.kind = kind;
    this.target = target;
    this.channel = channel;
    this.cursor = since;          // the position to resume from
    this.name = name ?? `${kind}`;
    this.retryMs = retryMs;
    this.messages = [];           // {offset, seq, data, epochAfterResets}
    this.resets = [];             // what each reset said
    this.connects = 0;            // successful (re)connections / polls answered
    this.failures = [];           // refused or broken attempts: {status, error}
    this.closes = [];             // how connections ended (WebSocket close codes...)
    this.stopped = false;
    this.resetCount = 0;
    this._loop = null;
  }

  /** Offsets received since the last reset (or since the start). */
  offsets(afterReset = this.resetCount) {
    return this.messages.filter((m) => m.era === afterReset).map((m) => m.offset);
  }

  _message(m) {
    this.messages.push({ offset: m.offset, data: m.data, era: this.resetCount, time: m.time, at: performance.timeOrigin + performance.now() });
    this.onMessage?.(m);
  }

  _reset(info) {
    this.resetCount++;
    this.resets.push(info);
  }

  start() {
    this._loop = this._run().catch((e) => { this.fatal = e; });
    return this;
  }

  /** Waits until `pred(this)` holds (bounded). */
  async until(pred, timeoutMs, what) {
    return H.waitFor(() => {
      if (this.fatal) throw this.fatal;
      return pred(this);
    }, { timeoutMs, intervalMs: 20, what: `${this.name}: ${what}` });
  }

  /** Waits until the follower holds offsets up to `n` in the current era. */
  async untilOffset(n, timeoutMs = 15000) {
    return this.until((f) => f.offsets().includes(n) || f.offsets().some((o) => o > n), timeoutMs, `offset ${n} (has ${this.summary()})`);
  }

  summary() {
    const o = this.offsets();
    return `${o.length} messages, last ${o.at(-1)}, ${this.resets.length} resets, ${this.connects} connects, ${this.failures.length} failures`;
  }

  async stop() {
    this.stopped = true;
    this._abort?.();
    await H.withTimeout(this._loop ?? Promise.resolve(), 10000, `${this.name}: stopping`).catch(() => {});
  }
}

/**
 * Asserts that SSE through the balancer of cluster `c` is not buffered: the stream opens
 * with the position block, and each of three events published on the nodes arrives
 * within a second. Returns the response headers for balancer-specific checks.
 */
export async function assertSseUnbuffered(c, ch) {
  const s = await sseOpen(c.lb, ch);
  try {
    assert.equal(s.status, 200);
    assert.match(s.headers['content-type'], /^text\/event-stream/);
    await s.until((x) => x.blocks.some((b) => b.id !== undefined && b.data === undefined));
    for (let i = 1; i <= 3; i++) {
      const t0 = Date.now();
      await H.publish(c.nodes[i - 1], ch, { i });
      await s.until((x) => x.events.length >= i, 2000);
      assert.ok(Date.now() - t0 < 1000, `event ${i} took ${Date.now() - t0} ms`);
    }
    return s.headers;
  } finally {
    s.close();
  }
}

/** Parses an SSE byte stream (any chunking) into blocks {id, event, data}. */
export class SseParser {
  constructor(onBlock) {
    this.buf = '';
    this.cur = null;
    this.onBlock = onBlock;
  }

  push(text) {
    this.buf += text;
    let start = 0;
    for (;;) {
      const nl = this.buf.indexOf('\n', start);
      if (nl < 0) break;
      let line = this.buf.slice(start, nl);
      start = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (this.cur) { const b = this.cur; this.cur = null; this.onBlock(b); }
        continue;
      }
      if (line.startsWith(':')) continue;
      H.applySseField((this.cur ??= {}), line);
    }
    this.buf = this.buf.slice(start);
  }
}

/**
 * An SSE client over node:http (so chunked bodies from a balancer are decoded), that
 * reconnects like a browser's EventSource: with the last `id:` seen as Last-Event-ID
 * (or `since` on the first connection).
 */
export class SseFollower extends Follower {
  constructor(target, channel, opts = {}) {
    super('sse', target, channel, opts);
    this.heads = [];  // response heads (status + headers) of every connection
  }

  async _run() {
    for (let attempt = 0; !this.stopped && attempt < 2000; attempt++) {
      await this._once();
      if (this.stopped) break;
      await sleep(this.retryMs);
    }
  }

  _once() {
    return new Promise((resolve) => {
      const headers = { Accept: 'text/event-stream' };
      let pathQ = `/sse?${H.query(this.channel)}`;
      if (this.lastId) headers['Last-Event-ID'] = this.lastId;
      else if (this.cursor) pathQ += `&since=${encodeURIComponent(this.cursor)}`;
      let settled = false;
      const done = (what) => {
        if (settled) return;
        settled = true;
        this._abort = null;
        if (what) this.closes.push(what);
        resolve();
      };
      const req = http.get({ host: HOST, port: this.target.port, path: pathQ, headers, agent: false }, (res) => {
        this.heads.push({ status: res.statusCode, headers: res.headers });
        if (res.statusCode !== 200) {
          let body = '';
          res.setEncoding('utf8').on('data', (d) => { body += d; });
          res.on('end', () => { this.failures.push({ status: res.statusCode, error: body.slice(0, 200) }); done('refused'); });
          res.on('error', () => done('refused'));
          return;
        }
        this.connects++;
        const parser = new SseParser((b) => this._block(b));
        res.setEncoding('utf8');
        res.on('data', (d) => parser.push(d));
        res.on('end', () => done('end'));
        res.on('error', (e) => done(`error ${e.code ?? e.message}`));
        res.on('close', () => done('close'));
      });
      req.on('error', (e) => { this.failures.push({ status: null, error: e.code ?? e.message }); done(); });
      this._abort = () => req.destroy();
    });
  }

  _block(b) {
    if (b.id !== undefined) this.lastId = b.id;
    if (b.data === undefined) return;
    if (b.event === 'reset') {
      let j;
      try { j = JSON.parse(b.data); } catch { j = b.data; }
      if (j && j.channels && !('offset' in j)) return this._reset(j);
    }
    this._message(JSON.parse(b.data));
  }
}

/** A long-polling client: each poll carries the previous reply's cursor. */
export class PollFollower extends Follower {
  constructor(target, channel, { holdSeconds = 2, limit = 1000, ...opts } = {}) {
    super('poll', target, channel, opts);
    this.holdSeconds = holdSeconds;
    this.limit = limit;
    this.agent = H.keepAliveAgent(1);
  }

  async _run() {
    try {
      for (let attempt = 0; !this.stopped && attempt < 100000; attempt++) {
        let r, err;
        try {
          r = await H.poll(this.target, this.channel, { since: this.cursor, timeout: this.holdSeconds, limit: this.limit, agent: this.agent, timeoutMs: (this.holdSeconds + 10) * 1000 });
        } catch (e) { err = e; }
        if (this.stopped) break;
        if (r && r.status === 200 && r.json && typeof r.json.cursor === 'string') {
          this.connects++;
          if (r.json.recovered === false) this._reset(r.json.reset);
          for (const m of r.json.messages) this._message(m);
          this.cursor = r.json.cursor;
          continue;
        }
        this.failures.push({ status: r?.status ?? null, error: err ? (err.code ?? err.message) : r.text.slice(0, 200) });
        await sleep(this.retryMs);
      }
    } finally {
      this.agent.destroy();
    }
  }

  async stop() {
    this.stopped = true;
    this.agent.destroy();
    await H.withTimeout(this._loop ?? Promise.resolve(), 10000, `${this.name}: stopping`).catch(() => {});
  }
}

/**
 * A WebSocket client (ws-client.mjs's HeraldWs) that resubscribes with its last cursor
 * after a close (1001 on drain, 4000-4099, or a dropped TCP connection), and keeps the
 * balancer's cookie like a browser would (so stickiness is exercised).
 */
export class WsFollower extends Follower {
  constructor(target, channel, { useCookie = true, ...opts } = {}) {
    super('ws', target, channel, opts);
    this.useCookie = useCookie;
    this.cookie = null;
  }

  async _run() {
    for (let attempt = 0; !this.stopped && attempt < 2000; attempt++) {
      await this._once();
      if (this.stopped) break;
      await sleep(this.retryMs);
    }
  }

  async _once() {
    let ws;
    try {
      const headers = this.useCookie && this.cookie ? { Cookie: this.cookie } : {};
      ws = await HeraldWs.open(this.target, { headers, timeoutMs: 5000 });
    } catch (e) {
      this.failures.push({ status: null, error: e.message.slice(0, 200) });
      return;
    }
    this.ws = ws;
    ws.keepLog = false;
    // Answer the server's close frame (1001 on drain, 4000-4099) as browsers and client
    // libraries do; herald then closes the TCP connection at once.
    const handle = ws.conn.onEvent;
    ws.conn.onEvent = (e) => {
      handle(e);
      if (e.type === 'close' && !ws.conn.closeSent && !ws.conn.ended) ws.conn.sendClose(e.code ?? 1000).catch?.(() => {});
    };
    const setCookie = ws.conn.headers['set-cookie'];
    if (setCookie) this.cookie = setCookie.split(';')[0];
    let pushes = 0;
    ws.onPush = (p) => {
      if (p.channel !== this.channel) return;
      pushes++;
      this._message(p);
      this.cursor = p.cursor;
    };
    ws.onReset = (r) => {
      this._reset({ channel: r.channel, cursor: r.cursor, live: true });
      this.cursor = r.cursor;
    };
    this._abort = () => ws.destroy();
    try {
      const res = await ws.subscribe(this.channel, this.cursor);
      this.connects++;
      if (res.recovered === false) this._reset({ channel: res.channel, cursor: res.cursor, atSubscribe: true });
      if (pushes === 0 || res.recovered === false) this.cursor = res.cursor;
    } catch (e) {
      this.failures.push({ status: null, error: e.message.slice(0, 200) });
      ws.destroy();
    }
    await ws.conn.tcpClosed;
    this.closes.push(ws.close ? ws.close.code : 'eof');
    if (ws.violations.length) this.violations = (this.violations ?? []).concat(ws.violations);
    this._abort = null;
  }
}

/** Checks a follower ended with exactly 1..n (in order, once) since its last reset. */
export function exactSequence(f, n, era = f.resetCount) {
  const got = f.offsets(era);
  const want = Array.from({ length: n }, (_, i) => i + 1);
  if (got.length === want.length && got.every((v, i) => v === want[i])) return null;
  const seen = new Map();
  for (const o of got) seen.set(o, (seen.get(o) ?? 0) + 1);
  const dup = [...seen].filter(([, c]) => c > 1).map(([o]) => o);
  const missing = want.filter((o) => !seen.has(o));
  let disorder = -1;
  for (let i = 1; i < got.length; i++) if (got[i] <= got[i - 1]) { disorder = i; break; }
  return `${f.name}: expected offsets 1..${n} exactly once in order; got ${got.length} messages` +
    `${missing.length ? `, missing ${missing.length} (first ${missing.slice(0, 10).join(',')})` : ''}` +
    `${dup.length ? `, duplicated ${dup.length} (first ${dup.slice(0, 10).join(',')})` : ''}` +
    `${disorder >= 0 ? `, out of order at index ${disorder} (${got[disorder - 1]} then ${got[disorder]})` : ''}` +
    `${got.some((o) => o > n) ? `, beyond ${n}: ${got.filter((o) => o > n).slice(0, 5).join(',')}` : ''}` +
    `; resets ${JSON.stringify(f.resets).slice(0, 300)}; connects ${f.connects}; closes ${JSON.stringify(f.closes).slice(0, 200)}` +
    `; failures ${JSON.stringify(f.failures.slice(-5)).slice(0, 600)}`;
}

/**
 * Waits, in parallel and within one deadline, until every follower holds offset `n`
 * (in its current era); resolves with the error messages of those that did not.
 */
export async function allReach(followers, n, timeoutMs = 15000) {
  const rs = await Promise.allSettled(followers.map((f) => f.untilOffset(n, timeoutMs)));
  return rs.filter((r) => r.status === 'rejected').map((r) => r.reason.message);
}

/** Same for any condition. */
export async function allUntil(followers, pred, timeoutMs, what) {
  const rs = await Promise.allSettled(followers.map((f) => f.until(pred, timeoutMs, what)));
  const errs = rs.filter((r) => r.status === 'rejected').map((r) => r.reason.message);
  if (errs.length) throw new Error(errs.join('\n'));
}

/** Percentile (0..100) of a numeric array (nearest rank). */
export function percentile(values, p) {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

// ---------------------------------------------------------------------------------------
// One-shot clients used by the scenarios

/**
 * Opens one SSE stream (node:http; `channel` and `since` may be arrays), resolves once
 * the response head is in with
 * { status, events, blocks, lastId, close(), until(pred, ms) }.
 */
export function sseOpen(target, channel, { since, lastEventId, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const headers = { Accept: 'text/event-stream' };
    if (lastEventId) headers['Last-Event-ID'] = lastEventId;
    let q = H.query(channel);
    for (const x of [].concat(since ?? [])) q += `&since=${encodeURIComponent(x)}`;
    const s = { blocks: [], events: [], lastId: undefined, closed: false, waiters: [] };
    const wake = () => { for (const w of s.waiters.splice(0)) w(); };
    const parser = new SseParser((b) => {
      s.blocks.push(b);
      if (b.id !== undefined) s.lastId = b.id;
      if (b.data !== undefined && b.event !== 'reset') s.events.push({ id: b.id, ...JSON.parse(b.data) });
      wake();
    });
    const timer = setTimeout(() => { req.destroy(); reject(new Error(`SSE ${q}: no response head within ${timeoutMs} ms`)); }, timeoutMs);
    const req = http.get({ host: HOST, port: target.port, path: `/sse?${q}`, headers, agent: false }, (res) => {
      clearTimeout(timer);
      s.status = res.statusCode;
      s.headers = res.headers;
      res.setEncoding('utf8');
      res.on('data', (d) => parser.push(d));
      res.on('close', () => { s.closed = true; wake(); });
      resolve(s);
    });
    req.on('error', (e) => { clearTimeout(timer); s.closed = true; wake(); reject(e); });
    s.close = () => req.destroy();
    s.until = async (pred, ms = 5000) => {
      const deadline = Date.now() + ms;
      while (!pred(s)) {
        if (s.closed) throw new Error(`SSE ${q}: closed before the condition (${s.events.length} events)`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`SSE ${q}: condition not met within ${ms} ms (${s.events.length} events, last ${JSON.stringify(s.events.at(-1))})`);
        await new Promise((r) => { const t = setTimeout(r, Math.min(left, 200)); s.waiters.push(() => { clearTimeout(t); r(); }); });
      }
      return s;
    };
  });
}

/** Sum of one gauge over the nodes, waited back down to `value` (after closing connections). */
export async function settleGauge(nodes, transport, value, timeoutMs = 5000) {
  const name = `herald_connections{transport="${transport}"}`;
  await H.waitFor(async () => (await nodeMetric(nodes, name)).reduce((a, b) => a + b, 0) === value,
    { timeoutMs, intervalMs: 30, what: `${transport} connections back to ${value}` });
}

export async function gaugeSum(nodes, transport) {
  return (await nodeMetric(nodes, `herald_connections{transport="${transport}"}`)).reduce((a, b) => a + b, 0);
}

// ---------------------------------------------------------------------------------------
// The balancer scenarios, shared by cluster-nginx.test.mjs and cluster-haproxy.test.mjs

const POLL_DELIVERIES = 'herald_deliveries_total{transport="poll"}';

/**
 * Registers the tests run through one balancer ('nginx' or 'haproxy'): cross-node
 * delivery, round robin without stickiness for SSE and polling, WebSocket stickiness,
 * a node killed and a node drained mid-stream, Redis restarted. `extra(ctx, {test,
 * assert})` may add balancer-specific tests (ctx.c is the running cluster).
 */
export async function defineBalancerSuite(kind, { extra } = {}) {
  const { test: nodeTest, before, after } = await import('node:test');
  const assert = (await import('node:assert/strict')).default;
  const ctx = { c: null };
  const followers = new Set();
  const follow = (f) => { followers.add(f); return f.start(); };
  const unexpected = [];  // nodes found dead that no test stopped
  const stopAll = async () => { for (const f of followers) await f.stop(); followers.clear(); };

  /** Every follower stopped; nodes that a test stopped started again; crashes noted. */
  const tidy = async () => {
    await stopAll();
    const c = ctx.c;
    if (!c) return;
    let restored = false;
    for (let i = 0; i < c.redis.length; i++) {
      if (c.redis[i].alive()) continue;
      await c.startRedisAgain(i);
      restored = true;
    }
    for (let i = 0; i < c.nodes.length; i++) {
      if (alive(c.nodes[i])) continue;
      if (!c.nodes[i].expectedDown) unexpected.push(`node ${i} (:${c.nodes[i].port}) ${deathNote(c.nodes[i])}`);
      await c.restartNode(i);
      restored = true;
    }
    if (!restored) return;
    // Every node ready, and back in the balancer's rotation (HAProxy: `rise 2` checks 1 s apart).
    for (const n of c.nodes) await waitReady(n, 200, 15000);
    if (c.lb) await waitReady(c.lb, 200, 10000);
    if (c.lb?.kind === 'haproxy') await sleep(2500);
  };

  // Each test ends with every follower stopped and every node running again; a node that
  // died without a test stopping it (a crash) fails the test with its exit status and stderr.
  const test = (name, fn, timeout = 60000) => nodeTest(`${kind}: ${name}`, { timeout }, async (t) => {
    let err = null;
    try { await fn(t); } catch (e) { err = e; }
    try { await tidy(); } catch (e) {
      throw new Error(`could not restore the cluster after the test: ${e.stack ?? e}${err ? `\n(the test had failed: ${err.stack ?? err})` : ''}`);
    }
    if (unexpected.length) {
      const msg = unexpected.splice(0).join('\n');
      throw new Error(`a herald node died unexpectedly:\n${msg}${err ? `\n(and the test failed: ${err.stack ?? err})` : ''}`);
    }
    if (err) throw err;
  });

  before(async () => {
    const missing = missingTools();
    if (missing.length) throw new Error(`the cluster tests need ${missing.join(', ')} (scripts/setup.sh test installs them)`);
    ctx.c = await startCluster({ balancer: kind, nodes: 3, drainSeconds: 2 });
  });
  after(async () => {
    await stopAll();
    await ctx.c?.stop();
  });

  test('a message published on one node reaches SSE, long-poll and WebSocket subscribers on every node through the balancer', async (t) => {
    const { c } = ctx;
    const lb = c.lb;
    const ch = `x:${kind}:cross`;
    const since = await currentCursor(lb, ch);
    // Three SSE streams through the balancer: round robin puts one on each node.
    const sse = [];
    for (let i = 0; i < 3; i++) {
      const { node, result } = await landedOn(c.nodes, 'sse', async () => {
        const f = follow(new SseFollower(lb, ch, { since, name: `sse#${i}` }));
        await f.until((x) => x.connects > 0, 5000, 'connected');
        return f;
      });
      sse.push({ node, f: result });
    }
    assert.deepEqual(sse.map((s) => s.node).sort(), [0, 1, 2], `SSE streams by node: ${sse.map((s) => s.node)}`);
    const ws = [];
    for (let i = 0; i < 3; i++) {
      const { node, result } = await landedOn(c.nodes, 'ws', async () => {
        const f = follow(new WsFollower(lb, ch, { since, name: `ws#${i}` }));
        await f.until((x) => x.connects > 0, 5000, 'subscribed');
        return f;
      });
      ws.push({ node, f: result });
    }
    const polls = [0, 1, 2].map((i) => follow(new PollFollower(lb, ch, { since, name: `poll#${i}`, holdSeconds: 2 })));
    // Published on node 1 directly, then through the balancer.
    for (let i = 1; i <= 5; i++) await H.publish(c.nodes[0], ch, { i });
    for (let i = 6; i <= 10; i++) await H.publish(lb, ch, { i });
    const all = [...sse.map((s) => s.f), ...ws.map((s) => s.f), ...polls];
    assert.deepEqual(await allReach(all, 10, 10000), []);
    for (const f of all) assert.equal(exactSequence(f, 10), null);
    for (const f of all) assert.deepEqual(f.messages.map((m) => m.data.i), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    t.diagnostic(`WebSocket connections by node: ${ws.map((s) => s.node).join(',')}`);
  });

  test('SSE and long polling go round robin (consecutive requests on different nodes) and resume exactly with the cursor', async (t) => {
    const { c } = ctx;
    const lb = c.lb;
    const ch = `x:${kind}:rr`;
    let cur = await currentCursor(lb, ch);
    for (let i = 1; i <= 12; i++) await H.publish(lb, ch, { i });
    // Long polling: one message per poll (limit=1), each poll with the previous cursor.
    const pollNodes = [];
    const cursors = [cur];
    for (let k = 1; k <= 9; k++) {
      const before = await nodeMetric(c.nodes, POLL_DELIVERIES);
      const r = await H.poll(lb, ch, { since: cur, limit: 1, timeout: 0 });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.messages.map((m) => m.offset), [k], `poll ${k}: ${r.text}`);
      assert.equal(r.json.recovered, true);
      const now = await nodeMetric(c.nodes, POLL_DELIVERIES);
      const served = now.map((v, i) => v - before[i]).findIndex((d) => d === 1);
      assert.ok(served >= 0, `poll ${k}: no node counted the delivery (${before} -> ${now})`);
      pollNodes.push(served);
      cur = r.json.cursor;
      cursors.push(cur);
    }
    t.diagnostic(`polls served by nodes ${pollNodes.join(',')}`);
    for (let k = 1; k < pollNodes.length; k++) assert.notEqual(pollNodes[k], pollNodes[k - 1], `polls ${k} and ${k + 1} on the same node: ${pollNodes}`);
    assert.equal(new Set(pollNodes).size, 3, `every node served polls: ${pollNodes}`);
    // SSE: reconnect with Last-Event-ID three times; each stream on another node, each
    // resuming right after the last event seen.
    let lastEventId;
    let since = cursors[6];  // after offset 6
    let expectFrom = 7;
    const sseNodes = [];
    for (let k = 0; k < 3; k++) {
      await settleGauge(c.nodes, 'sse', 0);
      const { node, result: s } = await landedOn(c.nodes, 'sse', () => sseOpen(lb, ch, lastEventId ? { lastEventId } : { since }));
      try {
        assert.equal(s.status, 200);
        await s.until((x) => x.events.length >= 2);
        assert.deepEqual(s.events.slice(0, 2).map((e) => e.offset), [expectFrom, expectFrom + 1]);
        lastEventId = s.events[1].id;
        expectFrom += 2;
      } finally {
        s.close();
      }
      sseNodes.push(node);
    }
    t.diagnostic(`SSE streams served by nodes ${sseNodes.join(',')}`);
    assert.equal(new Set(sseNodes).size, 3, `three consecutive SSE streams on three nodes: ${sseNodes}`);
    // The cursor of a poll answered by one node, on a stream of another: offsets 13.. live.
    await settleGauge(c.nodes, 'sse', 0);
    const s = await sseOpen(lb, ch, { since: cursors[9] });
    try {
      await s.until((x) => x.events.length >= 3);  // 10, 11, 12 replayed
      await H.publish(c.nodes[2], ch, { i: 13 });
      await s.until((x) => x.events.length >= 4);
      assert.deepEqual(s.events.map((e) => e.offset), [10, 11, 12, 13]);
    } finally {
      s.close();
    }
    await settleGauge(c.nodes, 'sse', 0);
  });

  test('WebSocket is sticky: the balancer cookie brings a client back to its node; new clients spread', async (t) => {
    const { c } = ctx;
    const lb = c.lb;
    await settleGauge(c.nodes, 'ws', 0);
    const open = async (cookie) => {
      const { node, result: ws } = await landedOn(c.nodes, 'ws', () => HeraldWs.open(lb, { headers: cookie ? { Cookie: cookie } : {} }));
      const setCookie = ws.conn.headers['set-cookie'];
      ws.destroy();
      await settleGauge(c.nodes, 'ws', 0);
      return { node, cookie: setCookie ? setCookie.split(';')[0] : null };
    };
    const first = await open(null);
    assert.ok(first.cookie && first.cookie.startsWith('herald_ws='), `the handshake response sets the herald_ws cookie (got ${first.cookie})`);
    for (let i = 0; i < 4; i++) {
      const again = await open(first.cookie);
      assert.equal(again.node, first.node, `reconnect ${i + 1} with ${first.cookie} went to node ${again.node}, not ${first.node}`);
    }
    const fresh = [];
    for (let i = 0; i < 9; i++) fresh.push((await open(null)).node);
    t.diagnostic(`new WebSocket clients by node: ${fresh.join(',')}`);
    assert.ok(new Set(fresh).size >= 2, `new clients spread over the nodes: ${fresh}`);
  });

  /**
   * Followers of every transport through the balancer, a publisher through the balancer,
   * and `hit(nodeIndex)` applied to the node holding the first WebSocket when the
   * publisher is a third of the way.
   */
  async function disruptMidStream(t, ch, hit, { n = 1500, rate = 600 } = {}) {
    const { c } = ctx;
    const lb = c.lb;
    const since = await currentCursor(lb, ch);
    await settleGauge(c.nodes, 'sse', 0);
    await settleGauge(c.nodes, 'ws', 0);
    const sse = [];
    for (let i = 0; i < 3; i++) {
      sse.push(await landedOn(c.nodes, 'sse', async () => {
        const f = follow(new SseFollower(lb, ch, { since, name: `sse#${i}` }));
        await f.until((x) => x.connects > 0, 5000, 'connected');
        return f;
      }));
    }
    const ws = [];
    for (let i = 0; i < 3; i++) {
      ws.push(await landedOn(c.nodes, 'ws', async () => {
        const f = follow(new WsFollower(lb, ch, { since, name: `ws#${i}` }));
        await f.until((x) => x.connects > 0, 5000, 'subscribed');
        return f;
      }));
    }
    const polls = [0, 1, 2].map((i) => follow(new PollFollower(lb, ch, { since, name: `poll#${i}`, holdSeconds: 2 })));
    const target = ws[0].node;
    const hitNode = c.nodes[target];
    hitNode.expectedDown = true;
    t.diagnostic(`SSE on nodes ${sse.map((s) => s.node)}, WebSocket on nodes ${ws.map((s) => s.node)}; node ${target} (:${hitNode.port}) is hit`);
    let hitDone;
    const pub = publishSequence(lb, ch, n, {
      ratePerSec: rate,
      onProgress: (seq) => { if (seq === Math.floor(n / 3)) hitDone = hit(hitNode); },
    });
    const { acks, failures } = await pub;
    const hitResult = await hitDone;
    const top = Math.max(...acks.map((a) => a.offset));
    const all = [...sse.map((s) => s.result), ...ws.map((s) => s.result), ...polls];
    const errors = await allReach(all, top, 20000);
    for (const f of all) {
      const e = exactSequence(f, top, 0);
      if (e) errors.push(e);
      if (f.resets.length) errors.push(`${f.name}: unexpected reset ${JSON.stringify(f.resets)}`);
      if (f.violations?.length) errors.push(`${f.name}: ${f.violations.join('; ')}`);
    }
    const ambiguous = top - n;
    t.diagnostic(`published ${n} (top offset ${top}, ${ambiguous} duplicate publishes after ambiguous failures); ` +
      `publisher failures ${failures.length}: ${JSON.stringify(failures.slice(0, 6))}`);
    for (const f of all) t.diagnostic(`${f.name}: ${f.summary()}; closes ${JSON.stringify(f.closes)}`);
    // Every acknowledged publish is delivered: its offset is within 1..top (checked above).
    assert.ok(acks.every((a, i) => i === 0 || a.offset > acks[i - 1].offset), 'acknowledged offsets increase');
    assert.deepEqual(errors, []);
    // The clients of the node hit did reconnect (they were there).
    const onTarget = [...sse, ...ws].filter((s) => s.node === target).map((s) => s.result);
    assert.ok(onTarget.length >= 2, 'at least one SSE and one WebSocket client were on the node hit');
    for (const f of onTarget) assert.ok(f.connects >= 2, `${f.name} (on the node hit) reconnected: ${f.summary()}`);
    for (let i = 0; i < c.nodes.length; i++) if (i !== target) assert.ok(alive(c.nodes[i]), `node ${i} still runs: ${deathNote(c.nodes[i])}`);
    return { target, hitResult, sse, ws, polls, failures, top };
  }

  test('a node killed (SIGKILL) mid-stream: its SSE, long-poll and WebSocket clients resume through the balancer, 1..N exactly once', async (t) => {
    await disruptMidStream(t, `x:${kind}:kill`, (h) => h.kill());
  });

  test('a node drained (SIGTERM, --drain-seconds 2) mid-stream: clients move to the other nodes and lose nothing', async (t) => {
    const r = await disruptMidStream(t, `x:${kind}:drain`, async (h) => {
      const t0 = Date.now();
      const st = await h.stop(10000);
      return { ...st, ms: Date.now() - t0 };
    });
    t.diagnostic(`drained node exited ${JSON.stringify(r.hitResult)}`);
    assert.equal(r.hitResult.code, 0, `the drained node exits 0: ${JSON.stringify(r.hitResult)}`);
    assert.ok(r.hitResult.ms < 2000 + 2000 + 1500, `drain took ${r.hitResult.ms} ms`);
    const wsOnTarget = r.ws.filter((s) => s.node === r.target).map((s) => s.result);
    for (const f of wsOnTarget) assert.ok(f.closes.includes(1001), `${f.name} was closed with 1001 (closes: ${JSON.stringify(f.closes)})`);
  });

  test('Redis restarted empty: 503 while down, /readyz 503, then recovery; subscribers get explicit resets; no node crashes', async (t) => {
    const { c } = ctx;
    const lb = c.lb;
    const ch = `x:${kind}:redis`;
    const since = await currentCursor(lb, ch);
    const fs_ = [
      follow(new SseFollower(lb, ch, { since, name: 'sse#0' })),
      follow(new SseFollower(lb, ch, { since, name: 'sse#1' })),
      follow(new WsFollower(lb, ch, { since, name: 'ws#0' })),
      follow(new WsFollower(lb, ch, { since, name: 'ws#1' })),
      follow(new PollFollower(lb, ch, { since, name: 'poll#0', holdSeconds: 1 })),
      follow(new PollFollower(lb, ch, { since, name: 'poll#1', holdSeconds: 1 })),
    ];
    for (const f of fs_) await f.until((x) => x.connects > 0, 5000, 'connected');
    for (let i = 1; i <= 20; i++) await H.publish(lb, ch, { i });
    assert.deepEqual(await allReach(fs_, 20), []);
    await c.killRedis(0);
    const down = Date.now();
    // Publishing fails with 503 (herald's "unavailable", or the balancer's own 503 once
    // its /readyz checks have taken every node out).
    const r = await H.waitFor(async () => {
      const x = await H.publishRaw(lb, ch, { i: 'lost' });
      return x.status === 503 ? x : (x.status === 200 ? assert.fail(`publish accepted with Redis down: ${x.text}`) : false);
    }, { timeoutMs: 5000, what: 'publish -> 503' });
    t.diagnostic(`publish with Redis down: ${r.status} ${r.text.slice(0, 120).replace(/\s+/g, ' ')}`);
    assert.equal(r.json?.error?.code, 'unavailable', `a JSON error body: ${r.text}`);
    for (const n of c.nodes) await waitReady(n, 503, 5000);
    await waitReady(lb, 503, 5000);
    for (const n of c.nodes) assert.equal((await H.get(n, '/healthz')).status, 200, 'alive while Redis is down');
    await sleep(Math.max(0, 1500 - (Date.now() - down)));
    const x = await H.publishRaw(lb, ch, { i: 'lost' });
    assert.equal(x.status, 503, `still 503 while down: ${x.text}`);
    await c.startRedisAgain(0);
    for (const n of c.nodes) await waitReady(n, 200, 15000);
    await waitReady(lb, 200, 10000);
    t.diagnostic(`Redis down for ${Date.now() - down} ms (until every node is ready again)`);
    // Every subscriber is told that its position is gone (new epoch), then gets the new messages exactly.
    await allUntil(fs_, (x) => x.resets.length > 0, 15000, 'a reset');
    for (let i = 1; i <= 10; i++) await H.publish(lb, ch, { i: `after${i}` });
    const errors = await allReach(fs_, 10, 10000);
    for (const f of fs_) {
      const e1 = exactSequence(f, 20, 0);
      if (e1) errors.push(`before: ${e1}`);
      const e2 = exactSequence(f, 10);
      if (e2) errors.push(`after: ${e2}`);
      t.diagnostic(`${f.name}: resets ${JSON.stringify(f.resets).slice(0, 200)}; ${f.summary()}; closes ${JSON.stringify(f.closes)}`);
    }
    assert.deepEqual(errors, []);
    for (const [i, n] of c.nodes.entries()) assert.ok(alive(n), `node ${i} still runs: ${deathNote(n)}`);
  });

  if (extra) extra(ctx, { test, assert });

  test('every node down: the balancer answers with herald\'s JSON error format, and recovers when they are back', async (t) => {
    const { c } = ctx;
    for (const n of c.nodes) { n.expectedDown = true; await n.kill(); }
    const r = await H.publishRaw(c.lb, `x:${kind}:down`, 1);
    t.diagnostic(`publish with every node down: ${r.status} ${r.text}`);
    assert.ok(r.status === 502 || r.status === 503, `${r.status} ${r.text}`);
    assert.ok(['bad_gateway', 'unavailable'].includes(r.json?.error?.code), `JSON error body: ${r.text}`);
    const s = await H.get(c.lb, `/sse?channel=x:${kind}:down`);
    assert.ok(s.status === 502 || s.status === 503, `${s.status} ${s.text}`);
    assert.ok(s.json?.error?.code, `JSON error body: ${s.text}`);
    for (let i = 0; i < c.nodes.length; i++) await c.restartNode(i);
    await waitReady(c.lb, 200, 10000);
    const ok = await H.publishRaw(c.lb, `x:${kind}:down`, 2);
    assert.equal(ok.status, 200, ok.text);
  });
}
