// HTTP/2 (--http2, on by default): over TLS through ALPN h2, and on plain HTTP with prior
// knowledge. Clients: Node's http2 module and curl (neither written for herald).
//
// Asserted: the API and static endpoints over h2; 30 event streams on one connection, each
// getting every message in order, published on the same connection; a Last-Event-ID resume
// over h2 gets exactly the missed messages; a held poll is answered by a publication, and
// a cursor taken over h2 resumes over HTTP/1.1; /ws and POST /api/stream are reset with
// HTTP_1_1_REQUIRED; --http2=false offers only http/1.1. Bad input: a header block past
// --max-header-size gets 431 (the connection goes on), one past four times that ends the
// connection with GOAWAY; a body past --max-body-size gets 413; a request that never ends
// is reset after --request-timeout; a client that resets streams as fast as it opens them
// gets GOAWAY ENHANCE_YOUR_CALM; a stream whose reader never reads is cut at
// --max-queued-bytes while the other streams of its connection go on; garbage after the
// preface ends the connection. Each is counted and herald serves others meanwhile.
//
// Only loopback; every wait is bounded; the processes started are openssl, curl and herald.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import http2 from 'node:http2';
import * as H from './lib/herald.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-h2-'));
const CERT = path.join(dir, 'cert.pem');
const KEY = path.join(dir, 'key.pem');
let h; // TLS, HTTP/2 on
let plain; // plain HTTP, HTTP/2 by prior knowledge

before(async () => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', KEY, '-out', CERT, '-days', '2',
    '-subj', '/CN=herald-h2', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore', timeout: 30000 });
  h = await H.startHerald(['--tls-cert', CERT, '--tls-key', KEY, '--request-timeout', '2', '--max-header-size', '8192',
    '--max-body-size', '8192', '--max-message-size', '2048', '--max-queued-bytes', '65536']);
  h.base = `https://${H.HOST}:${h.port}`;
  plain = await H.startHerald(['--request-timeout', '2']);
});

after(async () => {
  await h?.stop();
  await plain?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function connect(url = `https://${H.HOST}:${h.port}`, opts = {}) {
  const s = http2.connect(url, { rejectUnauthorized: false, ...opts });
  s.on('error', () => {});
  return s;
}

/** One request on `session`; resolves { status, headers, text, json } or rejects with the reset code. */
function request(session, headers, body, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const r = session.request(headers, { endStream: body === undefined });
    const chunks = [];
    let res;
    const t = setTimeout(() => { r.close(); reject(new Error(`${headers[':path']}: no reply in ${timeoutMs} ms`)); }, timeoutMs);
    r.on('response', (hd) => { res = hd; });
    r.on('data', (c) => chunks.push(c));
    r.on('end', () => {
      clearTimeout(t);
      const text = Buffer.concat(chunks).toString('utf8');
      let json;
      try { json = JSON.parse(text); } catch { json = undefined; }
      resolve({ status: res?.[':status'], headers: res, text, json });
    });
    r.on('close', () => {
      if (r.rstCode) { clearTimeout(t); reject(Object.assign(new Error(`reset ${r.rstCode}`), { rstCode: r.rstCode })); }
    });
    r.on('error', () => {});
    if (body !== undefined) r.end(body);
  });
}

const publish = (session, channel, data) => request(session, {
  ':method': 'POST', ':path': '/api/publish', 'content-type': 'application/json',
}, JSON.stringify({ channel, data }));

/** An event stream on `session`: its events ({ id, data }) as they come. */
function openSse(session, pathAndQuery, headers = {}) {
  const st = { events: [], buf: '', ended: false, status: 0, id: '' };
  st.stream = session.request({ ':path': pathAndQuery, accept: 'text/event-stream', ...headers });
  st.stream.setEncoding('utf8');
  st.stream.on('response', (hd) => { st.status = hd[':status']; });
  st.stream.on('data', (d) => {
    st.buf += d;
    let i;
    while ((i = st.buf.indexOf('\n\n')) >= 0) {
      const block = st.buf.slice(0, i);
      st.buf = st.buf.slice(i + 2);
      const ev = {};
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) { ev.id = line.slice(4); st.id = ev.id; }
        if (line.startsWith('data: ')) ev.data = JSON.parse(line.slice(6));
        if (line.startsWith('event: ')) ev.event = line.slice(7);
      }
      if (ev.data || ev.event) st.events.push(ev);
      if (ev.id !== undefined && !ev.data) st.synced = true;
    }
  });
  st.stream.on('close', () => { st.ended = true; st.rstCode = st.stream.rstCode; });
  st.stream.on('error', () => {});
  return st;
}

