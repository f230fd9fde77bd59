// client.stream() in headless Chromium (web/herald.js): an answer streamed into herald
// (POST /api/stream, text at a model's pace) followed on each transport through a proxy
// that drops every connection twice mid-answer. The text equals the producer's byte for
// byte, every offset comes once, the end comes once; after the end (the SSE response
// ends, a resume gets 204) the client neither falls back nor reconnects.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startHerald, startProxy, sleep, HOST } from '../lib/herald.mjs';
import { buildWeb, launchBrowser, WEB_DIR } from '../lib/browser.mjs';

const ARGS = ['--web-root', WEB_DIR, '--sse-heartbeat', '2',
  '--namespace', 'ai:client_publish=true,stream_coalesce_ms=20,history_size=5000'];

/** Starts POST /api/stream on `channel` (directly to herald); write() tokens, end() → the reply. */
function producer(h, channel) {
  const req = http.request({ host: HOST, port: h.port, method: 'POST', path: `/api/stream?channel=${channel}`,
    headers: { 'Content-Type': 'text/plain; charset=utf-8' }, agent: false });
  const reply = new Promise((resolve, reject) => {
    req.on('response', (res) => { let b = ''; res.on('data', (c) => { b += c; }); res.on('end', () => resolve(JSON.parse(b))); });
    req.on('error', reject);
  });
  req.flushHeaders();
  return { write: (t) => req.write(t), end: () => { req.end(); return reply; }, reply };
}

/** In the page: a client pinned to `transports`, following `channel` with stream(); every fetch URL recorded. */
async function follow(page, channel, transports, since) {
  await page.evaluate(async ({ channel, transports, since }) => {
    const { Herald } = await import('/herald.js');
    window.S = { text: '', deltas: 0, offsets: [], ends: [], states: [], fetches: [], transports: new Set() };
    const fetchRec = (u, o) => { S.fetches.push(new URL(String(u), location.href).pathname); return fetch(u, o); };
    const c = new Herald({ transports, backoffBaseMs: 100, backoffMaxMs: 300, pollTimeoutSec: 5, sseHeartbeatMs: 2000, fetch: fetchRec });
    c.on('state', (s) => S.states.push(`${s.state}:${s.transport}`));
    c.on('message', (m) => { S.offsets.push(m.offset); S.transports.add(m.transport); });
    const opts = {
      onDelta: (d) => { S.text = d.text; S.deltas++; },
      onEnd: (e) => S.ends.push(e),
    };
    if (since) opts.since = since;
    window.STREAM = c.stream(channel, opts);
    window.CLIENT = c;
    await c.connect();
  }, { channel, transports, since });
}

const snapshot = (page) => page.evaluate(() => ({ ...S, transports: [...S.transports], state: CLIENT.state, transport: CLIENT.transport }));

