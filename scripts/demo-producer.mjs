#!/usr/bin/env node
// The demo page's backend (started by `make run` through scripts/run-demo.sh): what an
// application's own server does next to herald, in a few lines of Node (18+, no packages).
//
//   POST /ask {"question":"…"}  → {"channel":"demo:answer-…"}: streams a canned answer
//        into herald (POST /api/stream, text/plain) at a model's pace (~40 tokens/s), as
//        a backend piping a model's output would; stops when herald answers "aborted"
//        (the page's stop button).
//   GET /token?user=NAME → {"token":"…"}: a connection token (HS256, `sub` = NAME, grants
//        on demo:*) so that presence can name the demo's users. Only with --token-secret.
//
// Usage: node scripts/demo-producer.mjs [--port 8081] [--herald http://127.0.0.1:8080]
//        [--token-secret-file FILE] [--tokens-per-second 40] [--api-key KEY]
// Demo only: it listens on loopback and answers pages of any loopback origin.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

const arg = (name, def) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : def; };
const PORT = Number(arg('port', process.env.DEMO_BACKEND_PORT ?? 8081));
const HERALD = new URL(arg('herald', process.env.HERALD_URL ?? 'http://127.0.0.1:8080'));
const secretFile = arg('token-secret-file', process.env.DEMO_TOKEN_SECRET_FILE);
const SECRET = secretFile ? fs.readFileSync(secretFile, 'utf8').replace(/\n$/, '') : null;
const RATE = Number(arg('tokens-per-second', 40));
const API_KEY = arg('api-key', process.env.HERALD_API_KEY || undefined);

const ANSWER = `A push server keeps one promise: every message reaches every subscriber, once and in order, ` +
  `even when the network does not cooperate. herald gives each channel gap-free offsets and hands every ` +
  `client a cursor, so a reader that drops mid-answer comes back with the cursor it holds and gets exactly ` +
  `what it missed: not a character twice, not a character lost. That is what you are watching now. ` +
  `Press "drop the connection" and the text goes on from where it was, over WebSocket, Server-Sent Events ` +
  `or long polling alike. Press "stop" and herald tells the producer, this small script, that the reader ` +
  `wants no more; a real backend would cancel the model call there and stop paying for tokens. ` +
  `When the answer is complete, the stream ends with a state the readers can trust: completed, aborted, ` +
  `or error with a reason, and a reader that comes back after the end is told so at once instead of waiting. ` +
  `Streams are ordinary channels, so their history, their cursors and their resume are the ones every other ` +
  `message uses; only the end is new. Ask again to stream another answer.`;

/** Splits a text into model-like tokens: words with their following space, punctuation apart. */
const tokens = (text) => text.match(/[A-Za-z']+\s*|[^A-Za-z'\s]+\s*/g) ?? [];

function b64url(x) { return Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url'); }
function token(user) {
  const body = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: user, exp: Math.floor(Date.now() / 1000) + 3600, subscribe: ['demo:*'], publish: ['demo:*'] })}`;
  return `${body}.${crypto.createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

/** Streams ANSWER into `channel`; resolves with herald's reply ({state:…}). */
function produce(channel, question) {
  return new Promise((resolve) => {
    const req = http.request({ host: HERALD.hostname, port: HERALD.port || 80, method: 'POST',
      path: `/api/stream?channel=${encodeURIComponent(channel)}`,
      headers: { 'Content-Type': 'text/plain; charset=utf-8', ...(API_KEY ? { Authorization: `Bearer ${API_KEY}` } : {}) } });
    let done = false;
    req.on('response', (res) => {
      let b = '';
      res.setEncoding('utf8').on('data', (c) => { b += c; }).on('end', () => {
        done = true;
        let r; try { r = JSON.parse(b); } catch { r = { state: 'error', reason: b }; }
        resolve(r);
      });
    });
    req.on('error', (e) => { done = true; resolve({ state: 'error', reason: e.message }); });
    req.flushHeaders();
    const list = tokens(`You asked: "${question}". ${ANSWER}`);
    let i = 0;
    const next = () => {
      if (done) return;  // herald answered: stopped (or failed); the model call would be cancelled here
      if (i === list.length) { req.end(); return; }
      req.write(list[i++]);
      setTimeout(next, (1000 / RATE) * (0.5 + Math.random()));
    };
    next();
  });
}

const loopbackOrigin = (o) => /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(o ?? '');

const server = http.createServer((req, res) => {
  const origin = req.headers.origin;
  if (loopbackOrigin(origin)) {
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Allow-Headers', 'Content-Type');
    res.setHeader('Vary', 'Origin');
  }
  const url = new URL(req.url, 'http://x');
  const reply = (status, obj) => { res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }); res.end(JSON.stringify(obj)); };
  if (req.method === 'OPTIONS') { res.writeHead(204); res.end(); return; }
  if (req.method === 'GET' && url.pathname === '/token') {
    const user = url.searchParams.get('user') ?? '';
    if (!SECRET) return reply(404, { error: 'no --token-secret-file: the demo runs without tokens' });
    if (!/^[A-Za-z0-9_.-]{1,32}$/.test(user)) return reply(400, { error: 'user: 1-32 of [A-Za-z0-9_.-]' });
    return reply(200, { token: token(user) });
  }
  if (req.method === 'POST' && url.pathname === '/ask') {
    let body = '';
    req.setEncoding('utf8').on('data', (c) => { if (body.length < 4096) body += c; }).on('end', () => {
      let q = '';
      try { q = String(JSON.parse(body).question ?? '').slice(0, 200); } catch { /* empty question */ }
      const channel = `demo:answer-${Date.now().toString(36)}-${crypto.randomBytes(3).toString('hex')}`;
      reply(200, { channel });
      produce(channel, q || 'what does herald do?').then((r) => console.log(`demo-producer: ${channel} ${r.state ?? r.error?.state ?? 'error'}${r.error ? ' ' + r.error.message : ''}`));
    });
    return;
  }
  reply(404, { error: 'not found' });
});
server.listen(PORT, '127.0.0.1', () => console.log(`demo-producer: http://127.0.0.1:${server.address().port} → herald ${HERALD.origin}${SECRET ? ', tokens on' : ''}`));
// Gone with the process that started it (scripts/run-demo.sh).
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 1000).unref();
