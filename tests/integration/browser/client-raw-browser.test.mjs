// The browser client's default path in headless Chromium: it asks every transport for
// the raw formats (binary WebSocket frames of the data alone, format=raw on /sse and
// /poll), counts offsets and builds cursors itself, and those derived cursors resume
// exactly when it moves WebSocket -> SSE -> long polling -> WebSocket; a reset reaches
// the page in raw form too.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, publish, sleep, decodeAnyCursor } from '../lib/herald.mjs';
import { buildWeb, launchBrowser, WEB_DIR } from '../lib/browser.mjs';

const plain = (c) => decodeAnyCursor(c)?.map((e) => [e.tag, e.epoch, Number(e.offset)]);

describe('browser client, default (raw) formats, in headless Chromium', { timeout: 120000 }, () => {
  let browser, h;
  before(async () => {
    buildWeb();
    browser = await launchBrowser();
    h = await startHerald(['--web-root', WEB_DIR, '--namespace', 'small:history_size=2']);
  });
  after(async () => {
    await browser?.close();
    await h?.stop();
  });

  it('WebSocket -> SSE -> long poll -> WebSocket: raw on the wire, every message once, derived cursors exact', async () => {
    const page = await browser.newPage();
    const wire = { binary: 0, jsonPushes: 0, urls: [] };
    page.on('websocket', (ws) => ws.on('framereceived', (f) => {
      if (typeof f.payload === 'string') { if (f.payload.startsWith('{"push"')) wire.jsonPushes++; } else wire.binary++;
    }));
    page.on('request', (r) => { if (/\/(sse|poll)\?/.test(r.url())) wire.urls.push(r.url()); });
    await page.goto(`${h.base}/healthz`);
    const ch = 'demo:raw-browser';
    const published = [];
    await page.evaluate(async () => {
      const { Herald } = await import('/herald.js');
      window.R = { Herald, got: [], cursor: undefined };
    });
    for (const [i, t] of ['websocket', 'sse', 'poll', 'websocket'].entries()) {
      await page.evaluate(async ({ ch, t }) => {
        const c = new R.Herald({ transports: [t], pollTimeoutSec: 2 });
        c.subscribe(ch, { message: (m) => R.got.push({ offset: m.offset, data: m.data, cursor: m.cursor, transport: m.transport, time: m.time }) }, R.cursor);
        await c.connect();
        for (let k = 0; k < 250 && !c.cursor(ch); k++) await new Promise((r) => setTimeout(r, 20));
        R.c = c;
      }, { ch, t });
      published.push(await publish(h, ch, { i, t }));
      const want = 3 * i + 1;
      for (let k = 0; k < 250 && (await page.evaluate(() => R.got.length)) < want; k++) await sleep(20);
      await page.evaluate((ch) => { R.c.close(); R.cursor = R.c.cursor(ch); }, ch);
      // Published while nobody is connected: the next transport replays them from the cursor.
      published.push(await publish(h, ch, { i, gap: 1 }));
      published.push(await publish(h, ch, { i, gap: 2 }));
    }
    const got = await page.evaluate(() => R.got);
    assert.deepEqual(got.map((m) => m.offset), Array.from({ length: 10 }, (_, k) => k + 1));
    assert.deepEqual(got.map((m) => m.transport),
      ['websocket', 'sse', 'sse', 'sse', 'poll', 'poll', 'poll', 'websocket', 'websocket', 'websocket']);
    // Each message's cursor, derived by counting (WebSocket, poll) or read (SSE id), names
    // the position the publish reply named.
    for (const m of got) assert.deepEqual(plain(m.cursor), plain(published[m.offset - 1].cursor), `offset ${m.offset} over ${m.transport}`);
    assert.ok(got.every((m) => m.time === undefined), 'raw messages carry no time');
    // Raw on the wire: binary frames and no JSON pushes; format=raw on /sse and /poll.
    assert.equal(wire.jsonPushes, 0);
    assert.ok(wire.binary >= 4, `binary frames: ${wire.binary}`);
    // (The first request reads a fresh subscription's starting position: one JSON poll.)
    const carrying = wire.urls.filter((u) => u.includes('since='));
    assert.equal(carrying.length, wire.urls.length - 1, wire.urls.join('\n'));
    assert.ok(carrying.length >= 2 && carrying.every((u) => /[?&]format=raw(&|$)/.test(u)), wire.urls.join('\n'));
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  it('a reset in raw form reaches the page, then messages count from the new position', async () => {
    const page = await browser.newPage();
    await page.goto(`${h.base}/healthz`);
    const ch = 'small:raw-reset';
    const first = await publish(h, ch, 1);
    for (let i = 2; i <= 5; i++) await publish(h, ch, i);  // history keeps 4 and 5
    for (const t of ['websocket', 'sse', 'poll']) {
      await page.evaluate(async ({ ch, t, since }) => {
        const { Herald } = await import('/herald.js');
        window.S = { got: [], resets: [] };
        const c = new Herald({ transports: [t], pollTimeoutSec: 2 });
        c.subscribe(ch, { message: (m) => S.got.push(m.offset), reset: (r) => S.resets.push(r.transport) }, since);
        await c.connect();
        for (let k = 0; k < 250 && !S.resets.length; k++) await new Promise((r) => setTimeout(r, 20));
        S.c = c;
      }, { ch, t, since: first.cursor });
      const top = await publish(h, ch, t);
      let s;
      for (let k = 0; k < 250; k++) { s = await page.evaluate(() => ({ got: S.got, resets: S.resets })); if (s.got.length) break; await sleep(20); }
      assert.deepEqual(s, { got: [top.offset], resets: [t] }, t);
      await page.evaluate(() => S.c.close());
    }
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});
