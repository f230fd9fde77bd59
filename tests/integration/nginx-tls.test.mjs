// herald behind nginx terminating TLS with HTTP/2 towards the clients, run with the
// shipped deploy/nginx-tls.conf (ports, node addresses and certificate paths replaced)
// and a certificate made by `openssl req -x509`.
//
// Asserted: the API (curl --http2), SSE and long polling over HTTP/2 (node:http2): 30 SSE
// streams on one HTTP/2 connection each receive every message, in order, unbuffered; a
// long poll on the same connection; WebSocket (wss, HTTP/1.1) through the same port;
// plain HTTP on the other port is redirected to https; the file routes as
// deploy/nginx.conf does (the same location blocks).
//
// Only loopback; every wait bounded; the processes started are herald, nginx (killed by
// PID with its workers), openssl and curl.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http2 from 'node:http2';
import WebSocket from 'ws';
import * as H from './lib/herald.mjs';
import { makeCert, startNginxTls, DEPLOY_DIR } from './lib/tls.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-nginx-tls-'));
fs.chmodSync(dir, 0o755);  // nginx workers may run as another user when started as root
let h, nginx, session;
const STREAMS = 30;

before(async () => {
  const c = makeCert(dir, 'herald-front');
  fs.chmodSync(c.keyFile, 0o644);
  h = await H.startHerald(['--threads', '2', '--client-publish', 'true']);
  nginx = await startNginxTls([h.port], c);
  session = http2.connect(nginx.base, { rejectUnauthorized: false });
  session.on('error', () => {});
});

after(async () => {
  session?.destroy();
  await nginx?.stop();
  await h?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** One request on the shared HTTP/2 session; resolves with { status, headers, text }. */
function h2(method, p, body) {
  return new Promise((resolve, reject) => {
    const headers = { ':method': method, ':path': p };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const s = session.request(headers, { endStream: body === undefined });
    let res = {}, text = '';
    s.setEncoding('utf8');
    s.on('response', (hd) => { res = hd; });
    s.on('data', (d) => { text += d; });
    s.on('end', () => resolve({ status: res[':status'], headers: res, text }));
    s.on('error', reject);
    s.setTimeout(15000, () => s.close(http2.constants.NGHTTP2_CANCEL));
    if (body !== undefined) s.end(JSON.stringify(body));
  });
}

/** An SSE stream on the shared session: collects the data of its events. */
function sse(channel) {
  const st = { data: [], buf: '', status: 0, arrivals: [] };
  st.stream = session.request({ ':method': 'GET', ':path': `/sse?channel=${channel}`, accept: 'text/event-stream' });
  st.stream.setEncoding('utf8');
  st.stream.on('response', (hd) => { st.status = hd[':status']; st.headers = hd; });
  st.stream.on('data', (d) => {
    st.buf += d;
    let i;
    while ((i = st.buf.indexOf('\n')) >= 0) {
      const line = st.buf.slice(0, i);
      st.buf = st.buf.slice(i + 1);
      if (line.startsWith('data: ')) { st.data.push(JSON.parse(line.slice(6)).data); st.arrivals.push(Date.now()); }
    }
  });
  st.stream.on('error', () => {});
  return st;
}

test('API over HTTP/2 through nginx (curl --http2)', async () => {
  const r = await H.curl(['-sk', '--http2', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `${nginx.base}/healthz`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '2 200');
  const p = await H.curl(['-sk', '--http2', '-X', 'POST', '-H', 'Content-Type: application/json',
    '--data-binary', '{"channel":"h2:api","data":"via h2"}', `${nginx.base}/api/publish`]);
  assert.equal(JSON.parse(p.stdout).offset, 1, p.stdout);
  const hist = await h2('GET', '/api/history?channel=h2:api');
  assert.equal(hist.status, 200);
  assert.deepEqual(JSON.parse(hist.text).messages.map((m) => m.data), ['via h2']);
});

test(`${STREAMS} SSE streams and a long poll share one HTTP/2 connection; each stream gets every message, unbuffered`, async () => {
  const streams = Array.from({ length: STREAMS }, () => sse('h2:fan'));
  await H.waitFor(() => streams.every((s) => s.status === 200), { what: 'every stream answered', timeoutMs: 10000 });
  await H.waitFor(async () => (await H.metrics(h)).get('herald_connections{transport="sse"}') === STREAMS,
    { what: `${STREAMS} SSE subscribers at herald`, timeoutMs: 10000 });
  const poll = h2('GET', '/poll?channel=h2:fan&timeout=10');
  await H.sleep(200);
  for (let i = 0; i < 5; i++) {
    const t = Date.now();
    await h2('POST', '/api/publish', { channel: 'h2:fan', data: i });
    // Each event arrives on every stream while the next has not been published yet.
    await H.waitFor(() => streams.every((s) => s.data.length === i + 1), { what: `event ${i} on every stream`, timeoutMs: 5000 });
    assert.ok(Math.max(...streams.map((s) => s.arrivals[i])) - t < 3000);
  }
  for (const s of streams) assert.deepEqual(s.data, [0, 1, 2, 3, 4]);
  const pr = await poll;
  assert.equal(pr.status, 200);
  assert.equal(JSON.parse(pr.text).messages[0].data, 0);
  for (const s of streams) s.stream.close(http2.constants.NGHTTP2_CANCEL);
});

test('WebSocket (wss, HTTP/1.1) through the same TLS port', async () => {
  const ws = new WebSocket(`wss://127.0.0.1:${nginx.port}/ws`, { rejectUnauthorized: false });
  const got = [];
  ws.on('message', (d) => got.push(JSON.parse(d.toString())));
  await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
  ws.send(JSON.stringify({ id: 1, method: 'subscribe', channel: 'h2:ws' }));
  await H.waitFor(() => got.some((m) => m.id === 1), { what: 'subscribe reply' });
  await h2('POST', '/api/publish', { channel: 'h2:ws', data: 'to wss' });
  await H.waitFor(() => got.some((m) => m.push?.data === 'to wss'), { what: 'push over wss' });
  ws.close();
});

test('plain HTTP on the other port is redirected to https', async () => {
  const r = await H.request({ port: nginx.httpPort }, 'GET', '/sse?channel=x');
  assert.equal(r.status, 301);
  assert.match(r.headers.location, /^https:\/\/127\.0\.0\.1\/sse\?channel=x$/);
});

test('deploy/nginx-tls.conf routes as deploy/nginx.conf (same upstreams and location blocks)', () => {
  const blocks = (text) => {
    const out = [];
    const re = /^ {4}(upstream \w+ \{|map [^\n]+\{)[\s\S]*?^ {4}\}$|^ {8}location [^\n]+\{[\s\S]*?^ {8}\}$/gm;
    for (const m of text.matchAll(re)) out.push(m[0]);
    return out;
  };
  const plain = blocks(fs.readFileSync(path.join(DEPLOY_DIR, 'nginx.conf'), 'utf8'));
  const tls = blocks(fs.readFileSync(path.join(DEPLOY_DIR, 'nginx-tls.conf'), 'utf8'))
    .filter((b) => !b.includes('return 301'));
  assert.ok(plain.length >= 10, `found ${plain.length} blocks`);
  assert.deepEqual(tls, plain);
});
