// The browser client (web/herald.js, built from clients/js) and the demo page in headless
// Chromium against a real herald: messages arrive on each transport; herald restarts
// (Redis broker, so history survives) and every transport resumes without loss; a plain
// EventSource (no library) resumes after its connection is dropped; a screenshot of the
// demo is saved as tests/integration/artifacts/demo.png.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startHerald, publish, startProxy, sleep } from '../lib/herald.mjs';
import { startRedis, startNode, waitReady } from '../lib/cluster.mjs';
import { buildWeb, launchBrowser, WEB_DIR, ARTIFACTS_DIR } from '../lib/browser.mjs';

const ARGS = ['--web-root', WEB_DIR, '--namespace', 'demo:client_publish=true'];

/** In the page: import the client, make one client per transport on `channel`, record offsets. */
async function startClients(page, channel, transports, opts = {}) {
  await page.evaluate(async ({ channel, transports, opts }) => {
    const { Herald } = await import('/herald.js');
    window.T = { got: {}, resets: {}, states: {}, clients: {} };
    for (const t of transports) {
      const c = new Herald({ transports: [t], backoffBaseMs: 200, backoffMaxMs: 1000, pollTimeoutSec: 5, ...opts });
      T.got[t] = []; T.resets[t] = 0; T.states[t] = [];
      c.on('state', (s) => T.states[t].push(s.state));
      c.subscribe(channel, { message: (m) => T.got[t].push({ offset: m.offset, data: m.data, transport: m.transport, bytes: m.bytes }), reset: () => { T.resets[t]++; } });
      T.clients[t] = c;
      c.connect();
    }
    await Promise.all(Object.values(T.clients).map((c) => c.whenConnected()));
    // Wait until each holds a cursor (its position is fixed: nothing published later is missed).
    for (let i = 0; i < 250 && !Object.values(T.clients).every((c) => c.cursor(channel)); i++) await new Promise((r) => setTimeout(r, 20));
  }, { channel, transports, opts });
}

const offsets = (page) => page.evaluate(() => Object.fromEntries(Object.entries(T.got).map(([t, a]) => [t, a.map((m) => m.offset)])));

async function waitOffsets(page, transports, n, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const o = await offsets(page);
    if (transports.every((t) => (o[t] ?? []).length >= n)) return o;
    if (Date.now() > end) return o;
    await sleep(50);
  }
}

