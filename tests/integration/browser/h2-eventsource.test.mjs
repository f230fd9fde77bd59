// Why HTTP/2 matters for SSE, in headless Chromium: over HTTP/1.1 a browser opens at most
// six connections per origin, so a page's seventh EventSource waits; over HTTP/2 30
// EventSources share one connection and every one receives every message: through nginx
// terminating TLS with the shipped deploy/nginx-tls.conf, and from herald itself with
// --tls-cert (ALPN h2), where long polls and the API share that connection too. Self-signed
// certificates, accepted with --ignore-certificate-errors.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHerald, publish, sleep } from '../lib/herald.mjs';
import { launchBrowser } from '../lib/browser.mjs';
import { makeCert, startNginxTls } from '../lib/tls.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-h2-browser-'));
fs.chmodSync(dir, 0o755);

/** In the page: opens `n` EventSources on `channel`; window.ES[i] = { open, got: [] }. */
function openSources({ n, channel }) {
  window.ES = [];
  for (let i = 0; i < n; i++) {
    const st = { open: false, got: [] };
    st.es = new EventSource(`/sse?channel=${channel}`);
    st.es.onopen = () => { st.open = true; };
    st.es.onmessage = (e) => st.got.push(JSON.parse(e.data).data);
    window.ES.push(st);
  }
}
const state = () => window.ES.map((s) => ({ open: s.open, readyState: s.es.readyState, got: s.got }));

describe('30 EventSources: HTTP/2 shares one connection, HTTP/1.1 stops at six', { timeout: 120000 }, () => {
  let browser, h, nginx, direct;
  before(async () => {
    const c = makeCert(dir, 'herald-browser');
    fs.chmodSync(c.keyFile, 0o644);
    h = await startHerald(['--threads', '2']);
    direct = await startHerald(['--threads', '2', '--tls-cert', c.certFile, '--tls-key', c.keyFile]);
    nginx = await startNginxTls([h.port], c);
    browser = await launchBrowser({ args: ['--ignore-certificate-errors'] });
  });
  after(async () => {
    await browser?.close();
    await nginx?.stop();
    await h?.stop();
    await direct?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('over HTTP/2: all 30 open and each receives every message', async () => {
    const page = await browser.newPage();
    const nav = await page.goto(`${nginx.base}/healthz`);
    assert.equal(nav.status(), 200);
    assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol), 'h2');
    await page.evaluate(openSources, { n: 30, channel: 'browser:h2' });
    await page.waitForFunction(() => window.ES.every((s) => s.open), null, { timeout: 15000 });
    for (let i = 0; i < 3; i++) await publish(h, 'browser:h2', i);
    await page.waitForFunction(() => window.ES.every((s) => s.got.length === 3), null, { timeout: 10000 });
    const st = await page.evaluate(state);
    assert.equal(st.length, 30);
    for (const s of st) assert.deepEqual(s.got, [0, 1, 2]);
    await page.close();
  });

  it('over HTTP/2 from herald itself (ALPN h2): all 30 open, each receives every message; polls and the API share the connection', async () => {
    const page = await browser.newPage();
    const base = `https://127.0.0.1:${direct.port}`;
    const nav = await page.goto(`${base}/healthz`);
    assert.equal(nav.status(), 200);
    assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol), 'h2');
    await page.evaluate(openSources, { n: 30, channel: 'browser:direct' });
    await page.waitForFunction(() => window.ES.every((s) => s.open), null, { timeout: 15000 });
    // A held long poll beside the 30 streams, answered by the first publication.
    await page.evaluate(() => {
      window.polled = fetch('/poll?channel=browser:direct&timeout=0').then((r) => r.json())
        .then((p) => fetch(`/poll?channel=browser:direct&timeout=20&since=${encodeURIComponent(p.cursor)}`))
        .then((r) => r.json());
    });
    await sleep(300);
    for (let i = 0; i < 3; i++) {
      const r = await page.evaluate(async (d) => {
        const res = await fetch('/api/publish', { method: 'POST', headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ channel: 'browser:direct', data: d }) });
        return res.status;
      }, i);
      assert.equal(r, 200);
    }
    await page.waitForFunction(() => window.ES.every((s) => s.got.length === 3), null, { timeout: 10000 });
    const st = await page.evaluate(state);
    assert.equal(st.length, 30);
    for (const s of st) assert.deepEqual(s.got, [0, 1, 2]);
    const polled = await page.evaluate(() => window.polled);
    assert.equal(polled.messages[0].data, 0);
    const protocols = await page.evaluate(() =>
      [...new Set(performance.getEntriesByType('resource').map((e) => e.nextHopProtocol))]);
    assert.deepEqual(protocols, ['h2']);
    await page.close();
  });

  it('over HTTP/1.1 (plain, to herald directly): six open, the seventh waits until one closes', async () => {
    const page = await browser.newPage();
    await page.goto(`${h.base}/healthz`);
    assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol), 'http/1.1');
    await page.evaluate(openSources, { n: 7, channel: 'browser:h1' });
    await page.waitForFunction(() => window.ES.filter((s) => s.open).length === 6, null, { timeout: 15000 });
    await sleep(1500);
    await publish(h, 'browser:h1', 'x');
    await page.waitForFunction(() => window.ES.filter((s) => s.got.length === 1).length === 6, null, { timeout: 10000 });
    let st = await page.evaluate(state);
    assert.equal(st.filter((s) => s.open).length, 6, JSON.stringify(st));
    assert.deepEqual(st[6], { open: false, readyState: 0, got: [] });  // CONNECTING: no connection for it
    // One closes: the waiting one gets its connection.
    await page.evaluate(() => window.ES[0].es.close());
    await page.waitForFunction(() => window.ES[6].open, null, { timeout: 10000 });
    st = await page.evaluate(state);
    assert.equal(st[6].readyState, 1);
    await page.close();
  });
});
