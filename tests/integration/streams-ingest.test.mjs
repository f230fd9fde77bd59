// Stream ingest, POST /api/stream (docs/streams.md): bodies that arrive over time as text
// deltas (coalesced), NDJSON or an upstream SSE response; the end states (completed,
// error when the producer is killed or silent, aborted on a stop from the API, a client
// or a WebSocket); readers resuming mid-answer on SSE (npm eventsource through a proxy
// that drops connections), WebSocket and long polling without a duplicate or a gap;
// bad input (400/404/409/413/415).
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import EventSource from 'eventsource';
import * as H from './lib/herald.mjs';
import { HeraldWs } from './lib/ws-client.mjs';

const test = (name, fn) => nodeTest(name, { timeout: 30000 }, fn);

let h;
before(async () => {
  h = await H.startHerald(['--threads', '2', '--max-message-size', '4096',
    '--namespace', 'ai:stream_coalesce_ms=25,history_size=10000',
    '--namespace', 'fast:stream_coalesce_ms=0,history_size=10000',
    '--namespace', 'idle:stream_idle_timeout=1',
    '--namespace', 'small:stream_max_bytes=1000',
    '--namespace', 'chat:client_publish=true,stream_coalesce_ms=10']);
});
after(async () => { await h?.stop(); });

/**
 * A producer: POST /api/stream with a chunked body written piece by piece.
 * Returns { write(buf), end(), destroy(), reply } where reply resolves with
 * { status, json, text } (or rejects when the connection breaks).
 */
function producer(channel, contentType, { headers = {} } = {}) {
  const req = http.request({
    host: H.HOST, port: h.port, method: 'POST', path: `/api/stream?channel=${encodeURIComponent(channel)}`,
    headers: { 'Content-Type': contentType, ...headers }, agent: false,
  });
  const reply = new Promise((resolve, reject) => {
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, json, text, at: Date.now() });
      });
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  return {
    write: (b) => new Promise((resolve) => req.write(b, resolve)),
    end: () => req.end(),
    destroy: () => req.destroy(),
    reply,
  };
}

const history = async (ch) => (await H.history(h, ch, { since: 'earliest', limit: 1000 })).json.messages;
const textOf = (msgs) => msgs.filter((m) => m.event !== 'end').map((m) => m.data).join('');
const endOf = (msgs) => msgs.at(-1)?.event === 'end' ? msgs.at(-1).data : undefined;

test('text/plain: 400 small deltas become far fewer messages, the text equal byte for byte, UTF-8 split across writes', async () => {
  const ch = 'ai:coalesce';
  const p = producer(ch, 'text/plain; charset=utf-8');
  let sent = '';
  for (let i = 0; i < 400; i++) {
    const piece = Buffer.from(`t${i}é€😀 `, 'utf8');
    const cut = 1 + (i % (piece.length - 1));  // split inside a character now and then
    await p.write(piece.subarray(0, cut));
    await p.write(piece.subarray(cut));
    sent += piece.toString('utf8');
    if (i % 20 === 0) await H.sleep(5);
  }
  p.end();
  const r = await p.reply;
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.state, 'completed');
  assert.equal(r.json.channel, ch);
  const msgs = await history(ch);
  assert.equal(r.json.offset, msgs.length);
  assert.equal(textOf(msgs), sent);
  assert.ok(msgs.length < 100, `${msgs.length} messages for 800 writes`);
  assert.deepEqual(endOf(msgs), { state: 'completed', reason: null });
  const m = await H.metrics(h);
  assert.ok(m.get('herald_stream_ingests_total') >= 1);
});

test('text/plain with Content-Length (curl --data-binary) and a coalescing window of 0', async () => {
  const body = 'Hello, world: '.repeat(50);
  const r = await H.curl(['-s', '-X', 'POST', '-H', 'Content-Type: text/plain', '--data-binary', body,
    `${h.base}/api/stream?channel=fast:curl`]);
  const reply = JSON.parse(r.stdout);
  assert.equal(reply.state, 'completed');
  const msgs = await history('fast:curl');
  assert.equal(textOf(msgs), body);
});