async function m(server = h) {
  const s = connect(server === h ? undefined : `http://${H.HOST}:${server.port}`);
  try {
    return H.parseMetrics((await request(s, { ':path': '/metrics' })).text);
  } finally {
    s.close();
  }
}

test('ALPN gives h2; the API and health endpoints answer over it (node http2 and curl)', async () => {
  const s = connect();
  await new Promise((resolve) => s.once('connect', resolve));
  assert.equal(s.alpnProtocol, 'h2');
  const health = await request(s, { ':path': '/healthz' });
  assert.equal(health.status, 200);
  assert.equal(health.json.status, 'ok');
  const p = await publish(s, 'h2:api', 'one');
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json.offset, 1);
  const hist = await request(s, { ':path': '/api/history?channel=h2:api' });
  assert.deepEqual(hist.json.messages.map((x) => x.data), ['one']);
  const bad = await request(s, { ':path': '/api/history?channel=' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'invalid_channel');
  s.close();
  const c = await H.curl(['-sk', '--http2', '-w', '\n%{http_version} %{http_code}', `${h.base}/api/history?channel=h2:api`]);
  assert.match(c.stdout, /"data":"one"[\s\S]*\n2 200$/, c.stderr);
});

test('30 event streams on one HTTP/2 connection: each receives every message, in order', async () => {
  const s = connect();
  const streams = Array.from({ length: 30 }, () => openSse(s, '/sse?channel=h2:fan'));
  await H.waitFor(() => streams.every((x) => x.synced), { what: '30 streams synced' });
  assert.ok(streams.every((x) => x.status === 200));
  const metrics = await m();
  assert.equal(metrics.get('herald_connections{transport="h2"}') >= 1, true);
  for (let i = 0; i < 20; i++) assert.equal((await publish(s, 'h2:fan', `m${i}`)).status, 200);
  await H.waitFor(() => streams.every((x) => x.events.length === 20), { what: 'every stream has 20 events' });
  for (const x of streams) assert.deepEqual(x.events.map((e) => e.data.data), Array.from({ length: 20 }, (_, i) => `m${i}`));
  s.destroy(); // close() would wait for the event streams to end
  await H.waitFor(async () => (await m()).get('herald_connections{transport="sse"}') === 0, { what: 'the streams gone with their connection' });
});

test('an SSE resume over HTTP/2 with Last-Event-ID gets exactly the missed messages; its cursor resumes a poll over HTTP/1.1', async () => {
  const s = connect();
  const a = openSse(s, '/sse?channel=h2:resume');
  await H.waitFor(() => a.synced, { what: 'synced' });
  await publish(s, 'h2:resume', 'a1');
  await H.waitFor(() => a.events.length === 1);
  a.stream.close();
  const last = a.id;
  for (const d of ['a2', 'a3']) await publish(s, 'h2:resume', d);
  const b = openSse(s, '/sse?channel=h2:resume', { 'last-event-id': last });
  await H.waitFor(() => b.events.length === 2, { what: 'replay' });
  assert.deepEqual(b.events.map((e) => e.data.data), ['a2', 'a3']);
  await publish(s, 'h2:resume', 'a4');
  await H.waitFor(() => b.events.length === 3);
  const cursor = b.events[1].id; // after a3
  b.stream.close();
  s.close();
  const c = await H.curl(['-sk', '--http1.1', `${h.base}/poll?channel=h2:resume&since=${encodeURIComponent(cursor)}&timeout=1`]);
  assert.deepEqual(JSON.parse(c.stdout).messages.map((x) => x.data), ['a4']);
});

test('a held poll over HTTP/2 is answered by a publication; timeout=1 answers empty', async () => {
  const s = connect();
  const first = await request(s, { ':path': '/poll?channel=h2:poll&timeout=0' });
  assert.equal(first.status, 200);
  const held = request(s, { ':path': `/poll?channel=h2:poll&since=${encodeURIComponent(first.json.cursor)}&timeout=10` });
  await H.waitFor(async () => (await m()).get('herald_connections{transport="poll"}') >= 1, { what: 'poll held' });
  await publish(s, 'h2:poll', 'p1');
  const r = await held;
  assert.deepEqual(r.json.messages.map((x) => x.data), ['p1']);
  const empty = await request(s, { ':path': `/poll?channel=h2:poll&since=${encodeURIComponent(r.json.cursor)}&timeout=1` });
  assert.deepEqual(empty.json.messages, []);
  assert.equal(empty.headers['cache-control'], 'no-store');
  s.close();
});

