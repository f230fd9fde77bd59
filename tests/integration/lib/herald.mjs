// Shared helpers of the herald integration tests: start/stop the real binary, HTTP
// helpers (node:http with keep-alive agents, curl), a raw SSE reader over node:net that
// parses the stream incrementally, long polling, metrics, and the cursor layout (to
// forge and tamper with cursors in the error tests).
//
// Everything talks to 127.0.0.1 only, every wait is bounded, and only the processes
// started here are ever killed (by their ChildProcess handle).
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';

const here = path.dirname(fileURLToPath(import.meta.url));
export const TESTS_DIR = path.resolve(here, '..');
export const HERALD_BIN = process.env.HERALD_BIN
  ? path.resolve(process.env.HERALD_BIN)
  : path.resolve(TESTS_DIR, '../../build/src/herald');
export const HOST = '127.0.0.1';

export { sleep };

// ---------------------------------------------------------------------------------------
// Processes

// Every herald started here, so that none outlives the test process.
const children = new Set();
function killChildren() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    killChildren();
    process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 })[sig]);
  });
}

/** Runs herald to completion (for --help and configuration errors). */
export function runHerald(args, { env = {}, timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(HERALD_BIN, args, {
      env: { ...cleanEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`herald ${args.join(' ')} did not exit within ${timeoutMs} ms; stdout: ${stdout} stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); children.delete(child); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The environment without HERALD_* variables of the caller (HERALD_BIN included). */
function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
  return env;
}

/** A free loopback port, drawn by the kernel (used when --listen HOST:0 is refused). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, HOST, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

let portZeroWorks = null;  // learnt on the first start: does herald accept --listen HOST:0?

/**
 * Starts herald on 127.0.0.1 (port 0 = let herald/the kernel choose) and waits for its
 * "herald listening on http://127.0.0.1:PORT" line. Returns a handle with `port`, `base`
 * (http://127.0.0.1:PORT), `stop()`, `kill()` and the collected `stderr()`.
 */
export async function startHerald(args = [], { env = {}, port = 0, timeoutMs = 10000 } = {}) {
  if (port === 0 && portZeroWorks !== false) {
    const h = await spawnHerald(args, env, 0, timeoutMs, true);
    if (h) { portZeroWorks = true; return h; }
    // herald refused port 0 (a known bug when this was written, see config.test.mjs):
    // fall back to a port drawn by the kernel.
    portZeroWorks = false;
  }
  for (let attempt = 0; ; attempt++) {
    const p = port || (await freePort());
    try {
      return await spawnHerald(args, env, p, timeoutMs, false);
    } catch (e) {
      if (port || attempt >= 4 || !/cannot listen/.test(e.message)) throw e;
    }
  }
}

async function spawnHerald(args, env, port, timeoutMs, probingZero) {
  const r = await launch(['--listen', `${HOST}:${port}`, ...args], { env, timeoutMs });
  if (r.herald) return r.herald;
  if (probingZero && r.code === 2 && /listen/.test(r.stderr)) return null;
  throw new Error(`herald exited early (code ${r.code}, signal ${r.signal})\n  command: ${HERALD_BIN} ` +
    `${['--listen', `${HOST}:${port}`, ...args].join(' ')}\n  stdout: ${r.stdout}\n  stderr: ${r.stderr}`);
}

/**
 * Starts herald with exactly `args` (no --listen added) and waits for its
 * "herald listening on http://127.0.0.1:PORT (broker: ...)" line. Resolves with
 * { herald: handle } once listening, or { code, signal, stdout, stderr } if it exits first;
 * rejects if neither happens within timeoutMs (the process is then killed).
 */
export function launch(args, { env = {}, timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(HERALD_BIN, args, {
      env: { ...cleanEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let stdout = '', stderr = '', settled = false;
    const exited = new Promise((res) => child.on('close', (code, signal) => {
      children.delete(child);
      res({ code, signal });
    }));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      if (settled) return;
      settled = true;
      reject(new Error(`herald did not report its port within ${timeoutMs} ms\n  command: ${HERALD_BIN} ${args.join(' ')}` +
        `\n  stdout: ${stdout}\n  stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`cannot start ${HERALD_BIN}: ${e.message}`));
    });
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
      if (settled) return;
      const m = /herald listening on (https?):\/\/127\.0\.0\.1:(\d+) \(broker: ([^)]+)\)/.exec(stdout);
      if (!m) return;
      settled = true;
      clearTimeout(timer);
      const p = Number(m[2]);
      resolve({
        herald: {
          proc: child,
          pid: child.pid,
          port: p,
          base: `${m[1]}://${HOST}:${p}`,
          args,
          exited,
          stdout: () => stdout,
          stderr: () => stderr,
          /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit status. */
          async stop(graceMs = 3000) {
            if (child.exitCode !== null || child.signalCode !== null) return exited;
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
            const r = await exited;
            clearTimeout(t);
            return r;
          },
          /** SIGKILL (a crash, for the restart tests). */
          async kill() {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
            return exited;
          },
        },
      });
    });
    exited.then(({ code, signal }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Let the pipes drain.
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    });
  });
}