test('application/x-ndjson: one message per line, lines split across writes', async () => {
  const ch = 'ai:ndjson';
  const p = producer(ch, 'application/x-ndjson');
  const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ i, n: 1.50, s: `x${i}` }).replace('1.5', '1.50'));
  const body = Buffer.from(lines.join('\n') + '\n', 'utf8');
  for (let i = 0; i < body.length; i += 7) await p.write(body.subarray(i, i + 7));
  p.end();
  const r = await p.reply;
  assert.equal(r.status, 200, r.text);
  const msgs = await history(ch);
  assert.equal(msgs.length, 51);
  assert.deepEqual(msgs.slice(0, 50).map((m) => m.data.i), lines.map((_, i) => i));
  const raw = await H.history(h, ch, { since: 'earliest', limit: 1 });
  assert.ok(raw.text.includes('"n":1.50'), 'numbers keep their spelling');
});

test('text/event-stream: an upstream model response piped as it is (OpenAI and Anthropic shapes)', async () => {
  const ch = 'ai:sse';
  const p = producer(ch, 'text/event-stream');
  const upstream = [
    'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n',
    ': ping\n\n',
    'event: content_block_delta\r\ndata: {"type":"content_block_delta","delta":{"text":"lo"}}\r\n\r\n',
    'data: [DONE]\n\n',
  ].join('');
  for (let i = 0; i < upstream.length; i += 5) await p.write(upstream.slice(i, i + 5));
  p.end();
  const r = await p.reply;
  assert.equal(r.status, 200, r.text);
  const msgs = await history(ch);
  assert.deepEqual(msgs.map((m) => [m.event ?? null, m.data]), [
    [null, { choices: [{ delta: { content: 'Hel' } }] }],
    ['content_block_delta', { type: 'content_block_delta', delta: { text: 'lo' } }],
    [null, '[DONE]'],
    ['end', { state: 'completed', reason: null }],
  ]);
});

test('a producer killed mid-answer (curl, SIGKILL) ends the stream with error; readers are told', async () => {
  const ch = 'ai:killed';
  const { reader } = await H.openSynced(h, { channels: ch });
  const curl = spawn('curl', ['-s', '-N', '-X', 'POST', '-H', 'Content-Type: text/plain', '-H', 'Expect:', '-T', '-',
    `${h.base}/api/stream?channel=${ch}`], { stdio: ['pipe', 'ignore', 'ignore'] });
  try {
    curl.stdin.write('partial answer ');
    const first = await reader.nextEvent(5000);
    assert.equal(JSON.parse(first.data).data, 'partial answer ');
    curl.kill('SIGKILL');
    const end = await reader.nextEvent(5000);
    assert.equal(end.event, 'end');
    assert.deepEqual(JSON.parse(end.data).data, { state: 'error', reason: 'producer disconnected' });
    await reader.waitClosed();
  } finally {
    curl.kill('SIGKILL');
    reader.close();
  }
});

test('a producer silent past the idle limit: error end, its request answered 408', async () => {
  const ch = 'idle:x';
  const p = producer(ch, 'text/plain');
  await p.write('one ');
  const t0 = Date.now();
  const r = await p.reply;
  assert.equal(r.status, 408, r.text);
  assert.equal(r.json.error.code, 'stream_timeout');
  assert.equal(r.json.error.state, 'error');
  assert.ok(Date.now() - t0 < 3000);
  const msgs = await history(ch);
  assert.equal(textOf(msgs), 'one ');
  assert.equal(endOf(msgs).state, 'error');
  assert.match(endOf(msgs).reason, /idle/);
});

test('stop from the API: the open ingest is answered aborted within a second, deltas before it kept', async () => {
  const ch = 'ai:stop';
  const p = producer(ch, 'text/plain');
  await p.write('before the stop ');
  await H.waitFor(async () => (await history(ch)).length === 1, { what: 'the first delta published' });
  const t0 = Date.now();
  const s = await H.request(h, 'POST', '/api/stream/stop', { body: { channel: ch, reason: 'user pressed stop' } });
  assert.equal(s.status, 200, s.text);
  assert.equal(s.json.state, 'aborted');
  const r = await p.reply;
  assert.ok(r.at - t0 < 1000, `answered in ${r.at - t0} ms`);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual({ state: r.json.state, offset: r.json.offset }, { state: 'aborted', offset: s.json.offset });
  p.destroy();
  const msgs = await history(ch);
  assert.equal(textOf(msgs), 'before the stop ');
  assert.deepEqual(endOf(msgs), { state: 'aborted', reason: 'user pressed stop' });
  const again = await H.request(h, 'POST', '/api/stream/stop', { body: { channel: ch } });
  assert.equal(again.status, 409);
});

