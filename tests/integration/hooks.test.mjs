// The backend hooks (--connect-hook, --subscribe-hook, --publish-hook) with a real HTTP
// backend of the test's own (lib/hook-backend.mjs) and real clients (`ws`, `eventsource`,
// plain HTTP for long polling). For each answer the backend can give — allow, refuse,
// rewrite, too slow, malformed, too large, HTTP 500, not there at all — the outcome is
// checked on WebSocket, SSE and long polling, and so is that other clients go on.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import * as H from './lib/herald.mjs';
import * as J from './lib/jwt.mjs';
import { wsClient, subscribed, eventSource } from './lib/chat-clients.mjs';
import { startHookBackend } from './lib/hook-backend.mjs';

const SECRET = J.secret();
const auth = (sub) => J.bearer(J.hs256({ sub, exp: J.now(600) }, SECRET));
let seq = 0;
const fresh = (what = '') => `room:${what}r${process.pid}x${++seq}`;
const TIMEOUT_MS = 300;

/** A WebSocket whose upgrade may be followed by a close: resolves {opened, code, reason}. */
function wsOutcome(h, headers = {}) {
  return new Promise((resolve, reject) => {
    const sock = new WebSocket(`ws://${H.HOST}:${h.port}/ws`, { headers });
    let opened = false;
    sock.on('open', () => { opened = true; });
    sock.on('close', (code, reason) => resolve({ opened, code, reason: reason.toString() }));
    sock.on('error', reject);
  });
}

const sse = (h, channels, headers = {}) => H.request(h, 'GET', `/sse?${H.query(channels)}`, { headers, timeoutMs: 5000 });
const poll = (h, channels, headers = {}) => H.poll(h, channels, { timeout: 1, headers, timeoutMs: 5000 });

function assertRefused(r, status, code) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.error?.code, code, r.text);
}

