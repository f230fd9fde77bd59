// Closes that a standard client can read (issue 11, finding 3).
//
// When herald closes a WebSocket for a reason of its own while the client is still
// sending, or has not read everything yet, the socket must not be reset: RFC 6455 §7.1.1
// asks the server to send its close frame, shut down the write side, and keep reading
// (and discarding) for a bounded time before closing. Otherwise the client's kernel
// drops what it had not read yet, and a standard client (npm `ws`, here) sees 1006 and
// none of the replies sent before, so it cannot tell "fix your client" from a network
// failure. For each of 1008 (command flood), 1009 (oversized message), 4000 (slow
// consumer) and 4101 (reused ticket, bad token), the `ws` client must see herald's code
// and every reply or push herald sent before the close, in order.
//
// The same for HTTP: a response that herald sends with `Connection: close` while the
// client is still sending its request (413 for a body over --max-body-size, 431 for a
// head over --max-header-size) must be readable by the client, not lost to a reset.
//
// Each case runs several times: whether a reset destroys the unread bytes is a race, and
// a fixed server must win it every time.
//
// Only 127.0.0.1; every loop is bounded in count and time; the only process started is
// herald.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket from 'ws';
import * as H from './lib/herald.mjs';
import * as J from './lib/jwt.mjs';

const SECRET = J.secret(40);
const RATE = 50;                  // --ws-commands-per-second
const WS_MAX = 16384;             // --ws-max-message
const MAX_BODY = 65536;           // --max-body-size
const MAX_QUEUED = 65536;         // --max-queued-bytes
const ROUNDS = 5;
let h;

before(async () => {
  h = await H.startHerald(['--token-key', `hs256:${SECRET}`, '--ws-commands-per-second', String(RATE),
    '--ws-max-message', String(WS_MAX), '--max-body-size', String(MAX_BODY), '--max-message-size', String(MAX_BODY - 4096),
    '--max-header-size', '4096', '--max-queued-bytes', String(MAX_QUEUED), '--threads', '2']);
});

after(async () => { await h?.stop(); });

/**
 * A `ws` client that records, in order, every message it gets and how it ended.
 * `onOpen(ws)` starts the client's side of the case.
 */
function wsCase(url, { headers, onOpen, timeoutMs = 20000, doneWhen } = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    const got = [];
    let settled = false;
    const finish = (r) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.stopSending = true;
      try { ws.terminate(); } catch { /* gone */ }
      resolve({ ...r, got });
    };
    const timer = setTimeout(() => finish({ code: 'timeout' }), timeoutMs);
    ws.on('open', () => onOpen?.(ws));
    ws.on('message', (d) => {
      got.push(JSON.parse(d.toString('utf8')));
      if (doneWhen?.(got)) finish({ code: 'done' });
    });
    ws.on('error', (e) => { ws.lastError = e.code ?? e.message; });
    ws.on('close', (code, reason) => finish({ code, reason: reason.toString(), error: ws.lastError }));
  });
}

const wsUrl = (q = '') => `ws://${H.HOST}:${h.port}/ws${q}`;

/** Sends pings (commands) from `startId` until the socket stops taking them or 5 s pass. */
function keepSending(ws, startId, { pauseEvery = 1 } = {}) {
  let id = startId;
  const t0 = Date.now();
  const tick = () => {
    if (ws.stopSending || ws.readyState !== WebSocket.OPEN || Date.now() - t0 > 5000) return;
    for (let k = 0; k < pauseEvery; k++) ws.send(`{"id":${id++},"method":"ping"}`);
    setImmediate(tick);
  };
  tick();
}

test('1008 command flood: the ws client sees 1008 and every reply sent before it', { timeout: 90000 }, async (t) => {
  for (let round = 1; round <= ROUNDS; round++) {
    const r = await wsCase(wsUrl(), { onOpen: (ws) => keepSending(ws, 1, { pauseEvery: 20 }) });
    const ids = r.got.filter((m) => 'id' in m).map((m) => m.id);
    t.diagnostic(`round ${round}: close ${r.code} ${r.reason ?? ''} (${r.error ?? 'no error'}), ${ids.length} replies`);
    assert.equal(r.code, 1008, `round ${round}: the client saw close ${r.code} (${r.error ?? ''}) after ${ids.length} replies`);
    assert.deepEqual(ids, Array.from({ length: ids.length }, (_, i) => i + 1), 'the replies come in order, none missing');
    assert.ok(r.got.slice(0, RATE).every((m) => m.result), `the first ${RATE} commands (one second's bucket) were answered`);
    assert.ok(r.got.some((m) => m.error?.code === 'rate_limited'), 'refused commands were answered rate_limited before the close');
  }
});