test('stop from a client (POST /stop, WebSocket stop) where it may publish; refused where it may not', async () => {
  const p = producer('chat:a1', 'text/plain');
  await p.write('x');
  await H.waitFor(async () => (await history('chat:a1')).length === 1);
  const s = await H.request(h, 'POST', '/stop', { body: { channel: 'chat:a1' } });
  assert.equal(s.status, 200, s.text);
  assert.equal((await p.reply).json.state, 'aborted');
  p.destroy();

  const q = producer('chat:a2', 'text/plain');
  await q.write('y');
  await H.waitFor(async () => (await history('chat:a2')).length === 1);
  const ws = await HeraldWs.open(h);
  try {
    const r = await ws.request({ method: 'stop', channel: 'chat:a2', reason: 'tab closed' });
    assert.equal(r.result?.state, 'aborted', JSON.stringify(r));
    assert.equal((await q.reply).json.state, 'aborted');
    const denied = await ws.request({ method: 'stop', channel: 'ai:nope' });
    assert.equal(denied.error?.code, 'forbidden', JSON.stringify(denied));
  } finally {
    ws.destroy();
    q.destroy();
  }
  const forbidden = await H.request(h, 'POST', '/stop', { body: { channel: 'ai:nope' } });
  assert.equal(forbidden.status, 403, forbidden.text);
  const unknown = await H.request(h, 'POST', '/api/stream/stop', { body: { channel: 'ai:never-streamed' } });
  assert.equal(unknown.status, 404, unknown.text);
});

test('a piecewise producer (expected_offset appends) is stopped by its next append getting 409', async () => {
  const ch = 'ai:piecewise';
  assert.equal((await H.request(h, 'POST', '/api/publish', { body: { channel: ch, data: 'a', expected_offset: 1 } })).status, 200);
  const s = await H.request(h, 'POST', '/api/stream/stop', { body: { channel: ch } });
  assert.equal(s.status, 200, s.text);
  assert.equal(s.json.offset, 2);
  const next = await H.request(h, 'POST', '/api/publish', { body: { channel: ch, data: 'b', expected_offset: 2 } });
  assert.equal(next.status, 409);
  assert.equal(next.json.error.code, 'stream_ended');
});

test('readers resume mid-answer without a duplicate or a gap: EventSource through a dropping proxy, WebSocket, long polling', async () => {
  const ch = 'ai:resume';
  const proxy = await H.startProxy(h.port);
  const esText = [];
  let esEnd;
  const es = new EventSource(`http://${H.HOST}:${proxy.port}/sse?channel=${ch}&since=earliest`);
  es.onmessage = (e) => esText.push(JSON.parse(e.data).data);
  const esDone = new Promise((resolve) => {
    es.addEventListener('end', (e) => { esEnd = JSON.parse(e.data).data; });
    es.onerror = (e) => { if (e.status === 204) resolve(); };
  });
  // WebSocket: reconnects with its last cursor after each drop.
  let wsText = [], wsCursor, wsEnd;
  const wsFollow = (async () => {
    while (!wsEnd) {
      const ws = await HeraldWs.open(h);
      try {
        await ws.subscribe(ch, wsCursor ?? 'earliest');
        for (let i = 0; i < 15 && !wsEnd; i++) {
          const push = await ws.nextPush(10000);
          wsCursor = push.cursor;
          if (push.event === 'end') wsEnd = push.data; else wsText.push(push.data);
        }
      } finally {
        ws.destroy();
      }
    }
  })();
  // Long polling: small pages.
  const pollText = [];
  let pollEnd;
  const pollFollow = (async () => {
    let cursor = 'earliest';
    for (;;) {
      const r = await H.poll(h, ch, { since: cursor, limit: 7, timeout: 5 });
      if (r.status === 204) return;
      assert.equal(r.status, 200, r.text);
      for (const m of r.json.messages) if (m.event === 'end') pollEnd = m.data; else pollText.push(m.data);
      cursor = r.json.cursor;
    }
  })();

  const p = producer(ch, 'text/plain');
  let sent = '';
  for (let i = 0; i < 120; i++) {
    const tok = `w${i} `;
    sent += tok;
    await p.write(tok);
    await H.sleep(8);
    if (i % 30 === 15) proxy.dropAll();  // EventSource reconnects by itself with Last-Event-ID
  }
  p.end();
  assert.equal((await p.reply).json.state, 'completed');
  await H.withTimeout(Promise.all([esDone, wsFollow, pollFollow]), 20000, 'readers reaching the end');
  es.close();
  await proxy.close();
  assert.equal(esText.join(''), sent, 'EventSource text');
  assert.equal(wsText.join(''), sent, 'WebSocket text');
  assert.equal(pollText.join(''), sent, 'long-poll text');
  for (const e of [esEnd, wsEnd, pollEnd]) assert.deepEqual(e, { state: 'completed', reason: null });
});

