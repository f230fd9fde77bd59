// Transport fallback of the browser client in headless Chromium behind a real nginx:
// one that does not pass WebSocket upgrades on (→ SSE, with POST /publish for writes),
// and one that also buffers responses, withholding the SSE stream (→ long polling).
// Prints the time from the blocked upgrade to the first message over the fallback.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, publish } from '../lib/herald.mjs';
import { buildWeb, launchBrowser, startNginxConf, WEB_DIR } from '../lib/browser.mjs';

const ARGS = ['--web-root', WEB_DIR, '--namespace', 'demo:client_publish=true'];

describe('browser client fallback behind nginx', { timeout: 120000 }, () => {
  let browser, h;
  const cleanup = [];
  before(async () => {
    buildWeb();
    browser = await launchBrowser();
    h = await startHerald(ARGS);
  });
  after(async () => {
    await browser?.close();
    for (const f of cleanup.reverse()) await f().catch(() => {});
    await h?.stop();
  });

  // A message published before the page connects, resumed from the cursor before it: the
  // first message is delivered as soon as the fallback transport is up.
  async function scenario(conf, expected, channel) {
    const nginx = await startNginxConf(conf, h.port);
    cleanup.push(() => nginx.stop());
    const before = await publish(h, channel, { n: 0 });
    await publish(h, channel, { n: 1 });
    const page = await browser.newPage();
    await page.goto(`${nginx.base}/healthz`);
    const r = await page.evaluate(async ({ channel, since }) => {
      const { Herald } = await import('/herald.js');
      const c = new Herald({ connectTimeoutMs: 1500, pollTimeoutSec: 5 });
      window.C = c;
      const got = [];
      const states = [];
      let wsFailedAt = null;
      c.on('state', (s) => {
        states.push(`${s.state}:${s.transport}`);
        if (s.state === 'disconnected' && s.transport === 'websocket' && wsFailedAt === null) wsFailedAt = performance.now();
      });
      c.subscribe(channel, { message: (m) => got.push({ offset: m.offset, transport: m.transport, at: performance.now() }) }, since);
      const t0 = performance.now();
      c.connect();
      for (let i = 0; i < 400 && got.length < 1; i++) await new Promise((res) => setTimeout(res, 10));
      const first = got[0];
      // Writes over the fallback (POST /publish), and a live message.
      const pub = await c.publish(channel, { n: 2 });
      for (let i = 0; i < 400 && got.length < 2; i++) await new Promise((res) => setTimeout(res, 10));
      return {
        got: got.map((m) => [m.offset, m.transport]), states, transport: c.transport, pubOffset: pub.offset,
        fromStartMs: first ? first.at - t0 : null, fromBlockMs: first && wsFailedAt !== null ? first.at - wsFailedAt : null,
      };
    }, { channel, since: before.cursor });
    await page.close();
    assert.equal(r.transport, expected, JSON.stringify(r));
    assert.deepEqual(r.got, [[2, expected], [3, expected]], JSON.stringify(r));
    assert.equal(r.pubOffset, 3);
    assert.ok(r.states.includes('disconnected:websocket'), r.states.join(' '));
    console.log(`${conf}: fell back to ${expected}; first message ${r.fromBlockMs.toFixed(0)} ms after the blocked upgrade ` +
      `(${r.fromStartMs.toFixed(0)} ms after connect()); states ${r.states.join(' ')}`);
    return r;
  }

  it('nginx refusing WebSocket upgrades: falls back to SSE (POST /publish for writes)', async () => {
    await scenario('nginx-no-websocket.conf', 'sse', 'demo:fallback-sse');
  });

  it('nginx buffering responses: SSE yields no bytes, falls back to long polling', async () => {
    const r = await scenario('nginx-buffering.conf', 'poll', 'demo:fallback-poll');
    assert.ok(r.states.includes('disconnected:sse'), r.states.join(' '));
  });
});