test('1009 oversized message: the ws client sees 1009 and the replies to the commands before it', { timeout: 90000 }, async (t) => {
  const PRE = 20;
  for (let round = 1; round <= ROUNDS; round++) {
    const r = await wsCase(wsUrl(), {
      onOpen: (ws) => {
        for (let i = 1; i <= PRE; i++) ws.send(`{"id":${i},"method":"ping"}`);
        // 4 MB in one message (announced in the frame header, refused at once), then more.
        ws.send(`{"id":999,"method":"ping","pad":"${'x'.repeat(4 * 1024 * 1024)}"}`);
        for (let i = 0; i < 20; i++) ws.send(`{"id":${1000 + i},"method":"ping","pad":"${'y'.repeat(8000)}"}`);
      },
    });
    const ids = r.got.filter((m) => 'id' in m).map((m) => m.id);
    t.diagnostic(`round ${round}: close ${r.code} ${r.reason ?? ''} (${r.error ?? 'no error'}), replies ${ids.length}`);
    assert.equal(r.code, 1009, `round ${round}: the client saw close ${r.code} (${r.error ?? ''})`);
    assert.deepEqual(ids, Array.from({ length: PRE }, (_, i) => i + 1), `round ${round}: the replies to the ${PRE} commands before the oversized one`);
  }
});

test('4000 slow consumer: a client that stops reading (and keeps sending) sees 4000 and every push before it, in order', { timeout: 90000 }, async (t) => {
  const CH = 'slow:close';
  const agent = H.keepAliveAgent(4);
  try {
    for (let round = 1; round <= 3; round++) {
      const ch = `${CH}${round}`;
      const startCursor = (await H.history(h, ch, { limit: 0 })).json.cursor;
      let subscribed;
      const ready = new Promise((resolve) => { subscribed = resolve; });
      const m0 = await H.metrics(h);
      const pending = wsCase(wsUrl(), {
        timeoutMs: 40000,
        onOpen: (ws) => {
          ws.send(JSON.stringify({ id: 'sub', method: 'subscribe', channel: ch, since: startCursor }));
          ws.once('message', () => {
            // Stop reading; keep sending a command every few ms so that herald has unread
            // bytes from us when it cuts the connection.
            ws._socket.pause();
            let id = 1;
            const iv = setInterval(() => {
              if (ws.stopSending || ws.readyState !== WebSocket.OPEN) return clearInterval(iv);
              ws.send(`{"id":${id++},"method":"ping"}`);
            }, 5);
            subscribed(ws);
          });
        },
      });
      const ws = await ready;
      // Publish 8 KiB messages until herald cuts the connection (the gauge drops), bounded.
      const data = 'z'.repeat(8192);
      let published = 0;
      const t0 = Date.now();
      for (; published < 5000 && Date.now() - t0 < 20000; published++) {
        await H.publish(h, ch, data, { agent });
        if (published % 50 === 49) {
          const m = await H.metrics(h);
          if ((m.get('herald_slow_disconnects_total') ?? 0) > (m0.get('herald_slow_disconnects_total') ?? 0)) break;
        }
      }
      // Read again: what herald sent before the close must all be there.
      ws._socket.resume();
      const r = await pending;
      const pushes = r.got.filter((m) => m.push).map((m) => m.push.offset);
      t.diagnostic(`round ${round}: published ${published + 1}, close ${r.code} (${r.error ?? 'no error'}), ${pushes.length} pushes read`);
      assert.equal(r.code, 4000, `round ${round}: the client saw close ${r.code} (${r.error ?? ''}) after ${pushes.length} pushes`);
      assert.deepEqual(pushes, Array.from({ length: pushes.length }, (_, i) => i + 1), 'pushes 1..k, in order, none missing');
      assert.ok(pushes.length > 0);
    }
  } finally {
    agent.destroy();
  }
});

