// HTTP/1.1 message framing and request targets (RFC 9112, RFC 9110), on raw sockets so
// that every byte of the exchange is visible: a Transfer-Encoding that does not end in
// chunked is refused and the connection closed (its body is never read as a request),
// Expect: 100-continue is answered before the body is read, absolute-form targets are
// routed by their path and query, and HTTP/1.1 without exactly one Host is refused.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import * as H from './lib/herald.mjs';

const test = (name, fn) => nodeTest(name, { timeout: 30000 }, fn);

let h;
before(async () => { h = await H.startHerald(['--threads', '1', '--request-timeout', '5']); });
after(async () => { await h?.stop(); });

/**
 * A raw connection that collects what the server sends: `until(pred)` waits (bounded)
 * for the received text to satisfy `pred`, `closed` resolves when the server ends it.
 */
function connect() {
  const sock = net.connect(h.port, H.HOST);
  let text = '';
  const waiters = new Set();
  let ended = false;
  const wake = () => { for (const w of [...waiters]) w(); };
  sock.on('data', (d) => { text += d.toString('latin1'); wake(); });
  const closed = new Promise((resolve) => {
    const done = () => { ended = true; wake(); resolve(); };
    sock.on('end', done);
    sock.on('close', done);
    sock.on('error', done);
  });
  return {
    sock,
    closed,
    get text() { return text; },
    get ended() { return ended; },
    write: (s) => sock.write(s),
    until(pred, ms = 3000) {
      return new Promise((resolve) => {
        const check = () => {
          if (pred(text) || ended) { clearTimeout(timer); waiters.delete(check); resolve(pred(text)); }
        };
        const timer = setTimeout(() => { waiters.delete(check); resolve(pred(text)); }, ms);
        waiters.add(check);
        check();
      });
    },
    destroy: () => sock.destroy(),
  };
}

/** Every HTTP response (status and head) in `text`, in order, 100 Continue included. */
function responses(text) {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3})[^\r]*\r\n((?:[^\r]+\r\n)*)\r\n/g)].map((m) => ({
    status: Number(m[1]),
    head: m[2].toLowerCase(),
  }));
}

/** Sends `bytes`, and expects one 400 and a closed connection (nothing answered after it). */
async function assertRefusedAndClosed(bytes, status = 400, what = bytes.split('\r\n')[0]) {
  const c = connect();
  c.write(bytes);
  const closed = await Promise.race([c.closed.then(() => true), H.sleep(3000).then(() => false)]);
  c.destroy();
  const rs = responses(c.text);
  assert.ok(closed, `${what}: the connection stays open after ${JSON.stringify(c.text)}`);
  assert.equal(rs.length, 1, `${what}: expected exactly one response, got ${JSON.stringify(c.text)}`);
  assert.equal(rs[0].status, status, `${what}: ${JSON.stringify(c.text)}`);
  assert.match(rs[0].head, /connection: close/, `${what}: the refusal says it closes`);
  const body = c.text.slice(c.text.indexOf('\r\n\r\n') + 4);
  assert.equal(typeof JSON.parse(body).error.code, 'string', `${what}: JSON error body`);
}

const smuggled = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';

test('a Transfer-Encoding that does not end in chunked: 400, closed, its body never read as a request', async () => {
  await assertRefusedAndClosed(`POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n${smuggled}`);
  await assertRefusedAndClosed(`POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n${smuggled}`);
  await assertRefusedAndClosed(`POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n${smuggled}`);
  await assertRefusedAndClosed(
    `POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`);
  // A GET with one too: the framing is broken whatever the method.
  await assertRefusedAndClosed(`GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n${smuggled}`);
  // HTTP/1.0 has no Transfer-Encoding (RFC 9112 6.1: faulty framing).
  await assertRefusedAndClosed(`POST /api/publish HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`);
});

