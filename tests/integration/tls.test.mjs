// TLS on the listening port (--tls-cert, --tls-key), with certificates made by
// `openssl req -x509` in a temporary directory.
//
// Asserted: the API (node https and curl), SSE, long polling and WebSocket (wss, npm ws)
// work over TLS; SIGHUP reloads the certificate (a new connection sees the new one) while
// an SSE stream opened before stays open and keeps receiving; a certificate that does not
// load keeps the old one (logged); hostile clients: a handshake that never finishes is cut
// after --tls-handshake-timeout, plain HTTP gets a clear 400 tls_required, garbage bytes
// are closed; each is counted in herald_tls_handshakes_total{result} and herald serves
// others meanwhile.
//
// Only loopback; every wait is bounded; the only processes started are openssl, curl and
// herald (stopped in after()).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import https from 'node:https';
import WebSocket from 'ws';
import * as H from './lib/herald.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-tls-'));
const CERT = path.join(dir, 'cert.pem');
const KEY = path.join(dir, 'key.pem');
let h;

/** A self-signed certificate for 127.0.0.1 with `cn`; returns { cert, key } (PEM text). */
function makeCert(cn) {
  const c = path.join(dir, `${cn}.crt`), k = path.join(dir, `${cn}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', k, '-out', c, '-days', '2',
    '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore', timeout: 30000 });
  return { cert: fs.readFileSync(c, 'utf8'), key: fs.readFileSync(k, 'utf8') };
}

function install({ cert, key }) {
  fs.writeFileSync(CERT, cert);
  fs.writeFileSync(KEY, key);
}

/** One HTTPS request (certificate not verified: it is self-signed). */
function req(method, p, { body, timeoutMs = 10000, agent = false } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const r = https.request({
      host: H.HOST, port: h.port, method, path: p, rejectUnauthorized: false, agent,
      headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {},
    }, (res) => {
      const cert = res.socket.getPeerCertificate();
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(t);
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, text, json, cert });
      });
    });
    const t = setTimeout(() => r.destroy(new Error(`${method} ${p}: no reply in ${timeoutMs} ms`)), timeoutMs);
    r.on('error', (e) => { clearTimeout(t); reject(e); });
    if (payload) r.write(payload);
    r.end();
  });
}

async function publish(channel, data) {
  const r = await req('POST', '/api/publish', { body: { channel, data } });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function tlsMetrics() {
  const r = await req('GET', '/metrics');
  const m = H.parseMetrics(r.text);
  const get = (res) => m.get(`herald_tls_handshakes_total{result="${res}"}`);
  return { ok: get('ok'), timeout: get('timeout'), plain_http: get('plain_http'), error: get('error') };
}

/** The subject CN of the certificate a new TLS connection is shown. */
function peerCN() {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: H.HOST, port: h.port, rejectUnauthorized: false }, () => {
      const cn = s.getPeerCertificate().subject.CN;
      s.end();
      resolve(cn);
    });
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error('no handshake in 5 s')));
  });
}

/** An SSE stream over TLS: collects the data lines; `closed` tells whether it ended. */
function openSse(channel) {
  const st = { data: [], buf: '', closed: false, head: '' };
  st.socket = tls.connect({ host: H.HOST, port: h.port, rejectUnauthorized: false }, () => {
    st.socket.write(`GET /sse?channel=${channel} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
  });
  st.socket.setEncoding('utf8');
  st.socket.on('data', (d) => {
    st.buf += d;
    let i;
    while ((i = st.buf.indexOf('\n')) >= 0) {
      const line = st.buf.slice(0, i).replace(/\r$/, '');
      st.buf = st.buf.slice(i + 1);
      if (line.startsWith('data: ')) st.data.push(JSON.parse(line.slice(6)));
      else if (!st.head && line.startsWith('HTTP/1.1')) st.head = line;
    }
  });
  st.socket.on('error', () => {});
  st.socket.on('close', () => { st.closed = true; });
  st.cert = () => st.socket.getPeerCertificate().subject.CN;
  return st;
}

const certA = makeCert('herald-a');
const certB = makeCert('herald-b');

before(async () => {
  install(certA);
  h = await H.startHerald(['--threads', '2', '--tls-cert', CERT, '--tls-key', KEY, '--tls-handshake-timeout', '1',
    '--client-publish', 'true']);
  assert.match(h.base, /^https:/);
});