describe('backend hooks', () => {
  let backend, h, down;
  const open = [];
  before(async () => {
    backend = await startHookBackend({ slowMs: 3000 });
    const common = ['--token-key', `hs256:${SECRET}`, '--namespace', 'room:client_publish=true',
      '--hook-timeout', String(TIMEOUT_MS)];
    h = await H.startHerald([...common, '--connect-hook', backend.url('/connect'),
      '--subscribe-hook', backend.url('/subscribe'), '--publish-hook', backend.url('/publish')]);
    // A backend that is not there: a port nothing listens on.
    const closed = await H.freePort();
    down = await H.startHerald([...common, '--connect-hook', `http://127.0.0.1:${closed}/c`,
      '--subscribe-hook', `http://127.0.0.1:${closed}/s`, '--publish-hook', `http://127.0.0.1:${closed}/p`]);
  });
  after(async () => {
    for (const c of open) { try { c.sock?.terminate(); c.es?.close(); } catch { /* gone */ } }
    await h?.stop();
    await down?.stop();
    await backend?.stop();
  });

  it('an allowed connection and subscription go on, and the backend is told who, which client, which channel and which transport', async () => {
    const ch = fresh();
    const ws = await wsClient(h, auth('alice')); open.push(ws);
    await subscribed(ws, ch);
    const connect = backend.calls.find((c) => c.body.hook === 'connect' && c.body.user === 'alice' && c.body.transport === 'ws');
    assert.ok(connect, JSON.stringify(backend.calls));
    assert.equal(connect.path, '/connect');
    assert.equal(typeof connect.body.client, 'string');
    assert.ok(connect.body.client.length > 0);
    const sub = backend.calls.find((c) => c.body.hook === 'subscribe' && c.body.channel === ch);
    assert.deepEqual(sub.body, { hook: 'subscribe', user: 'alice', client: connect.body.client, transport: 'ws', channel: ch });

    const src = eventSource(h, ch); open.push(src);
    await src.opened;
    const sseCalls = backend.calls.filter((c) => c.body.transport === 'sse');
    assert.ok(sseCalls.some((c) => c.body.hook === 'connect' && c.body.user === null && c.body.channels?.[0] === ch), JSON.stringify(sseCalls));
    assert.ok(sseCalls.some((c) => c.body.hook === 'subscribe' && c.body.channel === ch));

    const p = await poll(h, ch);
    assert.equal(p.status, 200, p.text);
    assert.ok(backend.calls.some((c) => c.body.transport === 'poll' && c.body.hook === 'subscribe' && c.body.channel === ch));

    await H.publish(h, ch, { n: 1 });
    assert.deepEqual((await ws.until((m) => m.push)).push.data, { n: 1 });
    await H.waitFor(() => src.got.length === 1, { what: 'the SSE message' });
  });

  it('a refused connect closes the WebSocket with the backend\'s code and message, and answers SSE and long polling 403 with them', async () => {
    const ws = await wsOutcome(h, auth('deny-mallory'));
    assert.equal(ws.opened, true);
    assert.equal(ws.code, 4444);
    assert.match(ws.reason, /no entry for deny-mallory/);
    const s = await sse(h, fresh(), auth('deny-mallory'));
    assertRefused(s, 403, 'hook_refused');
    assert.equal(s.json.error.hook_code, 4444);
    assert.match(s.json.error.message, /no entry for deny-mallory/);
    const p = await poll(h, fresh(), auth('deny-mallory'));
    assertRefused(p, 403, 'hook_refused');
    assert.equal(p.json.error.hook_code, 4444);
    // Another user is not affected.
    const ok = await wsClient(h, auth('bob')); open.push(ok);
    await subscribed(ok, fresh());
  });

  it('a refused subscription is an error reply on WebSocket (the connection stays) and 403 on SSE and long polling', async () => {
    const ws = await wsClient(h, auth('carol')); open.push(ws);
    const denied = fresh('deny-');
    const r = await ws.cmd({ method: 'subscribe', channel: denied });
    assert.equal(r.error?.code, 'hook_refused', JSON.stringify(r));
    assert.equal(r.error.hook_code, 4444);
    assert.match(r.error.message, /no entry/);
    const fine = fresh();
    await subscribed(ws, fine);
    await H.publish(h, fine, 'still here');
    assert.equal((await ws.until((m) => m.push)).push.data, 'still here');
    assertRefused(await sse(h, [fresh(), denied]), 403, 'hook_refused');
    assertRefused(await poll(h, [denied]), 403, 'hook_refused');
  });

  it('the publish hook refuses, allows or replaces the data, on WebSocket and on POST /publish', async () => {
    const ch = fresh('rewrite-');
    const reader = await wsClient(h, auth('dave')); open.push(reader);
    await subscribed(reader, ch);
    const writer = await wsClient(h, auth('erin')); open.push(writer);
    const r = await writer.cmd({ method: 'publish', channel: ch, data: { text: 'hello' } });
    assert.ok(r.result && typeof r.result.offset === 'number', JSON.stringify(r));
    const push = (await reader.until((m) => m.push)).push;
    assert.deepEqual(push.data, { moderated: { text: 'hello' }, n: 1.5 });
    const hist = await H.history(h, ch);
    assert.match(hist.text, /"n":1\.50/, 'the backend\'s data as it wrote it, numbers spelled as they were');
    const call = backend.calls.find((c) => c.body.hook === 'publish' && c.body.channel === ch);
    assert.deepEqual(call.body, { hook: 'publish', user: 'erin', client: call.body.client, transport: 'ws', channel: ch, data: { text: 'hello' } });

    const denied = fresh('deny-');
    const d = await writer.cmd({ method: 'publish', channel: denied, data: 1 });
    assert.equal(d.error?.code, 'hook_refused', JSON.stringify(d));
    assert.equal(d.error.hook_code, 4444);
    assert.equal((await H.history(h, denied)).json.messages.length, 0, 'nothing published');

    const viaHttp = await H.request(h, 'POST', '/publish', { body: { channel: ch, data: 'typed', event: 'chat' } });
    assert.equal(viaHttp.status, 200, viaHttp.text);
    const p2 = (await reader.until((m) => m.push && m.push.event === 'chat')).push;
    assert.deepEqual(p2.data, { moderated: 'typed', n: 1.5 });
    assertRefused(await H.request(h, 'POST', '/publish', { body: { channel: denied, data: 'x' } }), 403, 'hook_refused');
    // The backend's own publishes (API key side) are not asked about.
    const before = backend.calls.length;
    await H.publish(h, denied, 'from the backend');
    assert.equal(backend.calls.length, before);
  });

  it('a backend slower than --hook-timeout gets 503 hook_timeout on every transport, in time, and the others go on', async () => {
    const slow = fresh('slow-');
    const ws = await wsClient(h, auth('frank')); open.push(ws);
    let t0 = Date.now();
    const r = await ws.cmd({ method: 'subscribe', channel: slow });
    const took = Date.now() - t0;
    assert.equal(r.error?.code, 'hook_timeout', JSON.stringify(r));
    assert.ok(took >= TIMEOUT_MS - 50 && took < 2000, `answered after ${took} ms`);
    const pub = await ws.cmd({ method: 'publish', channel: slow, data: 1 });
    assert.equal(pub.error?.code, 'hook_timeout');
    t0 = Date.now();
    assertRefused(await sse(h, slow), 503, 'hook_timeout');
    assertRefused(await poll(h, slow), 503, 'hook_timeout');
    assert.ok(Date.now() - t0 < 2000);
    const c = await wsOutcome(h, auth('slow-sam'));
    assert.equal(c.code, 4004, 'a connect hook that fails: reconnect later');
    // The connection pool is not stuck behind the slow calls.
    const fine = fresh();
    await subscribed(ws, fine);
  });

  it('a malformed, too large or failing reply is 502 hook_bad_reply (503 for HTTP 500), counted, and nothing else is affected', async () => {
    const ws = await wsClient(h, auth('gina')); open.push(ws);
    const bad = await ws.cmd({ method: 'subscribe', channel: fresh('bad-') });
    assert.equal(bad.error?.code, 'hook_bad_reply', JSON.stringify(bad));
    assert.match(bad.error.message, /not valid JSON/);
    const huge = await ws.cmd({ method: 'subscribe', channel: fresh('huge-') });
    assert.equal(huge.error?.code, 'hook_bad_reply');
    assert.match(huge.error.message, /exceeds 65536 bytes/);
    assertRefused(await sse(h, fresh('huge-')), 502, 'hook_bad_reply');
    assertRefused(await poll(h, fresh('bad-')), 502, 'hook_bad_reply');
    const e500 = await ws.cmd({ method: 'publish', channel: fresh('http500-'), data: 1 });
    assert.equal(e500.error?.code, 'hook_unavailable');
    assert.match(e500.error.message, /HTTP 500/);
    await subscribed(ws, fresh());
    const m = await H.metrics(h);
    assert.ok(m.get('herald_hook_requests_total{hook="subscribe",result="bad_reply"}') >= 4);
    assert.ok(m.get('herald_hook_requests_total{hook="subscribe",result="refuse"}') >= 1);
    assert.ok(m.get('herald_hook_requests_total{hook="subscribe",result="timeout"}') >= 1);
    assert.ok(m.get('herald_hook_requests_total{hook="publish",result="allow"}') >= 2);
    assert.ok(m.get('herald_hook_requests_total{hook="connect",result="allow"}') >= 1);
    assert.ok(m.get('herald_hook_duration_microseconds_total{hook="subscribe"}') > 0);
  });

  it('a backend that is down: WebSocket closed with 4004, SSE and long polling 503 hook_unavailable, at once', async () => {
    const t0 = Date.now();
    const c = await wsOutcome(down, auth('henry'));
    assert.equal(c.code, 4004);
    assert.match(c.reason, /connect hook failed/);
    assertRefused(await sse(down, fresh()), 503, 'hook_unavailable');
    assertRefused(await poll(down, fresh()), 503, 'hook_unavailable');
    assertRefused(await H.request(down, 'POST', '/publish', { body: { channel: fresh(), data: 1 } }), 503, 'hook_unavailable');
    assert.ok(Date.now() - t0 < TIMEOUT_MS * 4, 'refused connections fail fast, not at the timeout');
    const m = await H.metrics(down);
    assert.ok(m.get('herald_hook_requests_total{hook="connect",result="unavailable"}') >= 3);
    // The API (the backend's side) does not depend on the hooks.
    await H.publish(down, fresh(), 'ok');
  });

  it('keep-alive: many calls share a few connections to the backend', async () => {
    const ws = await wsClient(h, auth('ivy')); open.push(ws);
    const ch = fresh();
    await subscribed(ws, ch);
    const before = backend.connections();
    for (let i = 0; i < 50; i++) {
      const r = await ws.cmd({ method: 'publish', channel: ch, data: i });
      assert.ok(r.result, JSON.stringify(r));
    }
    assert.ok(backend.connections() - before <= 1, `${backend.connections() - before} new connections for 50 calls`);
    const m = await H.metrics(h);
    assert.ok(m.get('herald_hook_requests_total{hook="publish",result="allow"}') >= 50);
  });
});