test('4101 reused ticket and bad token: the ws client sees 4101 while it is still sending', { timeout: 90000 }, async (t) => {
  const token = J.hs256({ sub: 'u1', exp: J.now(600), subscribe: ['*'] }, SECRET);
  // Commands of 8 KB sent without pause from the moment the connection opens.
  const burst = (ws) => {
    const pad = 'p'.repeat(8000);
    let i = 1;
    const t0 = Date.now();
    const tick = () => {
      if (ws.stopSending || ws.readyState !== WebSocket.OPEN || Date.now() - t0 > 5000 || i > 20000) return;
      for (let k = 0; k < 16; k++) ws.send(`{"id":${i++},"method":"ping","pad":"${pad}"}`);
      setImmediate(tick);
    };
    tick();
  };
  for (let round = 1; round <= ROUNDS; round++) {
    const tk = await H.request(h, 'POST', '/ticket', { headers: J.bearer(token) });
    assert.equal(tk.status, 200, tk.text);
    const ticket = tk.json.ticket;
    const first = await wsCase(wsUrl(`?ticket=${ticket}`), { onOpen: (ws) => { ws.send('{"id":1,"method":"ping"}'); }, doneWhen: (got) => got.length >= 1, timeoutMs: 5000 });
    assert.equal(first.code, 'done', `the first use of the ticket is accepted (got close ${first.code})`);
    assert.deepEqual(first.got, [{ id: 1, result: {} }]);
    const reused = await wsCase(wsUrl(`?ticket=${ticket}`), { onOpen: burst });
    const bad = await wsCase(wsUrl(), { headers: { Authorization: `Bearer ${J.tamperSignature(token)}` }, onOpen: burst });
    t.diagnostic(`round ${round}: reused ticket → ${reused.code} (${reused.error ?? 'no error'}), bad token → ${bad.code} (${bad.error ?? 'no error'})`);
    assert.equal(reused.code, 4101, `round ${round}: reused ticket: the client saw close ${reused.code} (${reused.error ?? ''})`);
    assert.equal(bad.code, 4101, `round ${round}: bad token: the client saw close ${bad.code} (${bad.error ?? ''})`);
    assert.deepEqual(reused.got.filter((m) => 'result' in m), [], 'no command of a refused connection was served');
    assert.deepEqual(bad.got.filter((m) => 'result' in m), [], 'no command of a refused connection was served');
  }
});

/**
 * Sends `head`, then body bytes in 64 KiB writes (up to `bodyBytes`, bounded in time)
 * without waiting for the response; resolves with what came back: {status, text,
 * error, sent}.
 */
function sendWhileAnswered(head, bodyBytes, { timeoutMs = 10000, tail, chunked = false } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(h.port, H.HOST);
    let data = Buffer.alloc(0), sent = 0, done = false, error = null;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const text = data.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : null, text: text.slice(0, 300), error, sent });
    };
    const timer = setTimeout(finish, timeoutMs);
    const raw = Buffer.alloc(65536, tail ?? 'a');
    const chunk = chunked ? Buffer.concat([Buffer.from('10000\r\n'), raw, Buffer.from('\r\n')]) : raw;
    const pump = () => {
      while (!done && sent < bodyBytes && !s.destroyed) {
        sent += chunk.length;
        if (!s.write(chunk)) return s.once('drain', pump);
      }
    };
    s.on('connect', () => { s.write(head); pump(); });
    s.on('data', (c) => { data = Buffer.concat([data, c]); });
    s.on('error', (e) => { error = e.code ?? e.message; finish(); });
    s.on('close', finish);
  });
}

test('HTTP: a 413 (body too large) and a 431 (head too large) sent while the client is still sending are readable', { timeout: 90000 }, async (t) => {
  const seen = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const p of ['/api/publish', '/publish']) {
      const big = 16 * 1024 * 1024;
      const r = await sendWhileAnswered(`POST ${p} HTTP/1.1\r\nHost: ${H.HOST}:${h.port}\r\nContent-Type: application/json\r\nContent-Length: ${big}\r\n\r\n{"channel":"x","data":"`, big);
      seen.push(`${p} Content-Length ${big}: ${r.status ?? 'nothing'} (${r.error ?? 'no error'}, ${r.sent} bytes sent)`);
      assert.equal(r.status, 413, `round ${round}: ${p}: got ${JSON.stringify(r.text)} (${r.error ?? 'no error'}) after sending ${r.sent} bytes`);
      assert.match(r.text, /connection: close/i);
    }
    // Chunked: the body's size is learnt only as it arrives.
    const rc = await sendWhileAnswered(`POST /api/publish HTTP/1.1\r\nHost: ${H.HOST}:${h.port}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`, 16 * 1024 * 1024,
      { tail: 'b', chunked: true });
    seen.push(`/api/publish chunked: ${rc.status ?? 'nothing'} (${rc.error ?? 'no error'})`);
    assert.equal(rc.status, 413, `round ${round}: chunked body over the limit: got ${JSON.stringify(rc.text)} (${rc.error ?? 'no error'})`);
    // A head over --max-header-size (4096), still being sent: 431.
    const rh = await sendWhileAnswered(`GET /healthz HTTP/1.1\r\nHost: ${H.HOST}:${h.port}\r\nX-Fill: `, 16 * 1024 * 1024, { tail: 'h' });
    seen.push(`head over --max-header-size: ${rh.status ?? 'nothing'} (${rh.error ?? 'no error'})`);
    assert.equal(rh.status, 431, `round ${round}: oversized head: got ${JSON.stringify(rh.text)} (${rh.error ?? 'no error'})`);
  }
  for (const s of seen.slice(0, 8)) t.diagnostic(s);
});