async function waitFor(page, pred, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const s = await snapshot(page);
    if (pred(s)) return s;
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}: ${JSON.stringify({ ...s, text: s.text.length })}`);
    await sleep(40);
  }
}

describe('client.stream() in headless Chromium', { timeout: 180000 }, () => {
  let browser, h, proxy;
  before(async () => {
    buildWeb();
    browser = await launchBrowser();
    h = await startHerald(ARGS);
    proxy = await startProxy(h.port);
  });
  after(async () => {
    await proxy?.close();
    await h?.stop();
    await browser?.close();
  });

  for (const t of ['websocket', 'sse', 'poll']) {
    it(`${t}: resumes mid-answer after forced drops; text byte for byte, end once, no fallback after the end`, async () => {
      const ch = `ai:answer-${t}`;
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${proxy.port}/healthz`);
      await follow(page, ch, [t, ...['websocket', 'sse', 'poll'].filter((x) => x !== t)]);
      const p = producer(h, ch);
      let sent = '';
      const atDrop = [];
      const heads = [];
      for (let i = 0; i < 160; i++) {
        const tok = `tok${i}·é€ `;  // 2- and 3-byte characters: UTF-8 cut anywhere would show
        sent += tok;
        p.write(tok);
        await sleep(20);  // ~50 tokens/s
        if (i === 50 || i === 110) {
          const s = await waitFor(page, (x) => x.text.length > 0, 5000, 'text before the drop');
          atDrop.push(s.text.length);
          proxy.dropAll();
          heads.push(proxy.heads.length);
        }
      }
      assert.equal((await p.end()).state, 'completed');
      const s = await waitFor(page, (x) => x.ends.length > 0, 20000, 'the end');
      assert.ok(atDrop[0] > 0 && atDrop[1] < sent.length, `dropped mid-answer (${atDrop} of ${sent.length} characters)`);
      assert.equal(s.text, sent, 'the text equals the producer\'s, byte for byte');
      assert.deepEqual(s.offsets, s.offsets.map((_, i) => i + 1), 'every offset once, in order');
      assert.equal(s.ends.length, 1);
      assert.equal(s.ends[0].state, 'completed');
      assert.equal(s.ends[0].reason, null);
      assert.deepEqual(s.transports, [t], 'every message on the pinned transport');
      // New connections after each drop. WebSocket and SSE see the drop (state
      // disconnected); a poll whose keep-alive connection is cut Chromium retries itself.
      assert.ok(heads[0] < heads[1] && heads[1] < proxy.heads.length, `reconnected after each drop: ${heads} ${proxy.heads.length}`);
      if (t !== 'poll') assert.ok(s.states.filter((x) => x.startsWith('disconnected')).length >= 2, `the drops were seen: ${s.states}`);
      assert.equal(s.state, 'connected');
      assert.equal(s.transport, t);
      // After the end: no fallback, no reconnect loop, no request for the ended channel.
      const before = s.fetches.length;
      await sleep(1500);
      const later = await snapshot(page);
      assert.deepEqual(later.fetches.slice(before), [], 'no request after the end');
      assert.equal(later.ends.length, 1, 'the end seen once');
      assert.equal(later.transport, t);
      assert.equal(later.state, 'connected');
      assert.deepEqual(page.errors, []);
      await page.close();
    });
  }

  for (const [first, second] of [['sse', 'poll'], ['poll', 'sse']]) {
    it(`${first}: a resume at the end gets 204, which ends the stream without falling back to ${second}`, async () => {
      const ch = `ai:ended-${first}`;
      const p = producer(h, ch);
      p.write('a whole answer');
      const end = await p.end();
      assert.equal(end.state, 'completed');
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${proxy.port}/healthz`);
      await follow(page, ch, [first, second], end.cursor);
      const s = await waitFor(page, (x) => x.ends.length > 0, 5000, 'the end');
      assert.equal(s.ends[0].state, null, 'a 204 says the stream ended, not how');
      await sleep(1500);
      const later = await snapshot(page);
      assert.equal(later.ends.length, 1);
      assert.equal(later.transport, first);
      assert.equal(later.state, 'connected');
      assert.ok(!later.states.some((x) => x.startsWith('disconnected')), `no failure: ${later.states}`);
      const path = first === 'sse' ? '/sse' : '/poll';
      assert.deepEqual(later.fetches, [path], `one request, no fallback, no loop: ${later.fetches}`);
      assert.equal(later.text, '');
      assert.deepEqual(page.errors, []);
      await page.close();
    });
  }

  it('stop(): the producer is answered aborted, the reader gets the end once with the reason', async () => {
    const ch = 'ai:stopped';
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${proxy.port}/healthz`);
    await follow(page, ch, ['websocket']);
    const p = producer(h, ch);
    let sent = '';
    for (let i = 0; i < 20; i++) { const tok = `w${i} `; sent += tok; p.write(tok); await sleep(20); }
    await waitFor(page, (x) => x.text === sent, 5000, 'the text sent so far');
    const r = await page.evaluate(() => STREAM.stop('user pressed stop'));
    assert.equal(r.state, 'aborted');
    const reply = await p.reply;
    assert.equal(reply.state, 'aborted');
    const s = await waitFor(page, (x) => x.ends.length > 0, 5000, 'the end');
    assert.deepEqual([s.ends[0].state, s.ends[0].reason], ['aborted', 'user pressed stop']);
    assert.equal(s.text, sent, 'what was sent before the stop is kept');
    await sleep(300);
    assert.equal((await snapshot(page)).ends.length, 1);
    await page.close();
  });
});