after(async () => {
  if (h) await h.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('API over HTTPS: node https and curl', async () => {
  const r = await req('GET', '/healthz');
  assert.equal(r.status, 200);
  assert.equal(r.cert.subject.CN, 'herald-a');
  const p = await publish('tls:api', { n: 1 });
  assert.equal(p.offset, 1);
  const c = await H.curl(['-sk', '--http1.1', `${h.base}/api/history?channel=tls:api`]);
  assert.equal(c.code, 0, c.stderr);
  assert.deepEqual(JSON.parse(c.stdout).messages.map((m) => m.data), [{ n: 1 }]);
  // Keep-alive: several requests on one TLS connection.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
  for (let i = 0; i < 5; i++) assert.equal((await req('GET', '/healthz', { agent })).status, 200);
  agent.destroy();
});

test('ALPN: h2 first, http/1.1 for a client that offers only it (HTTP/2 itself: h2.test.mjs)', async () => {
  const alpn = (protocols) => new Promise((resolve, reject) => {
    const s = tls.connect({ host: H.HOST, port: h.port, rejectUnauthorized: false, ALPNProtocols: protocols },
      () => { resolve(s.alpnProtocol); s.end(); });
    s.on('error', reject);
  });
  assert.equal(await alpn(['h2', 'http/1.1']), 'h2');
  assert.equal(await alpn(['http/1.1']), 'http/1.1');
  const c = await H.curl(['-sk', '--http2', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `${h.base}/healthz`]);
  assert.equal(c.stdout, '2 200', c.stderr);
});

test('SSE and long polling over HTTPS', async () => {
  const sse = openSse('tls:sse');
  await H.waitFor(() => sse.head, { what: 'SSE head' });
  assert.equal(sse.head, 'HTTP/1.1 200 OK');
  const pollP = req('GET', '/poll?channel=tls:sse&timeout=10');
  await H.sleep(200);
  for (let i = 0; i < 20; i++) await publish('tls:sse', i);
  await H.waitFor(() => sse.data.length === 20, { what: '20 SSE events' });
  assert.deepEqual(sse.data.map((m) => m.data), [...Array(20).keys()]);
  const poll = await pollP;
  assert.equal(poll.status, 200);
  assert.ok(poll.json.messages.length >= 1);
  assert.equal(poll.json.messages[0].data, 0);
  sse.socket.destroy();
});

test('POST /api/stream over HTTPS: a body read piecewise through TLS', async () => {
  const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ i, pad: 'p'.repeat(1000) })).join('\n') + '\n';
  const r = await new Promise((resolve, reject) => {
    const q = https.request({
      host: H.HOST, port: h.port, method: 'POST', path: '/api/stream?channel=tls:ingest', rejectUnauthorized: false,
      agent: false, headers: { 'Content-Type': 'application/x-ndjson' },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d) => { text += d; }).on('end', () => resolve({ status: res.statusCode, text }));
    });
    q.on('error', reject);
    // In pieces (chunked), some of them cutting a line.
    for (let i = 0; i < lines.length; i += 7000) q.write(lines.slice(i, i + 7000));
    q.end();
  });
  assert.equal(r.status, 200, r.text);
  const hist = await req('GET', '/api/history?channel=tls:ingest&limit=100');
  assert.deepEqual(hist.json.messages.filter((m) => m.event !== 'end').map((m) => m.data.i), [...Array(50).keys()]);
});