test('bad input: 409 for a second producer, 413 over the limits, 400 for a body that is not its type, 415, 405', async () => {
  const first = producer('ai:busy', 'text/plain');
  await first.write('a');
  await H.waitFor(async () => (await history('ai:busy')).length === 1);
  const second = await H.request(h, 'POST', '/api/stream?channel=ai:busy', { body: 'b', headers: { 'Content-Type': 'text/plain' } });
  assert.equal(second.status, 409, second.text);
  assert.equal(second.json.error.code, 'stream_busy');
  first.end();
  assert.equal((await first.reply).json.state, 'completed');

  const big = producer('small:big', 'text/plain');
  big.write('x'.repeat(600));
  big.write('y'.repeat(600));
  big.end();
  const r413 = await big.reply;
  assert.equal(r413.status, 413, r413.text);
  assert.equal(r413.json.error.state, 'error');
  assert.equal(endOf(await history('small:big')).state, 'error');

  const line = await H.request(h, 'POST', '/api/stream?channel=ai:bigline',
    { body: `{"ok":1}\n"${'z'.repeat(5000)}"\n`, headers: { 'Content-Type': 'application/x-ndjson' } });
  assert.equal(line.status, 413, line.text);
  assert.deepEqual((await history('ai:bigline')).map((m) => m.event ?? m.data.ok), [1, 'end'], 'the line before stays');

  const notJson = await H.request(h, 'POST', '/api/stream?channel=ai:notjson',
    { body: '{"a":1}\nnot json\n', headers: { 'Content-Type': 'application/x-ndjson' } });
  assert.equal(notJson.status, 400, notJson.text);
  assert.equal(notJson.json.error.code, 'bad_json');
  const notText = await H.request(h, 'POST', '/api/stream?channel=ai:nottext',
    { body: Buffer.from([0x61, 0xff, 0x62]), headers: { 'Content-Type': 'text/plain' } });
  assert.equal(notText.status, 400, notText.text);
  assert.equal(endOf(await history('ai:nottext')).state, 'error');

  const type = await H.request(h, 'POST', '/api/stream?channel=ai:t', { body: 'x', headers: { 'Content-Type': 'application/json' } });
  assert.equal(type.status, 415, type.text);
  const noChannel = await H.request(h, 'POST', '/api/stream', { body: 'x', headers: { 'Content-Type': 'text/plain' } });
  assert.equal(noChannel.status, 400);
  const get = await H.get(h, '/api/stream?channel=ai:t');
  assert.equal(get.status, 405);
  const ended = await H.request(h, 'POST', '/api/stream?channel=ai:stop', { body: 'late', headers: { 'Content-Type': 'text/plain' } });
  assert.equal(ended.status, 409, ended.text);
  assert.equal(ended.json.error.code, 'stream_ended');
  // The server is fine after all of it.
  assert.equal((await H.get(h, '/healthz')).status, 200);
});