test('Transfer-Encoding: chunked works; a coding herald cannot decode before it: 501 and closed', async () => {
  const body = JSON.stringify({ channel: 'conf:te', data: 1 });
  const c = connect();
  c.write(`POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` +
    `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
  await c.until((t) => /\r\n\r\n\{.*\}$/s.test(t));
  c.destroy();
  const rs = responses(c.text);
  assert.deepEqual(rs.map((r) => r.status), [200], JSON.stringify(c.text));
  // The framing is sound, but the body would be read as if it were not gzipped.
  await assertRefusedAndClosed(`POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n` +
    `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`, 501);
});

test('Expect: 100-continue with a body: 100 Continue before the body is sent, then the reply', async () => {
  const body = JSON.stringify({ channel: 'conf:expect', data: { n: 1 } });
  for (const framing of ['length', 'chunked']) {
    const c = connect();
    const len = framing === 'length' ? `Content-Length: ${body.length}` : 'Transfer-Encoding: chunked';
    c.write(`POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${len}\r\nExpect: 100-continue\r\n\r\n`);
    const t0 = Date.now();
    const got100 = await c.until((t) => t.includes('\r\n\r\n'), 2000);
    assert.ok(got100, `${framing}: no interim response within 2 s (${JSON.stringify(c.text)})`);
    assert.equal(c.text, 'HTTP/1.1 100 Continue\r\n\r\n', `${framing}: exactly a 100 Continue before the body`);
    assert.ok(Date.now() - t0 < 1000, `${framing}: 100 Continue took ${Date.now() - t0} ms`);
    c.write(framing === 'length' ? body : `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
    await c.until((t) => /\r\n\r\n\{.*\}$/s.test(t.slice(25)));
    c.destroy();
    const rs = responses(c.text);
    assert.deepEqual(rs.map((r) => r.status), [100, 200], `${framing}: ${JSON.stringify(c.text)}`);
    assert.match(c.text, /"offset":\d+/);
  }
});

test('Expect: 100-continue on a bodiless request: answered at once, no 100', async () => {
  for (const req of [
    'GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n',
    'POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n',
  ]) {
    const c = connect();
    const t0 = Date.now();
    c.write(req);
    await c.until((t) => /\r\n\r\n\{.*\}$/s.test(t), 3000);
    c.destroy();
    const rs = responses(c.text);
    assert.equal(rs.length, 1, `${req.split('\r\n')[0]}: ${JSON.stringify(c.text)}`);
    assert.notEqual(rs[0].status, 100);
    assert.ok(Date.now() - t0 < 1000, `${req.split('\r\n')[0]}: took ${Date.now() - t0} ms`);
  }
});

test('curl with a body over its expect threshold gets 100 Continue (no one-second stall)', async () => {
  const big = JSON.stringify({ channel: 'conf:curl', data: 'x'.repeat(2000) });
  const t0 = Date.now();
  const r = await H.curl(['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Expect: 100-continue',
    '-H', 'Content-Type: application/json', '--expect100-timeout', '5', '--data-binary', big, `${h.base}/api/publish`]);
  assert.equal(r.stdout, '200', r.stderr);
  assert.ok(Date.now() - t0 < 2000, `curl took ${Date.now() - t0} ms: herald did not answer the expectation`);
});

test('an expectation other than 100-continue: 417 and closed', async () => {
  await assertRefusedAndClosed('POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 200-ok\r\n\r\n{}', 417);
});

test('absolute-form targets are routed by their path and query', async () => {
  const c = connect();
  c.write(`GET http://127.0.0.1:${h.port}/healthz HTTP/1.1\r\nHost: 127.0.0.1:${h.port}\r\n\r\n`);
  await c.until((t) => t.includes('{"status":"ok"}'));
  assert.equal(responses(c.text)[0]?.status, 200, JSON.stringify(c.text));
  // Keep-alive goes on, and an absolute target with no path is "/".
  c.write(`GET http://localhost:${h.port}/sse?channel=conf:abs HTTP/1.1\r\nHost: localhost\r\n\r\n`);
  await c.until((t) => /text\/event-stream/.test(t));
  c.destroy();
  const rs = responses(c.text);
  assert.deepEqual(rs.map((r) => r.status), [200, 200], JSON.stringify(c.text));
  assert.match(rs[1].head, /content-type: text\/event-stream/);

  const p = await H.rawExchange(h, `GET http://x/poll?channel=conf:abs&timeout=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  const pr = H.parseRawResponse(p.data);
  assert.equal(pr?.status, 200, JSON.stringify(p.data));
  assert.ok(Array.isArray(pr.json.messages));
  const root = await H.rawExchange(h, `GET http://x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.equal(H.parseRawResponse(root.data)?.status, 200, JSON.stringify(root.data.slice(0, 200)));
});

test('HTTP/1.1 without exactly one Host: 400 and closed; HTTP/1.0 needs none', async () => {
  await assertRefusedAndClosed('GET /healthz HTTP/1.1\r\n\r\n');
  await assertRefusedAndClosed('GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
  await assertRefusedAndClosed('GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n');
  const r = await H.rawExchange(h, 'GET /healthz HTTP/1.0\r\n\r\n');
  assert.equal(H.parseRawResponse(r.data)?.status, 200, JSON.stringify(r.data));
  const m = await H.metrics(h);
  assert.ok(m.get('herald_bad_connections_total') >= 3, 'the refusals are counted');
});