test('WebSocket over TLS (wss)', async () => {
  const ws = new WebSocket(`wss://127.0.0.1:${h.port}/ws`, { rejectUnauthorized: false });
  const got = [];
  ws.on('message', (d) => got.push(JSON.parse(d.toString())));
  await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
  ws.send(JSON.stringify({ id: 1, method: 'subscribe', channel: 'tls:ws' }));
  await H.waitFor(() => got.some((m) => m.id === 1), { what: 'subscribe reply' });
  ws.send(JSON.stringify({ id: 2, method: 'publish', channel: 'tls:ws', data: 'over wss' }));
  const big = 'x'.repeat(40000);  // more than one TLS record each way
  ws.send(JSON.stringify({ id: 3, method: 'publish', channel: 'tls:ws', data: big }));
  await H.waitFor(() => got.some((m) => m.id === 3), { what: 'publish replies' });  // then the API's, in order
  await publish('tls:ws', 'from the API');
  await H.waitFor(() => got.filter((m) => m.push?.channel === 'tls:ws').length === 3, { what: 'three pushes' })
    .catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(got).slice(0, 500)}`); });
  assert.deepEqual(got.filter((m) => m.push?.channel === 'tls:ws').map((m) => m.push.data), ['over wss', big, 'from the API']);
  ws.close();
});

test('SIGHUP reloads the certificate; an open stream stays and keeps receiving; a bad file keeps the old one', async () => {
  const sse = openSse('tls:reload');
  await H.waitFor(() => sse.head, { what: 'SSE head' });
  assert.equal(sse.cert(), 'herald-a');
  await publish('tls:reload', 'before');
  await H.waitFor(() => sse.data.length === 1, { what: 'first event' });

  install(certB);
  process.kill(h.pid, 'SIGHUP');
  await H.waitFor(() => /event=tls_reload result=ok/.test(h.stderr()), { what: 'reload logged' });
  assert.equal(await peerCN(), 'herald-b');
  await publish('tls:reload', 'after');
  await H.waitFor(() => sse.data.length === 2, { what: 'event after the reload' });
  assert.equal(sse.closed, false);
  assert.equal(sse.cert(), 'herald-a');  // the open connection kept its certificate

  // A broken pair (the key of A with the certificate of B): logged, B stays.
  fs.writeFileSync(KEY, certA.key);
  process.kill(h.pid, 'SIGHUP');
  await H.waitFor(() => /event=tls_reload result=kept_old/.test(h.stderr()), { what: 'failed reload logged' });
  assert.equal(await peerCN(), 'herald-b');
  fs.writeFileSync(CERT, 'not a certificate');
  process.kill(h.pid, 'SIGHUP');
  await H.waitFor(() => (h.stderr().match(/result=kept_old/g) || []).length === 2, { what: 'second failed reload' });
  assert.equal(await peerCN(), 'herald-b');
  await publish('tls:reload', 'still');
  await H.waitFor(() => sse.data.length === 3, { what: 'event after failed reloads' });
  assert.deepEqual(sse.data.map((m) => m.data), ['before', 'after', 'still']);
  sse.socket.destroy();
  install(certB);
});

test('hostile: a stalled handshake is cut, plain HTTP gets a clear 400, garbage is closed; all counted', async () => {
  const before = await tlsMetrics();
  // Stalled: nothing at all, and half a ClientHello.
  const stalled = [];
  for (const bytes of [Buffer.alloc(0), Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])]) {
    const t0 = Date.now();
    stalled.push(new Promise((resolve) => {
      const s = net.connect(h.port, H.HOST, () => { if (bytes.length) s.write(bytes); });
      s.on('error', () => {});
      s.on('close', () => resolve(Date.now() - t0));
      s.resume();
      setTimeout(() => s.destroy(), 8000);
    }));
  }
  // Plain HTTP to the TLS port.
  const plain = await H.rawExchange(h, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  assert.ok(plain.closed);
  assert.match(plain.data.toString(), /^HTTP\/1\.1 400 Bad Request/);
  assert.match(plain.data.toString(), /"code":"tls_required"/);
  // Garbage.
  const garbage = await H.rawExchange(h, Buffer.from('\x00\x01\x02garbage\xff\xfe'.repeat(50), 'latin1'));
  assert.ok(garbage.closed);
  // Others are served meanwhile.
  assert.equal((await req('GET', '/healthz')).status, 200);
  const cut = await Promise.all(stalled);
  for (const ms of cut) assert.ok(ms >= 800 && ms < 5000, `stalled handshake cut after ${ms} ms`);
  const m = await tlsMetrics();
  assert.equal(m.timeout - before.timeout, 2);
  assert.equal(m.plain_http - before.plain_http, 1);
  assert.ok(m.error - before.error >= 1);
  assert.ok(m.ok > before.ok);
});

test('hostile: 60 stalled handshakes from one address (127.0.0.3): the ones over --max-connections-per-ip are closed at once, others are served meanwhile', async () => {
  const g = await H.startHerald(['--threads', '1', '--tls-cert', CERT, '--tls-key', KEY, '--tls-handshake-timeout', '2',
    '--max-connections-per-ip', '20']);
  try {
    const t0 = Date.now();
    const closedAt = await Promise.all(Array.from({ length: 60 }, () => new Promise((resolve) => {
      const s = net.connect({ port: g.port, host: H.HOST, localAddress: '127.0.0.3' });
      s.on('error', () => {});
      s.on('close', () => resolve(Date.now() - t0));
      s.resume();
      setTimeout(() => s.destroy(), 8000);
    })).map(async (p, i) => {
      if (i === 59) {
        // While they stall: a good client from another address is served at once.
        await H.sleep(300);
        const r = await new Promise((resolve, reject) => {
          const q = https.get({ host: H.HOST, port: g.port, path: '/healthz', rejectUnauthorized: false, agent: false },
            (res) => { res.resume(); res.on('end', () => resolve({ status: res.statusCode, ms: Date.now() - t0 })); });
          q.on('error', reject);
        });
        assert.equal(r.status, 200);
        assert.ok(r.ms < 1800, `served after ${r.ms} ms`);
      }
      return p;
    }));
    const early = closedAt.filter((ms) => ms < 1500).length;
    const cut = closedAt.filter((ms) => ms >= 1500 && ms < 6000).length;
    assert.equal(early, 40, JSON.stringify(closedAt));  // over the limit: closed at accept
    assert.equal(cut, 20);                             // the rest: cut by the handshake timeout
    const m = H.parseMetrics((await new Promise((resolve, reject) => {
      https.get({ host: H.HOST, port: g.port, path: '/metrics', rejectUnauthorized: false, agent: false }, (res) => {
        let t = ''; res.on('data', (d) => { t += d; }); res.on('end', () => resolve(t));
      }).on('error', reject);
    })));
    assert.equal(m.get('herald_tls_handshakes_total{result="timeout"}'), 20);
    assert.equal(m.get('herald_limit_refusals_total{limit="connections_per_ip"}'), 40);
  } finally {
    await g.stop();
  }
});

test('--tls-cert without --tls-key, or a file that does not load, stops the start with a clear error', async () => {
  const a = await H.runHerald(['--listen', '127.0.0.1:0', '--tls-cert', CERT]);
  assert.equal(a.code, 2);
  assert.match(a.stderr, /tls-key/);
  const b = await H.runHerald(['--listen', '127.0.0.1:0', '--tls-cert', path.join(dir, 'missing.pem'), '--tls-key', KEY]);
  assert.notEqual(b.code, 0);
  assert.match(b.stderr, /cannot load the TLS certificate .*missing\.pem/);
});