test('/ws and POST /api/stream are reset with HTTP_1_1_REQUIRED; the connection goes on', async () => {
  const s = connect();
  await assert.rejects(request(s, { ':path': '/ws' }), (e) => e.rstCode === http2.constants.NGHTTP2_HTTP_1_1_REQUIRED);
  await assert.rejects(request(s, { ':method': 'POST', ':path': '/api/stream?channel=h2:x', 'content-type': 'text/plain' }, 'tok'),
    (e) => e.rstCode === http2.constants.NGHTTP2_HTTP_1_1_REQUIRED);
  assert.equal((await request(s, { ':path': '/healthz' })).status, 200);
  s.close();
});

test('limits: 431 for a header block past the limit, 413 for a body past it; four times the header limit ends the connection', async () => {
  const s = connect();
  const before = await m();
  const big = await request(s, { ':path': '/healthz', 'x-big': 'a'.repeat(9000) });
  assert.equal(big.status, 431);
  assert.equal(big.json.error.code, 'too_large');
  const body = await request(s, { ':method': 'POST', ':path': '/api/publish', 'content-type': 'application/json' },
    JSON.stringify({ channel: 'h2:big', data: 'x'.repeat(9000) }));
  assert.equal(body.status, 413);
  assert.equal((await request(s, { ':path': '/healthz' })).status, 200, 'the connection goes on');
  s.close();
  // Past four times the limit (in several fields, each under nghttp2's own bounds).
  const s2 = connect(undefined, { maxSendHeaderBlockLength: 1 << 20 });
  const huge = {};
  for (let i = 0; i < 6; i++) huge[`x-h${i}`] = 'b'.repeat(7000);
  const goaway = new Promise((resolve) => s2.once('goaway', (code) => resolve(code)));
  await assert.rejects(request(s2, { ':path': '/healthz', ...huge }));
  assert.equal(await H.withTimeout(goaway, 5000, 'GOAWAY'), http2.constants.NGHTTP2_PROTOCOL_ERROR);
  s2.destroy();
  const after = await m();
  assert.ok(after.get('herald_limit_refusals_total{limit="header_size"}') >= before.get('herald_limit_refusals_total{limit="header_size"}') + 2);
  assert.ok(after.get('herald_limit_refusals_total{limit="message_size"}') > before.get('herald_limit_refusals_total{limit="message_size"}'));
  assert.ok(after.get('herald_h2_goaways_total{reason="protocol_error"}') > before.get('herald_h2_goaways_total{reason="protocol_error"}'));
});

test('a request whose body never ends is reset after --request-timeout (counted)', async () => {
  const s = connect();
  const before = await m();
  const r = s.request({ ':method': 'POST', ':path': '/api/publish', 'content-type': 'application/json' }, { endStream: false });
  r.on('error', () => {});
  r.write('{"channel":');
  const code = await H.withTimeout(new Promise((resolve) => r.on('close', () => resolve(r.rstCode))), 8000, 'reset');
  assert.equal(code, http2.constants.NGHTTP2_CANCEL);
  const after = await m();
  assert.ok(after.get('herald_limit_refusals_total{limit="request_timeout"}') > before.get('herald_limit_refusals_total{limit="request_timeout"}'));
  assert.equal((await request(s, { ':path': '/healthz' })).status, 200);
  s.close();
});

