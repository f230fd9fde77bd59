// Tokens, tickets and CORS in a real browser: a page on another origin
// (http://localhost:PORT, while herald is addressed as http://127.0.0.1:PORT) trades a
// token for tickets with a cross-origin fetch (CORS preflight), opens a native
// EventSource and a native WebSocket with them, long-polls with the token in an
// Authorization header, and sees the close code of a reused ticket. A server whose
// --allowed-origins does not list the page's origin keeps the page out.
//
// Needs /usr/bin/chromium (Debian package `chromium`, installed by scripts/setup.sh test).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { launchBrowser } from '../lib/browser.mjs';
import { startHerald, publish, freePort, waitFor } from '../lib/herald.mjs';

const SECRET = 'browser-test-secret-0123456789-abcdef';
function token(claims) {
  const b64 = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const part = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${part}.${crypto.createHmac('sha256', SECRET).update(part).digest('base64url')}`;
}

describe('tokens, tickets and CORS in headless Chromium', { timeout: 120000 }, () => {
  let browser, h, port;
  const servers = [];
  before(async () => {
    browser = await launchBrowser();
    port = await freePort();
    h = await startHerald(['--token-key', `hs256:${SECRET}`, '--namespace', 'priv:anonymous=false',
      '--allowed-origins', `http://localhost:${port}`], { port });
    servers.push(h);
  });
  after(async () => {
    await browser?.close();
    for (const s of servers) await s.stop();
  });

  it('cross-origin page: ticket → EventSource and WebSocket, token → long poll; a reused ticket closes 4101', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`http://localhost:${port}/`);
      const tok = token({ sub: 'b1', exp: Math.floor(Date.now() / 1000) + 300, subscribe: ['priv:*'], publish: ['priv:b'] });
      const api = `http://127.0.0.1:${port}`;
      // Open both native transports with tickets; the page records what arrives.
      const opened = await page.evaluate(async ({ api, tok }) => {
        const ticket = async () => {
          const r = await fetch(`${api}/ticket`, { method: 'POST', headers: { Authorization: `Bearer ${tok}` } });
          if (!r.ok) throw new Error(`ticket: HTTP ${r.status}`);
          return (await r.json()).ticket;
        };
        window.__got = { sse: [], ws: [] };
        const t1 = await ticket();
        const es = new EventSource(`${api}/sse?channel=priv:b&ticket=${t1}`);
        es.onmessage = (e) => window.__got.sse.push(JSON.parse(e.data).offset);
        await new Promise((resolve, reject) => {
          es.onopen = resolve;
          es.onerror = () => reject(new Error('EventSource error'));
          setTimeout(() => reject(new Error('EventSource not open within 5 s')), 5000);
        });
        const t2 = await ticket();
        const ws = new WebSocket(`${api.replace('http', 'ws')}/ws?ticket=${t2}`);
        ws.onmessage = (e) => {
          const m = JSON.parse(e.data);
          if (m.push) window.__got.ws.push(m.push.offset);
          if (m.id === 1) window.__subscribed = m.result ?? m.error;
        };
        await new Promise((resolve, reject) => {
          ws.onopen = resolve;
          ws.onclose = (e) => reject(new Error(`WebSocket closed ${e.code}`));
          setTimeout(() => reject(new Error('WebSocket not open within 5 s')), 5000);
        });
        ws.send(JSON.stringify({ id: 1, method: 'subscribe', channel: 'priv:b' }));
        // The same ticket again: upgraded, then closed with 4101 (readable in a browser).
        const reused = await new Promise((resolve) => {
          const w = new WebSocket(`${api.replace('http', 'ws')}/ws?ticket=${t2}`);
          w.onclose = (e) => resolve({ code: e.code, reason: e.reason });
          setTimeout(() => resolve({ code: 'timeout' }), 5000);
        });
        return { reused };
      }, { api, tok });
      assert.equal(opened.reused.code, 4101, JSON.stringify(opened.reused));
      assert.match(opened.reused.reason, /ticket/);
      await waitFor(async () => (await page.evaluate(() => window.__subscribed))?.channel === 'priv:b', { timeoutMs: 5000, what: 'ws subscribed' });

      // A long poll with the token in a header (cross-origin: preflighted), then publishes.
      const poll = page.evaluate(async ({ api, tok }) => {
        const r = await fetch(`${api}/poll?channel=priv:b&timeout=10`, { headers: { Authorization: `Bearer ${tok}` } });
        return { status: r.status, body: await r.json() };
      }, { api, tok });
      await new Promise((r) => setTimeout(r, 300));
      for (let i = 1; i <= 3; i++) await publish(h, 'priv:b', { i });
      const p = await poll;
      assert.equal(p.status, 200);
      assert.ok(p.body.messages.length >= 1 && p.body.messages[0].offset === 1, JSON.stringify(p.body));
      // And a publish from the page with the token's grant.
      const pub = await page.evaluate(async ({ api, tok }) => {
        const r = await fetch(`${api}/publish`, { method: 'POST', headers: { Authorization: `Bearer ${tok}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ channel: 'priv:b', data: 'from the page' }) });
        return { status: r.status, body: await r.json() };
      }, { api, tok });
      assert.equal(pub.status, 200, JSON.stringify(pub));
      assert.equal(pub.body.offset, 4);
      await waitFor(async () => {
        const g = await page.evaluate(() => window.__got);
        return g.sse.length >= 4 && g.ws.length >= 4;
      }, { timeoutMs: 5000, what: 'four messages on SSE and WebSocket' });
      const got = await page.evaluate(() => window.__got);
      assert.deepEqual(got, { sse: [1, 2, 3, 4], ws: [1, 2, 3, 4] });
      assert.deepEqual(page.errors, []);
    } finally {
      await page.close();
    }
  });

  it('an origin off --allowed-origins cannot get a ticket, open a stream or a WebSocket', async () => {
    const other = await startHerald(['--token-key', `hs256:${SECRET}`, '--allowed-origins', 'http://a.example']);
    servers.push(other);
    const page = await browser.newPage();
    try {
      await page.goto(`http://localhost:${port}/`);
      const tok = token({ sub: 'b2', subscribe: ['*'] });
      const r = await page.evaluate(async ({ api, tok }) => {
        const out = {};
        try {
          await fetch(`${api}/ticket`, { method: 'POST', headers: { Authorization: `Bearer ${tok}` } });
          out.ticket = 'fetched';
        } catch (e) { out.ticket = 'blocked'; }
        out.sse = await new Promise((resolve) => {
          const es = new EventSource(`${api}/sse?channel=news`);
          es.onopen = () => { es.close(); resolve('open'); };
          es.onerror = () => { es.close(); resolve('error'); };
          setTimeout(() => resolve('timeout'), 5000);
        });
        out.ws = await new Promise((resolve) => {
          const ws = new WebSocket(`${api.replace('http', 'ws')}/ws`);
          ws.onopen = () => resolve('open');
          ws.onclose = (e) => resolve(`closed ${e.code}`);
          setTimeout(() => resolve('timeout'), 5000);
        });
        return out;
      }, { api: other.base, tok });
      assert.deepEqual(r, { ticket: 'blocked', sse: 'error', ws: 'closed 1006' });
      const m = await (await fetch(`${other.base}/metrics`)).text();
      assert.match(m, /^herald_auth_refusals_total\{reason="origin"\} [1-9]/m);
    } finally {
      await page.close();
    }
  });
});
