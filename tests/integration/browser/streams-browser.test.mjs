// Streams in headless Chromium: the browser's native EventSource (no library) follows an
// answer streamed into herald (POST /api/stream), through a proxy that drops every
// connection mid-answer; it resumes by itself with Last-Event-ID, its text equals the
// producer's byte for byte, and after the end it gets 204 and stops reconnecting.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startHerald, startProxy, sleep, HOST } from '../lib/herald.mjs';
import { launchBrowser } from '../lib/browser.mjs';

describe('streams in headless Chromium', { timeout: 120000 }, () => {
  let browser, h, proxy;
  before(async () => {
    browser = await launchBrowser();
    h = await startHerald(['--sse-retry', '200', '--namespace', 'ai:stream_coalesce_ms=20,history_size=5000']);
    proxy = await startProxy(h.port);
  });
  after(async () => {
    await proxy?.close();
    await h?.stop();
    await browser?.close();
  });

  it('native EventSource resumes an answer mid-way through dropped connections and stops at the end (204)', async () => {
    const ch = 'ai:browser-answer';
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${proxy.port}/healthz`);
    await page.evaluate((ch) => {
      window.E = { text: '', offsets: [], opens: 0, end: null, errors: 0, closedAt: null };
      const es = new EventSource(`/sse?channel=${encodeURIComponent(ch)}&since=earliest`);
      window.ES = es;
      es.onopen = () => { E.opens++; };
      es.onmessage = (e) => { const m = JSON.parse(e.data); E.offsets.push(m.offset); E.text += m.data; };
      es.addEventListener('end', (e) => { const m = JSON.parse(e.data); E.offsets.push(m.offset); E.end = m.data; });
      es.onerror = () => { E.errors++; if (es.readyState === EventSource.CLOSED && !E.closedAt) E.closedAt = Date.now(); };
    }, ch);

    const req = http.request({ host: HOST, port: h.port, method: 'POST', path: `/api/stream?channel=${ch}`,
      headers: { 'Content-Type': 'text/plain; charset=utf-8' }, agent: false });
    const reply = new Promise((resolve, reject) => {
      req.on('response', (res) => { let b = ''; res.on('data', (c) => { b += c; }); res.on('end', () => resolve(JSON.parse(b))); });
      req.on('error', reject);
    });
    req.flushHeaders();
    let sent = '';
    for (let i = 0; i < 150; i++) {
      const tok = `mot${i}·é `;
      sent += tok;
      req.write(tok);
      await sleep(10);
      if (i % 40 === 20) proxy.dropAll();  // the browser reconnects by itself
    }
    req.end();
    assert.equal((await reply).state, 'completed');

    let e;
    for (let k = 0; k < 200; k++) {
      e = await page.evaluate(() => ({ ...E, readyState: ES.readyState }));
      if (e.end && e.readyState === 2) break;
      await sleep(50);
    }
    assert.deepEqual(e.end, { state: 'completed', reason: null });
    assert.equal(e.text, sent, 'the text equals the producer\'s, byte for byte');
    assert.deepEqual(e.offsets, e.offsets.map((_, i) => i + 1), 'every offset once, in order');
    assert.equal(e.readyState, 2, 'EventSource CLOSED after the 204');
    assert.ok(e.opens >= 3, `reconnected through the drops (${e.opens} opens)`);
    assert.ok(proxy.heads.some((x) => /last-event-id: \S+/i.test(x)), 'the reconnects sent Last-Event-ID');
    const heads = proxy.heads.length;
    await sleep(1000);  // retry is 200 ms: a reconnect would show here
    assert.equal(proxy.heads.length, heads, 'no reconnect after the end');
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});