const seq = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('browser client in headless Chromium', { timeout: 120000 }, () => {
  let browser;
  const cleanup = [];
  before(async () => {
    buildWeb();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    for (const f of cleanup.reverse()) await f().catch(() => {});
  });

  it('messages arrive on each transport (WebSocket, SSE, long polling), publish from the page', async () => {
    const h = await startHerald(ARGS);
    cleanup.push(() => h.stop());
    const page = await browser.newPage();
    await page.goto(`${h.base}/healthz`);
    const ch = 'demo:browser-transports';
    const ts = ['websocket', 'sse', 'poll'];
    await startClients(page, ch, ts);
    await publish(h, ch, { from: 'api' });
    for (const t of ts) await page.evaluate(({ ch, t }) => T.clients[t].publish(ch, { from: t }), { ch, t });
    const o = await waitOffsets(page, ts, 4);
    for (const t of ts) assert.deepEqual(o[t], [1, 2, 3, 4], `${t}: ${JSON.stringify(o)}`);
    const got = await page.evaluate(() => T.got);
    for (const t of ts) {
      assert.deepEqual(got[t].map((m) => m.data.from), ['api', ...ts]);
      // The default raw formats: {"from":"api"} is 14 bytes; a WebSocket frame adds 2.
      assert.ok(got[t].every((m) => m.transport === t && m.bytes >= 16), JSON.stringify(got[t][0]));
      assert.equal(got[t][0].bytes, { websocket: 16, sse: 40, poll: got[t][0].bytes }[t]);
    }
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  it('herald restarts (Redis broker): every transport resumes from its cursor without loss', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    let node = await startNode([redis.url], { args: ARGS });
    await waitReady(node);
    const port = node.port;
    cleanup.push(() => node.stop());
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/healthz`);
    const ch = 'demo:browser-restart';
    const ts = ['websocket', 'sse', 'poll'];
    await startClients(page, ch, ts);
    for (let i = 1; i <= 5; i++) await publish(node, ch, { i });
    let o = await waitOffsets(page, ts, 5);
    for (const t of ts) assert.deepEqual(o[t], seq(1, 5), t);
    await node.kill();
    node = await startNode([redis.url], { port, args: ARGS });
    await waitReady(node);
    // Published before the clients are back: they must come from history on resume.
    for (let i = 6; i <= 10; i++) await publish(node, ch, { i });
    o = await waitOffsets(page, ts, 10, 20000);
    for (const t of ts) assert.deepEqual(o[t], seq(1, 10), `${t}: ${JSON.stringify(o)}`);
    const resets = await page.evaluate(() => T.resets);
    assert.deepEqual(resets, { websocket: 0, sse: 0, poll: 0 });
    const states = await page.evaluate(() => T.states);
    for (const t of ts) assert.ok(states[t].filter((s) => s === 'connected').length >= 2, `${t}: ${states[t]}`);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  it('a plain EventSource (no client library) resumes after its connection is dropped', async () => {
    const h = await startHerald([...ARGS, '--sse-retry', '200']);
    cleanup.push(() => h.stop());
    const proxy = await startProxy(h.port);
    cleanup.push(() => proxy.close());
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${proxy.port}/healthz`);
    const ch = 'demo:browser-eventsource';
    await page.evaluate(async (ch) => {
      window.E = { got: [], opens: 0 };
      const es = new EventSource(`/sse?channel=${encodeURIComponent(ch)}`);
      es.onopen = () => { E.opens++; };
      es.onmessage = (e) => E.got.push({ offset: JSON.parse(e.data).offset, id: e.lastEventId });
      await new Promise((r) => { const t = setInterval(() => { if (E.opens) { clearInterval(t); r(); } }, 20); });
    }, ch);
    await sleep(200);  // the bare id: line after the head (the position to resume from)
    for (let i = 1; i <= 3; i++) await publish(h, ch, { i });
    const until = async (n) => {
      for (let k = 0; k < 300; k++) {
        const g = await page.evaluate(() => E.got.map((x) => x.offset));
        if (g.length >= n) return g;
        await sleep(50);
      }
      return page.evaluate(() => E.got.map((x) => x.offset));
    };
    assert.deepEqual(await until(3), [1, 2, 3]);
    proxy.dropAll();
    for (let i = 4; i <= 6; i++) await publish(h, ch, { i });
    assert.deepEqual(await until(6), seq(1, 6));
    assert.ok((await page.evaluate(() => E.opens)) >= 2);
    assert.ok(proxy.heads.some((x) => /last-event-id: \S+/i.test(x)), 'the reconnect sent Last-Event-ID');
    await page.close();
  });

  it('demo page: chat (WebSocket), notifications (SSE), dashboard (long polling) with bytes and latency; screenshot', async () => {
    const h = await startHerald(ARGS);
    cleanup.push(() => h.stop());
    const page = await browser.newPage();
    await page.goto(`${h.base}/?room=test`);
    await page.waitForFunction(() => ['chat', 'notifications', 'dashboard'].every((id) => document.getElementById(id).dataset.state === 'connected'), null, { timeout: 10000 });
    await page.fill('#chat input', 'hello from the test');
    await page.click('#chat button');
    await page.fill('#notifications input', 'build finished');
    await page.click('#notifications button');
    await page.waitForFunction(() => ['chat', 'notifications', 'dashboard'].every((id) => Number(document.querySelector(`#${id} .stats`).dataset.count) >= 1), null, { timeout: 10000 });
    const text = await page.evaluate(() => ({
      chat: document.querySelector('#chat .log').textContent,
      notes: document.querySelector('#notifications .log').textContent,
      stats: [...document.querySelectorAll('#chat .stats, #notifications .stats, #dashboard .stats')].map((e) => e.textContent),
    }));
    assert.match(text.chat, /hello from the test/);
    assert.match(text.notes, /build finished/);
    for (const s of text.stats) assert.match(s, /\d+ B.*latency last \d+ ms/);
    fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, 'demo.png'), fullPage: true });
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});