// ---------------------------------------------------------------------------------------
// HTTP

/** A keep-alive agent (close it with agent.destroy()). */
export function keepAliveAgent(maxSockets = 8) {
  return new http.Agent({ keepAlive: true, maxSockets });
}

/**
 * One HTTP request. `body`: string/Buffer sent as is, anything else JSON-encoded.
 * Resolves with { status, headers, text, json } (json undefined when not JSON).
 */
export function request(h, method, pathAndQuery, { headers = {}, body, agent, timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    let payload;
    const hdrs = { ...headers };
    if (body !== undefined) {
      payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
      if (!Object.keys(hdrs).some((k) => k.toLowerCase() === 'content-type')) hdrs['Content-Type'] = 'application/json';
      hdrs['Content-Length'] = Buffer.byteLength(payload);
    }
    const req = http.request({
      host: HOST, port: h.port, method, path: pathAndQuery, headers: hdrs,
      agent: agent ?? false,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${pathAndQuery}: no reply within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

export const get = (h, p, opts) => request(h, 'GET', p, opts);

/** POST /api/publish; resolves with the full response. */
export function publishRaw(h, channel, data, { event, agent, apiKey, path: p = '/api/publish' } = {}) {
  const body = { channel, data };
  if (event !== undefined) body.event = event;
  const headers = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
  return request(h, 'POST', p, { body, agent, headers });
}

/** POST /api/publish that must succeed; resolves with {offset, cursor}. */
export async function publish(h, channel, data, opts = {}) {
  const r = await publishRaw(h, channel, data, opts);
  if (r.status !== 200 || !r.json || typeof r.json.offset !== 'number' || typeof r.json.cursor !== 'string')
    throw new Error(`publish to ${channel} failed: ${r.status} ${r.text}`);
  return r.json;
}

/** Query string of repeated channel parameters plus extra parameters. */
export function query(channels, extra = {}) {
  const qs = new URLSearchParams();
  for (const c of [].concat(channels)) qs.append('channel', c);
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null) qs.append(k, String(v));
  return qs.toString();
}

/** GET /poll; resolves with the full response plus `elapsed` ms. */
export async function poll(h, channels, { since, timeout, limit, agent, headers, timeoutMs = 30000 } = {}) {
  const t0 = Date.now();
  const r = await request(h, 'GET', `/poll?${query(channels, { since, timeout, limit })}`, { agent, headers, timeoutMs });
  r.elapsed = Date.now() - t0;
  return r;
}

/** GET /api/history. */
export function history(h, channel, { since, limit, agent, apiKey } = {}) {
  const headers = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
  return request(h, 'GET', `/api/history?${query(channel, { since, limit })}`, { agent, headers });
}

/** GET /metrics parsed into a Map 'name{labels}' -> number. */
export async function metrics(h) {
  const r = await get(h, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics: ${r.status} ${r.text}`);
  return parseMetrics(r.text);
}

export function parseMetrics(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return m;
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then throws). */
export async function waitFor(fn, { timeoutMs = 5000, intervalMs = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Rejects after `ms` with a message unless `promise` settles first. */
export function withTimeout(promise, ms, what = 'operation') {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms); }),
  ]);
}

// ---------------------------------------------------------------------------------------
// curl

/** Runs curl with `args`; resolves with { code, stdout, stderr } (never rejects on exit codes). */
export function curl(args, { timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile('curl', args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number' && !err.killed && err.signal === null) return reject(err);
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr, killed: !!(err && err.killed) });
      });
    child.on('error', reject);
  });
}

/** curl an HTTP request; resolves with { status, body, json, headersText, code }. */
export async function curlHttp(h, method, pathAndQuery, { body, headers = {}, maxTime = 10 } = {}) {
  const args = ['-sS', '-X', method, '--max-time', String(maxTime), '-D', '-', '-o', '-'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  if (body !== undefined) {
    args.push('-H', 'Content-Type: application/json',
      '--data-binary', typeof body === 'string' ? body : JSON.stringify(body));
  }
  args.push(`${h.base}${pathAndQuery}`);
  const r = await curl(args, { timeoutMs: (maxTime + 5) * 1000 });
  const sep = r.stdout.indexOf('\r\n\r\n');
  const headersText = sep >= 0 ? r.stdout.slice(0, sep) : r.stdout;
  const bodyText = sep >= 0 ? r.stdout.slice(sep + 4) : '';
  const sm = /^HTTP\/1\.1 (\d{3})/.exec(headersText);
  let json;
  try { json = JSON.parse(bodyText); } catch { json = undefined; }
  return { status: sm ? Number(sm[1]) : null, body: bodyText, json, headersText, code: r.code, stderr: r.stderr };
}

// ---------------------------------------------------------------------------------------
// Raw socket helpers

/**
 * Sends `bytes` on a fresh TCP connection and collects everything until the server closes
 * it (or `timeoutMs`). Resolves with { data, closed, error }: `closed` tells whether the
 * server ended the connection within the time.
 */
export function rawExchange(h, bytes, { timeoutMs = 5000, endAfterWrite = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(h.port, HOST);
    const chunks = [];
    let done = false, error = null;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: Buffer.concat(chunks).toString('latin1'), closed, error });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('connect', () => {
      sock.write(bytes);
      if (endAfterWrite) sock.end();
    });
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', (e) => { error = e.code || e.message; finish(true); });
    sock.on('close', () => finish(true));
    sock.on('end', () => finish(true));
  });
}

/** Parses an HTTP/1.1 response (head + Content-Length body) out of raw text. */
export function parseRawResponse(text) {
  const sep = text.indexOf('\r\n\r\n');
  if (sep < 0) return null;
  const lines = text.slice(0, sep).split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]);
  if (!m) return null;
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = text.slice(sep + 4);
  if (headers['content-length'] !== undefined) body = body.slice(0, Number(headers['content-length']));
  let json;
  try { json = JSON.parse(body); } catch { json = undefined; }
  return { status: Number(m[1]), headers, body, json };
}

// ---------------------------------------------------------------------------------------
// Raw SSE reader

/**
 * An SSE client over node:net that sees every byte: the response head, `retry:` lines,
 * comments, id-only blocks. The stream is parsed incrementally into blocks (one per blank
 * line): { id, event, data, retry, comments, raw }; fields absent from a block are
 * undefined. A non-200 reply is read whole into `body`/`json`.
 */
/**
 * Applies one SSE field line (not empty, not a comment) to the event block being built,
 * by the EventSource rules; false for a field EventSource ignores.
 */
export function applySseField(b, line) {
  const i = line.indexOf(':');
  const field = i < 0 ? line : line.slice(0, i);
  let value = i < 0 ? '' : line.slice(i + 1);
  if (value.startsWith(' ')) value = value.slice(1);
  if (field === 'data') b.data = b.data === undefined ? value : `${b.data}\n${value}`;
  else if (field === 'id') b.id = value;
  else if (field === 'event') b.event = value;
  else if (field === 'retry') b.retry = value;
  else return false;
  return true;
}

export class SSEReader {
  /**
   * @param h herald handle
   * @param opts.channels channel name(s); opts.since, opts.lastEventId; opts.extra query
   *   params; opts.path (default /sse); opts.headers extra request headers;
   *   opts.pauseReading: never read the socket (slow reader).
   */
  static open(h, opts) {
    const r = new SSEReader(h, opts);
    return r.ready;
  }

  constructor(h, { channels, since, lastEventId, extra = {}, headers = {}, pathQuery, pauseReading = false, timeoutMs = 10000 }) {
    this.blocks = [];
    this.waiters = [];
    this.closed = false;
    this.status = null;
    this.headers = null;
    this.head = '';
    this.body = '';
    this.bytes = 0;
    this._buf = '';
    this._headBuf = Buffer.alloc(0);
    this._decoder = new StringDecoder('utf8');
    this._cur = null;
    const target = pathQuery ?? `/sse?${query(channels, { since, ...extra })}`;
    let reqText = `GET ${target} HTTP/1.1\r\nHost: ${HOST}:${h.port}\r\nAccept: text/event-stream\r\n`;
    if (lastEventId !== undefined) reqText += `Last-Event-ID: ${lastEventId}\r\n`;
    for (const [k, v] of Object.entries(headers)) reqText += `${k}: ${v}\r\n`;
    reqText += '\r\n';
    this.socket = net.connect({ port: h.port, host: HOST });
    this.socket.setNoDelay(true);
    this.ready = new Promise((resolve, reject) => {
      this._resolveReady = resolve;
      this._rejectReady = reject;
    });
    this.socket.on('data', (chunk) => this._onData(chunk));
    this.socket.on('error', (e) => { this.error = e; });
    this.socket.on('close', () => this._onClose());
    if (pauseReading) {
      // A reader that never reads: the request goes out, nothing is taken from the
      // kernel until resumeReading().
      this.socket.pause();
      this.socket.on('connect', () => {
        this.socket.write(reqText);
        const resolve = this._resolveReady;
        this._resolveReady = this._rejectReady = null;
        resolve(this);
      });
      return;
    }
    this._readyTimer = setTimeout(() => {
      this._rejectReady?.(new Error(`SSE ${target}: no response head within ${timeoutMs} ms`));
      this.socket.destroy();
    }, timeoutMs);
    this.socket.on('connect', () => this.socket.write(reqText));
  }

  /** Starts reading a stream opened with pauseReading. */
  resumeReading() {
    this.socket.resume();
  }

  _onData(chunk) {
    this.bytes += chunk.length;
    if (this.status === null) {
      this._headBuf = Buffer.concat([this._headBuf, chunk]);
      const sep = this._headBuf.indexOf('\r\n\r\n');
      if (sep < 0) return;
      this.head = this._headBuf.subarray(0, sep).toString('latin1');
      const lines = this.head.split('\r\n');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]);
      this.status = m ? Number(m[1]) : 0;
      this.headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        this.headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const rest = this._headBuf.subarray(sep + 4);
      this._headBuf = null;
      if (this.status !== 200) {
        this.body = rest.toString('utf8');
        this._maybeFinishErrorBody();
        return;
      }
      clearTimeout(this._readyTimer);
      this._resolveReady?.(this);
      this._resolveReady = this._rejectReady = null;
      if (rest.length) this._parse(this._decoder.write(rest));
      return;
    }
    if (this.status !== 200) {
      this.body += chunk.toString('utf8');
      this._maybeFinishErrorBody();
      return;
    }
    this._parse(this._decoder.write(chunk));
  }

  _maybeFinishErrorBody(force = false) {
    const len = this.headers && this.headers['content-length'];
    if (!force && (len === undefined || Buffer.byteLength(this.body) < Number(len))) return;
    try { this.json = JSON.parse(this.body); } catch { this.json = undefined; }
    clearTimeout(this._readyTimer);
    this._resolveReady?.(this);
    this._resolveReady = this._rejectReady = null;
  }

  _parse(text) {
    this._buf += text;
    let start = 0;
    for (;;) {
      const nl = this._buf.indexOf('\n', start);
      if (nl < 0) break;
      let line = this._buf.slice(start, nl);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      start = nl + 1;
      this._line(line);
    }
    this._buf = this._buf.slice(start);
  }

  _line(line) {
    if (line === '') {
      if (this._cur) {
        const b = this._cur;
        this._cur = null;
        this._push(b);
      }
      return;
    }
    const b = (this._cur ??= { id: undefined, event: undefined, data: undefined, retry: undefined, comments: [], raw: '' });
    b.raw += line + '\n';
    if (line.startsWith(':')) { b.comments.push(line.slice(1)); return; }
    if (!applySseField(b, line)) (b.unknown ??= []).push(line);
  }

  _push(b) {
    const w = this.waiters.shift();
    if (w) w.resolve(b); else this.blocks.push(b);
  }

  _onClose() {
    this.closed = true;
    clearTimeout(this._readyTimer);
    if (this.status !== null && this.status !== 200) this._maybeFinishErrorBody(true);
    this._rejectReady?.(new Error(`SSE connection closed before a response head (${this.error?.code ?? 'no error'})`));
    this._resolveReady = this._rejectReady = null;
    for (const w of this.waiters.splice(0)) w.reject(Object.assign(new Error('SSE stream closed'), { closed: true }));
  }

  /** The next block (any kind); rejects on timeout or when the stream closed. */
  next(timeoutMs = 5000) {
    if (this.blocks.length) return Promise.resolve(this.blocks.shift());
    if (this.closed) return Promise.reject(Object.assign(new Error('SSE stream closed'), { closed: true }));
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (b) => { clearTimeout(t); resolve(b); },
        reject: (e) => { clearTimeout(t); reject(e); },
      };
      const t = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no SSE block within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** The next block carrying data (skips retry, comments, id-only blocks); tracks lastId. */
  async nextEvent(timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const b = await this.next(Math.max(1, deadline - Date.now()));
      if (b.id !== undefined) this.lastId = b.id;
      if (b.data !== undefined) return b;
    }
  }

  /** Reads `n` data events. */
  async events(n, timeoutMs = 5000) {
    const out = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < n) out.push(await this.nextEvent(Math.max(1, deadline - Date.now())));
    return out;
  }

  /** Reads blocks until `pred(block)` is true; returns every block read. */
  async until(pred, timeoutMs = 5000) {
    const out = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const b = await this.next(Math.max(1, deadline - Date.now()));
      if (b.id !== undefined) this.lastId = b.id;
      out.push(b);
      if (pred(b)) return out;
    }
  }

  /** Resolves once the server closed the connection (or rejects after timeoutMs). */
  waitClosed(timeoutMs = 5000) {
    if (this.closed) return Promise.resolve();
    return withTimeout(new Promise((resolve) => this.socket.once('close', resolve)), timeoutMs, 'waiting for the SSE connection to close');
  }

  close() {
    this.socket.destroy();
  }
}

/** Opens an SSE stream and reads up to (and including) the position-only `id:` block that
 * follows the replay: resolves with { reader, preamble } where preamble lists those blocks. */
export async function openSynced(h, opts, timeoutMs = 5000) {
  const reader = await SSEReader.open(h, opts);
  if (reader.status !== 200) throw new Error(`SSE open: ${reader.status} ${reader.body}`);
  const preamble = await reader.until((b) => b.id !== undefined && b.data === undefined && b.event === undefined, timeoutMs);
  return { reader, preamble };
}

// ---------------------------------------------------------------------------------------
// A TCP proxy that can drop every connection (to make EventSource reconnect by itself).

export function startProxy(targetPort) {
  return new Promise((resolve, reject) => {
    const pairs = new Set();
    const heads = [];  // the first bytes each client sent (its request head)
    const server = net.createServer((client) => {
      const upstream = net.connect(targetPort, HOST);
      const pair = { client, upstream };
      pairs.add(pair);
      client.once('data', (c) => heads.push(c.toString('latin1')));
      const drop = () => { client.destroy(); upstream.destroy(); pairs.delete(pair); };
      client.on('error', drop); upstream.on('error', drop);
      client.on('close', drop); upstream.on('close', drop);
      client.pipe(upstream); upstream.pipe(client);
    });
    server.on('error', reject);
    server.listen(0, HOST, () => {
      resolve({
        port: server.address().port,
        get connections() { return pairs.size; },
        heads,
        dropAll() { for (const p of [...pairs]) { p.client.destroy(); p.upstream.destroy(); pairs.delete(p); } },
        close() { this.dropAll(); return new Promise((r) => server.close(() => r())); },
      });
    });
  });
}

// ---------------------------------------------------------------------------------------
// Cursor layout (src/protocol/cursor.hpp): version byte 1; per channel: tag (FNV-1a 32 of
// the name, LE), epoch (u32 LE), offset (LEB128); check (2 bytes, FNV-1a of all before,
// truncated, LE); base64url without padding.

export function fnv1a(bytes) {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h >>> 0;
}

export const channelTag = (name) => fnv1a(Buffer.from(name, 'utf8'));

export function encodeCursor(entries) {
  const raw = [1];
  const u32 = (v) => { for (let i = 0; i < 4; i++) raw.push((v >>> (8 * i)) & 0xff); };
  for (const e of entries) {
    u32(e.tag >>> 0);
    u32(e.epoch >>> 0);
    let v = BigInt(e.offset);
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v) b |= 0x80;
      raw.push(b);
    } while (v);
  }
  const check = fnv1a(raw);
  raw.push(check & 0xff, (check >>> 8) & 0xff);
  return Buffer.from(raw).toString('base64url');
}

export function decodeCursor(token) {
  const raw = [...Buffer.from(token, 'base64url')];
  if (raw.length < 3 || raw[0] !== 1) return null;
  const body = raw.length - 2;
  const check = fnv1a(raw.slice(0, body));
  if (raw[body] !== (check & 0xff) || raw[body + 1] !== ((check >>> 8) & 0xff)) return null;
  const entries = [];
  let p = 1;
  while (p < body) {
    if (body - p < 8) return null;
    const u32 = () => { const v = (raw[p] | raw[p + 1] << 8 | raw[p + 2] << 16 | raw[p + 3] << 24) >>> 0; p += 4; return v; };
    const tag = u32(), epoch = u32();
    let offset = 0n, shift = 0n;
    for (;;) {
      if (p >= body) return null;
      const b = raw[p++];
      offset |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
      shift += 7n;
    }
    entries.push({ tag, epoch, offset });
  }
  return entries;
}

// The compact one-channel form (raw formats): 15-24 base64url characters as one bit
// string: marker 10, tag (32), epoch (32), offset (6n - 78 bits, as few characters as
// fit), check (12 bits: FNV-1a of the first n - 2 characters).
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export function encodeCompactCursor({ tag, epoch, offset }) {
  const off = BigInt(offset);
  let n = 15;
  while (6 * n - 78 < 64 && off >= (1n << BigInt(6 * n - 78))) n++;
  let bits = 2n;
  bits = (bits << 32n) | BigInt(tag >>> 0);
  bits = (bits << 32n) | BigInt(epoch >>> 0);
  bits = (bits << BigInt(6 * n - 78)) | off;
  let body = '';
  for (let i = n - 3; i >= 0; i--) body += B64[Number((bits >> BigInt(6 * i)) & 63n)];
  const check = fnv1a(Buffer.from(body, 'latin1')) & 0xfff;
  return body + B64[check >> 6] + B64[check & 63];
}

/** Either form: [{tag, epoch, offset}] or null (the compact form is checked by re-encoding). */
export function decodeAnyCursor(token) {
  const first = B64.indexOf(token[0]);
  if (first >> 4 !== 2) return decodeCursor(token);
  let bits = 0n;
  for (const c of token.slice(0, -2)) bits = (bits << 6n) | BigInt(B64.indexOf(c));
  const k = BigInt(6 * token.length - 78);
  const e = { tag: Number((bits >> (k + 32n)) & 0xffffffffn), epoch: Number((bits >> k) & 0xffffffffn), offset: bits & ((1n << k) - 1n) };
  return encodeCompactCursor(e) === token ? [e] : null;
}

/** A deterministic pseudo-random generator (mulberry32), seeded per test for reproducibility. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------
// Memory of a running herald

/** The resident set size of process `pid`, in bytes (Linux /proc). */
/** True when the suite runs against the AddressSanitizer build (scripts/sanitize.sh sets
 * ASAN_OPTIONS for it): its quarantine of freed memory and its shadow pages add tens of MiB
 * to an RSS that a normal build keeps to a few, so memory bounds allow for it. */
export const UNDER_ASAN = Boolean(process.env.ASAN_OPTIONS);

export function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

/** Samples herald's RSS every 25 ms until stop(); peak() is the highest seen. */
export function rssSampler(h) {
  let peak = rssBytes(h.pid);
  const iv = setInterval(() => { try { peak = Math.max(peak, rssBytes(h.pid)); } catch { /* exited */ } }, 25);
  return { peak: () => peak, stop: () => clearInterval(iv) };
}

/**
 * Writes `buf` to `socket` `times` times, stopping once a write has not been taken within
 * `stallMs` (the peer's receive window is full): resolves with the bytes taken.
 */
export async function writeUntilStalled(socket, buf, times, stallMs = 2000) {
  let taken = 0;
  for (let i = 0; i < times && !socket.destroyed; i++) {
    const ok = await new Promise((resolve) => {
      const tm = setTimeout(() => resolve(false), stallMs);
      socket.write(buf, (err) => { clearTimeout(tm); resolve(!err); });
    });
    if (!ok) break;
    taken += buf.length;
  }
  return taken;
}