test('rapid reset: a client resetting every stream it opens gets GOAWAY ENHANCE_YOUR_CALM; others are served', async () => {
  const before = await m();
  const s = connect();
  await new Promise((resolve) => s.once('connect', resolve));
  const goaway = new Promise((resolve) => s.once('goaway', (code) => resolve(code)));
  for (let i = 0; i < 300 && !s.destroyed && !s.closed; i++) {
    try {
      const r = s.request({ ':path': '/sse?channel=h2:flood' });
      r.on('error', () => {});
      r.close(http2.constants.NGHTTP2_CANCEL);
    } catch { break; }
    if (i % 50 === 49) await H.sleep(5);
  }
  assert.equal(await H.withTimeout(goaway, 5000, 'GOAWAY'), http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  s.destroy();
  const other = connect();
  assert.equal((await request(other, { ':path': '/healthz' })).status, 200);
  other.close();
  const after = await m();
  assert.ok(after.get('herald_h2_goaways_total{reason="flood"}') > before.get('herald_h2_goaways_total{reason="flood"}'));
  assert.ok(after.get('herald_h2_stream_resets_total{by="client"}') >= before.get('herald_h2_stream_resets_total{by="client"}') + 200);
  await H.waitFor(async () => (await m()).get('herald_connections{transport="sse"}') === 0, { what: 'no stream left' });
});

test('a stream whose reader never reads is cut at --max-queued-bytes; its connection\'s other streams go on', async () => {
  const before = await m();
  const s = connect();
  // The connection's window is the client's to open (browsers open megabytes): the stuck
  // stream then fills only its own 64 KiB stream window.
  await new Promise((resolve) => s.once('connect', resolve));
  s.setLocalWindowSize(8 << 20);
  const stuck = openSse(s, '/sse?channel=h2:slow');
  const live = openSse(s, '/sse?channel=h2:slow');
  await H.waitFor(() => stuck.synced && live.synced, { what: 'synced' });
  stuck.stream.pause(); // its window closes at 64 KiB; herald's queue for it grows to the cap
  stuck.stream.removeAllListeners('data');
  const pub = connect();
  const data = 'z'.repeat(2000);
  for (let i = 0; i < 120; i++) await publish(pub, 'h2:slow', data);
  await H.waitFor(() => stuck.ended, { what: 'the stuck stream cut', timeoutMs: 10000 });
  await H.waitFor(() => live.events.length >= 120, { what: 'the live stream got everything', timeoutMs: 10000 });
  const after = await m();
  assert.ok(after.get('herald_slow_disconnects_total') > before.get('herald_slow_disconnects_total'));
  s.destroy();
  pub.close();
});

test('plain HTTP: prior knowledge (curl, node) speaks HTTP/2; garbage after the preface ends the connection', async () => {
  const c = await H.curl(['-s', '--http2-prior-knowledge', '-w', '\n%{http_version} %{http_code}', `${plain.base}/healthz`]);
  assert.match(c.stdout, /\n2 200$/, c.stderr);
  const s = connect(`http://${H.HOST}:${plain.port}`);
  const st = openSse(s, '/sse?channel=h2:plain');
  await H.waitFor(() => st.synced, { what: 'synced' });
  await publish(s, 'h2:plain', 'hello');
  await H.waitFor(() => st.events.length === 1);
  assert.equal(st.events[0].data.data, 'hello');
  s.destroy();
  const before = await m(plain);
  const closed = await new Promise((resolve) => {
    const sock = net.connect(plain.port, H.HOST, () => sock.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + 'garbage'.repeat(20)));
    sock.on('data', () => {});
    sock.on('error', () => {});
    sock.on('close', () => resolve(true));
    setTimeout(() => { sock.destroy(); resolve(false); }, 5000);
  });
  assert.ok(closed, 'the connection was closed');
  const after = await m(plain);
  assert.ok(after.get('herald_bad_connections_total') > before.get('herald_bad_connections_total'));
});

test('a TLS handshake that never finishes and plain HTTP to the TLS port still get their answers with HTTP/2 on', async () => {
  const plainReply = await new Promise((resolve) => {
    const sock = net.connect(h.port, H.HOST, () => sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
    let text = '';
    sock.on('data', (d) => { text += d; });
    sock.on('error', () => {});
    sock.on('close', () => resolve(text));
    setTimeout(() => sock.destroy(), 5000);
  });
  assert.match(plainReply, /^HTTP\/1.1 400[\s\S]*tls_required/);
  const s = connect();
  assert.equal((await request(s, { ':path': '/healthz' })).status, 200);
  s.close();
});

test('--http2=false: ALPN offers only http/1.1 and the preface is refused on plain HTTP', async () => {
  const off = await H.startHerald(['--tls-cert', CERT, '--tls-key', KEY, '--http2', 'false']);
  try {
    const alpn = await new Promise((resolve, reject) => {
      const sock = tls.connect({ host: H.HOST, port: off.port, rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'] },
        () => { resolve(sock.alpnProtocol); sock.end(); });
      sock.on('error', reject);
    });
    assert.equal(alpn, 'http/1.1');
    const c = await H.curl(['-sk', '--http2', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `https://${H.HOST}:${off.port}/healthz`]);
    assert.equal(c.stdout, '1.1 200', c.stderr);
  } finally {
    await off.stop();
  }
});