describe('backend hooks: pool limits and connections the backend closes', () => {
  let backend, h;
  const open = [];
  before(async () => {
    // The backend drops idle keep-alive connections after 100 ms.
    backend = await startHookBackend({ slowMs: 1500, keepAliveMs: 100 });
    h = await H.startHerald(['--token-key', `hs256:${SECRET}`, '--threads', '1', '--hook-timeout', '1000',
      '--hook-pool-size', '1', '--hook-max-pending', '1', '--subscribe-hook', backend.url('/subscribe')]);
  });
  after(async () => {
    for (const c of open) { try { c.sock?.terminate(); } catch { /* gone */ } }
    await h?.stop();
    await backend?.stop();
  });

  it('a call after the backend closed the idle connection is sent again on a new one and succeeds', async () => {
    const ws = await wsClient(h, auth('jack')); open.push(ws);
    for (let i = 0; i < 4; i++) {
      await subscribed(ws, fresh());
      await H.sleep(300);  // the backend closes the connection meanwhile
    }
    const m = await H.metrics(h);
    assert.equal(m.get('herald_hook_requests_total{hook="subscribe",result="allow"}'), 4);
    assert.equal(m.get('herald_hook_requests_total{hook="subscribe",result="unavailable"}'), 0);
  });

  it('past --hook-pool-size connections and --hook-max-pending waiting calls, a call fails at once with 503 hook_overloaded', async () => {
    const ws = await wsClient(h, auth('kate')); open.push(ws);
    // One slow call holds the only connection, one waits, the third is refused.
    const slow = [fresh('slow-'), fresh('slow-'), fresh('slow-')].map((channel) => ws.cmd({ method: 'subscribe', channel }));
    const t0 = Date.now();
    const third = await slow[2];
    assert.equal(third.error?.code, 'hook_overloaded', JSON.stringify(third));
    assert.ok(Date.now() - t0 < 500, 'refused at once');
    const [first, second] = await Promise.all(slow.slice(0, 2));
    assert.equal(first.error?.code, 'hook_timeout');
    assert.equal(second.error?.code, 'hook_timeout', 'the waiting call times out too: the deadline covers the wait');
    // The pool recovers.
    await subscribed(ws, fresh());
    const m = await H.metrics(h);
    assert.equal(m.get('herald_hook_requests_total{hook="subscribe",result="overloaded"}'), 1);
  });
});
