// Headless Chromium's native WebSocket against herald, driven by playwright-core: the
// page is herald's demo page (same origin), a page script opens
// new WebSocket('ws://127.0.0.1:PORT/ws'), subscribes, receives a message published
// with POST /api/publish, publishes over the socket and closes normally. Run without
// and with --ws-deflate true (Chromium offers permessage-deflate), and with
// --allowed-origins set to the page's origin (Chromium sends Origin).
//
// Needs /usr/bin/chromium (Debian package `chromium`, installed by scripts/setup.sh test).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startHerald, publish, freePort } from '../lib/herald.mjs';

const CHROMIUM = process.env.HERALD_CHROMIUM || '/usr/bin/chromium';

describe('headless Chromium WebSocket', { timeout: 120000 }, () => {
  let ctx, dir;
  const servers = [];
  before(async () => {
    if (!fs.existsSync(CHROMIUM)) assert.fail(`${CHROMIUM} is missing (scripts/setup.sh test installs the Debian package chromium)`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-chromium-'));
    ctx = await chromium.launchPersistentContext(dir, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 60000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await ctx?.close();
    for (const h of servers) await h.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function scenario(h, { deflate }) {
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      const res = await page.goto(`${h.base}/`);
      assert.equal(res.status(), 200);
      const channel = `chat:browser${deflate ? 'pmd' : ''}${process.pid}`;
      // Open, subscribe; the page keeps every frame it gets, parsed.
      const sub = await page.evaluate(async ({ port, channel }) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
        window.__ws = ws;
        window.__msgs = [];
        window.__close = null;
        ws.onclose = (e) => { window.__close = { code: e.code, reason: e.reason, wasClean: e.wasClean }; };
        await new Promise((resolve, reject) => {
          ws.onopen = resolve;
          ws.onerror = () => reject(new Error('WebSocket error before open'));
          setTimeout(() => reject(new Error('WebSocket not open within 5 s')), 5000);
        });
        ws.onmessage = (e) => window.__msgs.push(JSON.parse(e.data));
        ws.send(JSON.stringify({ id: 1, method: 'subscribe', channel }));
        for (let i = 0; i < 250 && !window.__msgs.some((m) => m.id === 1); i++) await new Promise((r) => setTimeout(r, 20));
        return { extensions: ws.extensions, reply: window.__msgs.find((m) => m.id === 1) ?? null };
      }, { port: h.port, channel });
      assert.ok(sub.reply?.result, `subscribe reply: ${JSON.stringify(sub.reply)}`);
      if (deflate) assert.equal(sub.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
      else assert.equal(sub.extensions, '');

      const pub = await publish(h, channel, { from: 'api', text: 'κόσμε 😀' });
      await page.waitForFunction(() => window.__msgs.some((m) => m.push), null, { timeout: 5000 });
      const big = 'chromium '.repeat(3000);
      const out = await page.evaluate(async ({ channel, big }) => {
        window.__ws.send(JSON.stringify({ id: 2, method: 'publish', channel, data: { from: 'page', big } }));
        for (let i = 0; i < 250 && window.__msgs.filter((m) => m.push).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
        window.__ws.close(1000, 'done');
        for (let i = 0; i < 250 && !window.__close; i++) await new Promise((r) => setTimeout(r, 20));
        return { msgs: window.__msgs, close: window.__close };
      }, { channel, big });
      const pushes = out.msgs.filter((m) => m.push).map((m) => m.push);
      assert.equal(pushes.length, 2, JSON.stringify(out.msgs).slice(0, 500));
      assert.deepEqual([pushes[0].offset, pushes[0].data, pushes[0].cursor], [pub.offset, { from: 'api', text: 'κόσμε 😀' }, pub.cursor]);
      assert.deepEqual(pushes[1].data, { from: 'page', big });
      assert.equal(out.msgs.find((m) => m.id === 2)?.result?.offset, pub.offset + 1);
      assert.deepEqual(out.close, { code: 1000, reason: '', wasClean: true });
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  }

  it('native WebSocket: subscribe, receive an /api/publish message, publish, close 1000', async () => {
    const h = await startHerald(['--namespace', 'chat:client_publish=true']);
    servers.push(h);
    await scenario(h, { deflate: false });
  });

  it('native WebSocket with --ws-deflate true: Chromium negotiates permessage-deflate', async () => {
    const h = await startHerald(['--namespace', 'chat:client_publish=true', '--ws-deflate', 'true']);
    servers.push(h);
    await scenario(h, { deflate: true });
  });

  it('native WebSocket with --allowed-origins set to the page origin (Chromium sends Origin)', async () => {
    const port = await freePort();
    const h = await startHerald(['--namespace', 'chat:client_publish=true', '--allowed-origins', `http://127.0.0.1:${port}`], { port });
    servers.push(h);
    await scenario(h, { deflate: false });
  });

  it('native WebSocket from an origin not in --allowed-origins is refused (403 → error, close 1006)', async () => {
    const h = await startHerald(['--allowed-origins', 'http://a.example']);
    servers.push(h);
    const page = await ctx.newPage();
    try {
      // The page's own origin is always allowed: load it from another one (localhost).
      await page.goto(`http://localhost:${h.port}/`);
      const r = await page.evaluate(async (port) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
        const ev = { opened: false, error: false, close: null };
        ws.onopen = () => { ev.opened = true; };
        ws.onerror = () => { ev.error = true; };
        await new Promise((resolve) => {
          ws.onclose = (e) => { ev.close = { code: e.code, wasClean: e.wasClean }; resolve(); };
          setTimeout(resolve, 5000);
        });
        return ev;
      }, h.port);
      assert.deepEqual(r, { opened: false, error: true, close: { code: 1006, wasClean: false } });
    } finally {
      await page.close();
    }
  });
});
