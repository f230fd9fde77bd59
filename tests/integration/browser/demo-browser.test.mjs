// The demo page (web/) with its backend (scripts/demo-producer.mjs) in headless Chromium,
// started as scripts/run-demo.sh starts them: the AI answer panel streams an answer,
// survives "drop the connection" (its text equals what herald holds, byte for byte) and
// stops; the chat panel shows who is online and who is typing between two pages.
// Screenshot: tests/integration/artifacts/demo-streams.png.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHerald, request, sleep } from '../lib/herald.mjs';
import { buildWeb, launchBrowser, WEB_DIR, REPO_DIR, ARTIFACTS_DIR } from '../lib/browser.mjs';
import { killTree } from '../lib/procs.mjs';

/** Starts the demo backend on a free port; resolves with { url, stop() }. */
async function startProducer(heraldBase, secretFile) {
  const child = spawn(process.execPath, [path.join(REPO_DIR, 'scripts/demo-producer.mjs'), '--port', '0',
    '--herald', heraldBase, '--token-secret-file', secretFile, '--tokens-per-second', '80'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`demo-producer did not start: ${out}`)), 10000);
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      const m = /demo-producer: (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
    child.on('exit', (code) => reject(new Error(`demo-producer exited ${code}: ${out}`)));
  });
  return { url, stop: () => killTree(child) };
}

describe('demo page: AI answer and chat panels in headless Chromium', { timeout: 180000 }, () => {
  let browser, h, producer, dir;
  before(async () => {
    buildWeb();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-demo-'));
    const secret = path.join(dir, 'secret');
    fs.writeFileSync(secret, 'demo-secret-for-the-test-0123456789abcdef', { mode: 0o600 });
    h = await startHerald(['--web-root', WEB_DIR, '--token-key', `hs256:@${secret}`,
      '--namespace', 'demo:client_publish=true,presence=true,join_leave=true,history_size=1000']);
    producer = await startProducer(h.base, secret);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    producer?.stop();
    await h?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const open = async (name, room) => {
    const page = await browser.newPage();
    await page.goto(`${h.base}/?room=${room}&name=${name}&backend=${encodeURIComponent(producer.url)}`);
    await page.waitForFunction(() => ['answer', 'chat'].every((id) => document.getElementById(id).dataset.state === 'connected'), null, { timeout: 10000 });
    return page;
  };
  const data = (page, id) => page.evaluate((id) => ({ ...document.getElementById(id).dataset, text: document.querySelector(`#${id} .answer`)?.textContent }), id);

  for (const t of ['websocket', 'sse', 'poll']) {
    it(`AI answer over ${t}: "drop the connection" mid-answer, the text goes on and equals herald's, byte for byte`, async () => {
      const page = await open('reader', `ai-${t}`);
      await page.selectOption('#answer select', t);
      await page.waitForFunction((t) => document.getElementById('answer').dataset.transport === t && document.getElementById('answer').dataset.state === 'connected', t, { timeout: 10000 });
      await page.click('#answer form button');
      await page.waitForFunction(() => Number(document.getElementById('answer').dataset.chars) > 80, null, { timeout: 10000 });
      await page.click('#answer [data-act=drop]');
      const atDrop = Number((await data(page, 'answer')).chars);
      await page.waitForFunction(() => document.getElementById('answer').dataset.end === 'completed', null, { timeout: 30000 });
      const d = await data(page, 'answer');
      const text = await page.evaluate(() => window.demo.answer.stream.text);
      const hist = await request(h, 'GET', `/api/history?channel=${encodeURIComponent(d.channel)}&since=earliest&limit=1000`);
      const stored = hist.json.messages.filter((m) => m.event !== 'end').map((m) => m.data).join('');
      assert.equal(text, stored, 'the text equals what the producer sent, byte for byte');
      assert.ok(atDrop < text.length, `dropped mid-answer (${atDrop} of ${text.length})`);
      assert.match(text, /^You asked: "What does herald do\?"\. A push server/);
      assert.match(text, /Ask again to stream another answer\.$/);
      assert.equal(await page.evaluate(() => window.demo.answer.drops), 1);
      assert.equal(await page.evaluate(() => window.demo.answer.client.transport), t);
      assert.match(d.text, /connection dropped here, resumed/);
      assert.match(d.text, /— completed$/);
      assert.deepEqual(page.errors, []);
      await page.close();
    });
  }

  it('AI answer: stop ends it "aborted" and the producer stops', async () => {
    const page = await open('stopper', 'ai-stop');
    await page.click('#answer form button');
    await page.waitForFunction(() => Number(document.getElementById('answer').dataset.chars) > 40, null, { timeout: 10000 });
    await page.click('#answer [data-act=stop]');
    await page.waitForFunction(() => document.getElementById('answer').dataset.end === 'aborted', null, { timeout: 5000 });
    const d = await data(page, 'answer');
    assert.match(d.text, /— aborted: stopped from the demo page$/);
    const hist = await request(h, 'GET', `/api/history?channel=${encodeURIComponent(d.channel)}&since=earliest&limit=1000`);
    const last = hist.json.messages.at(-1);
    assert.deepEqual([last.event, last.data.state], ['end', 'aborted']);
    await sleep(500);  // the producer writes nothing after herald answered it "aborted"
    const again = await request(h, 'GET', `/api/history?channel=${encodeURIComponent(d.channel)}&since=earliest&limit=1000`);
    assert.equal(again.json.messages.length, hist.json.messages.length);
    await page.close();
  });

  it('chat: who is online and who is typing reach another page (its panel on SSE)', async () => {
    const alice = await open('alice', 'chat');
    await alice.selectOption('#chat select', 'sse');
    await alice.waitForFunction(() => document.getElementById('chat').dataset.transport === 'sse' && document.getElementById('chat').dataset.state === 'connected', null, { timeout: 10000 });
    const bob = await open('bob', 'chat');
    await alice.waitForFunction(() => (document.getElementById('chat').dataset.online ?? '').split(',').sort().join() === 'alice,bob', null, { timeout: 10000 });
    await bob.waitForFunction(() => (document.getElementById('chat').dataset.online ?? '').split(',').sort().join() === 'alice,bob', null, { timeout: 10000 });
    await bob.fill('#chat input[name=text]', 'hello ali');
    await alice.waitForFunction(() => document.getElementById('chat').dataset.typing === 'bob', null, { timeout: 5000 });
    assert.match(await alice.textContent('#chat .typing'), /bob is typing…/);
    await bob.click('#chat form button');
    await alice.waitForFunction(() => /bob: hello ali/.test(document.querySelector('#chat .log').textContent), null, { timeout: 5000 });
    assert.match(await alice.textContent('#chat .log'), /bob joined/);
    await alice.waitForFunction(() => document.getElementById('chat').dataset.typing === '', null, { timeout: 5000 });
    fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
    await alice.screenshot({ path: path.join(ARTIFACTS_DIR, 'demo-streams.png'), fullPage: true });
    await bob.close();
    await alice.waitForFunction(() => document.getElementById('chat').dataset.online === 'alice', null, { timeout: 5000 });
    assert.match(await alice.textContent('#chat .log'), /bob left/);
    assert.deepEqual(alice.errors, []);
    await alice.close();
  });
});
