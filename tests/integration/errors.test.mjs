// Every error of the contract: JSON body {"error":{"code","message"}} with the right status,
// for bad JSON, wrong field types, invalid channel names (publish, history, SSE, poll),
// oversized bodies, data and headers, bad / truncated / tampered / forged cursors, unknown
// paths, wrong methods, API keys, client publish, and non-HTTP bytes. Afterwards the
// server still serves and no accepted publication was lost.
import { test as nodeTest, before, after } from 'node:test';

// Every test is bounded in time (on top of the bounded waits inside).
const test = (name, fn) => nodeTest(name, { timeout: 60000 }, fn);
import assert from 'node:assert/strict';
import * as H from './lib/herald.mjs';

let h;
const accepted = [];  // offsets accepted on OK_CH, in order
const OK_CH = 'err:ok';

before(async () => {
  h = await H.startHerald(['--threads', '2', '--max-body-size', '20000', '--max-message-size', '10000',
    '--max-header-size', '4096', '--max-broadcast-channels', '3', '--namespace', 'chat:client_publish=true']);
});
after(async () => { await h?.stop(); });

async function okPublish(data) {
  const r = await H.publish(h, OK_CH, data);
  accepted.push(r.offset);
  return r;
}

/** Asserts an error reply: status, JSON {"error":{"code","message"}}, the code. */
function assertError(r, status, code, what = '') {
  const body = r.text ?? r.body;
  assert.equal(r.status, status, `${what}: expected ${status} ${code}, got ${r.status} ${body}`);
  const ct = r.headers?.['content-type'];
  if (ct !== undefined) assert.match(ct, /^application\/json/, `${what}: content-type`);
  const j = r.json ?? JSON.parse(body);
  assert.ok(j && j.error && typeof j.error === 'object', `${what}: error body ${body}`);
  assert.deepEqual(Object.keys(j), ['error'], `${what}: only "error" at top level`);
  assert.equal(j.error.code, code, `${what}: error code in ${body}`);
  assert.equal(typeof j.error.message, 'string');
  assert.ok(j.error.message.length > 0);
}

const post = (p, body, opts = {}) => H.request(h, 'POST', p, { body, ...opts });

test('publish: malformed JSON -> 400 bad_json', async () => {
  await okPublish('before errors');
  for (const body of ['{', '{"channel":"err:ok","data":}', 'not json', '', '{"channel":"err:ok","data":1}}', '[1,2', '\u0000']) {
    assertError(await post('/api/publish', body), 400, 'bad_json', `body ${JSON.stringify(body)}`);
  }
  const c = await H.curlHttp(h, 'POST', '/api/publish', { body: '{"channel":' });
  assertError(c, 400, 'bad_json', 'curl');
});

test('publish: wrong types and missing fields -> 400 bad_request', async () => {
  const cases = [
    [[1, 2, 3], 'body is an array'],
    ['"string"', 'body is a string'],
    [{ channel: 42, data: 1 }, 'channel as number'],
    [{ channel: ['err:ok'], data: 1 }, 'channel as array'],
    [{ channel: null, data: 1 }, 'channel null'],
    [{ data: 1 }, 'channel missing'],
    [{ channel: OK_CH }, 'data missing'],
    [{ channel: OK_CH, data: 1, event: 5 }, 'event as number'],
    [{ channel: OK_CH, data: 1, event: 'has space' }, 'event with a space'],
    [{ channel: OK_CH, data: 1, event: '' }, 'empty event'],
    [{ channel: OK_CH, data: 1, event: 'e'.repeat(65) }, 'event of 65 chars'],
    [{ channel: OK_CH, data: 1, event: 'é' }, 'event non-ASCII'],
    [{ channel: OK_CH, data: 1, event: 'a\nb' }, 'event with newline'],
  ];
  for (const [body, what] of cases) {
    const r = await post('/api/publish', typeof body === 'string' ? body : JSON.stringify(body));
    assertError(r, 400, 'bad_request', what);
  }
  // Broadcast shapes.
  for (const [body, what] of [[{ channels: 'err:ok', data: 1 }, 'channels not an array'], [{ channels: [], data: 1 }, 'empty channels'],
    [{ data: 1 }, 'channels missing'], [{ channels: [OK_CH] }, 'broadcast without data'], [{ channels: [7], data: 1 }, 'channel as number']]) {
    assertError(await post('/api/broadcast', body), 400, 'bad_request', what);
  }
  // The limits of the event name are exact: 64 characters of [A-Za-z0-9_-] are fine.
  await okPublish(1);
  const r = await post('/api/publish', { channel: OK_CH, data: 2, event: 'A-z_9'.repeat(12) + 'abcd' });
  assert.equal(r.status, 200, r.text);
  accepted.push(r.json.offset);
});

const badNames = [
  ['', 'empty'],
  ['a'.repeat(256), '256 bytes'],
  ['a b', 'space'],
  ['a?b', 'question mark'],
  ['a#b', 'hash'],
  ['a&b', 'ampersand'],
  ['é', 'non-ASCII'],
  ['a\nb', 'newline'],
  ['a"b', 'quote'],
  ['a*b', 'star'],
];

test('invalid channel names -> 400 invalid_channel on publish, broadcast, history, SSE and poll', async () => {
  for (const [name, what] of badNames) {
    assertError(await post('/api/publish', { channel: name, data: 1 }), 400, 'invalid_channel', `publish ${what}`);
    assertError(await post('/api/broadcast', { channels: [OK_CH, name], data: 1 }), 400, 'invalid_channel', `broadcast ${what}`);
    const q = `channel=${encodeURIComponent(name)}`;
    assertError(await H.get(h, `/api/history?${q}`), 400, 'invalid_channel', `history ${what}`);
    assertError(await H.get(h, `/poll?${q}&timeout=0`), 400, 'invalid_channel', `poll ${what}`);
    const sse = await H.SSEReader.open(h, { pathQuery: `/sse?${q}` });
    sse.close();
    assertError(sse, 400, 'invalid_channel', `sse ${what}`);
    // One bad name among good ones spoils the request.
    assertError(await H.get(h, `/poll?channel=err:fine&${q}&timeout=0`), 400, 'invalid_channel', `poll mixed ${what}`);
  }
  // A broadcast with an invalid name publishes nothing, not even to the valid channels.
  const hist = await H.history(h, OK_CH, {});
  assert.deepEqual(hist.json.messages.map((m) => m.offset), accepted);
  // Edge of validity: 255 bytes of every allowed character class are accepted everywhere.
  const longName = ('Az09_.:@/-'.repeat(26)).slice(0, 255);
  const p = await post('/api/publish', { channel: longName, data: 'long' });
  assert.equal(p.status, 200, p.text);
  const { reader, preamble } = await H.openSynced(h, { channels: longName, since: H.encodeCursor([{ tag: H.channelTag(longName), epoch: H.decodeCursor(p.json.cursor)[0].epoch, offset: 0 }]) });
  reader.close();
  assert.equal(JSON.parse(preamble.find((b) => b.data).data).data, 'long');
  assert.equal((await H.get(h, `/api/history?channel=${encodeURIComponent(longName)}`)).json.messages.length, 1);
  // curl on the SSE and poll endpoints.
  const c1 = await H.curlHttp(h, 'GET', '/sse?channel=bad%20name');
  assertError(c1, 400, 'invalid_channel', 'curl sse');
  const c2 = await H.curlHttp(h, 'GET', '/poll?channel=&timeout=0');
  assertError(c2, 400, 'invalid_channel', 'curl poll');
});

test('missing or malformed parameters -> 400 bad_request', async () => {
  assertError(await H.get(h, '/sse'), 400, 'bad_request', 'sse without channel');
  assertError(await H.get(h, '/poll?timeout=0'), 400, 'bad_request', 'poll without channel');
  assertError(await H.get(h, '/api/history'), 400, 'bad_request', 'history without channel');
  for (const t of ['-1', 'abc', '1.5', '']) assertError(await H.get(h, `/poll?channel=x&timeout=${t}`), 400, 'bad_request', `timeout=${t}`);
  for (const l of ['0', '-1', 'abc']) assertError(await H.get(h, `/poll?channel=x&timeout=0&limit=${l}`), 400, 'bad_request', `poll limit=${l}`);
  for (const l of ['-1', 'abc', '']) assertError(await H.get(h, `/api/history?channel=x&limit=${l}`), 400, 'bad_request', `history limit=${l}`);
});

test('too large: body over --max-body-size and data over --max-message-size -> 413; headers -> 431', async () => {
  // Data over the message limit inside a body under the body limit.
  const r = await post('/api/publish', { channel: OK_CH, data: 'd'.repeat(12000) });
  assertError(r, 413, 'too_large', 'data of 12000 bytes');
  // Exactly at the limit is fine: the compact JSON of the data is 10000 bytes.
  const okData = 'd'.repeat(9998);
  const ok = await post('/api/publish', { channel: OK_CH, data: okData });
  assert.equal(ok.status, 200, ok.text);
  accepted.push(ok.json.offset);
  assertError(await post('/api/broadcast', { channels: [OK_CH], data: 'd'.repeat(10001) }), 413, 'too_large', 'broadcast data');
  assertError(await post('/api/broadcast', { channels: ['b1', 'b2', 'b3', 'b4'], data: 1 }), 413, 'too_large', 'broadcast over --max-broadcast-channels');
  // Body over the body limit: answered 413 then closed (read on a raw socket, the body
  // may not be read by the server).
  const big = JSON.stringify({ channel: OK_CH, data: 'b'.repeat(30000) });
  const raw = await H.rawExchange(h, `POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n${big}`);
  const resp = H.parseRawResponse(raw.data);
  assert.ok(resp, `no HTTP response to an oversized body: ${JSON.stringify(raw)}`);
  assertError(resp, 413, 'too_large', 'body of 30 KB');
  assert.ok(raw.closed, 'connection closed after 413');
  const viaCurl = await H.curlHttp(h, 'POST', '/api/publish', { body: big });
  assertError(viaCurl, 413, 'too_large', 'curl oversized body');
  // Headers over --max-header-size.
  const rawH = await H.rawExchange(h, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(6000)}\r\n\r\n`);
  const rh = H.parseRawResponse(rawH.data);
  assert.ok(rh, `no HTTP response to oversized headers: ${JSON.stringify(rawH.data.slice(0, 200))}`);
  assertError(rh, 431, 'too_large', 'headers of 6 KB');
  assert.ok(rawH.closed, 'connection closed after 431');
  const longTarget = await H.rawExchange(h, `GET /sse?channel=${'c'.repeat(5000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assertError(H.parseRawResponse(longTarget.data), 431, 'too_large', 'request line of 5 KB');
  const curlH = await H.curlHttp(h, 'GET', '/healthz', { headers: { 'X-Big': 'h'.repeat(6000) } });
  assertError(curlH, 431, 'too_large', 'curl oversized header');
  // None of it was published.
  const hist = await H.history(h, OK_CH, {});
  assert.deepEqual(hist.json.messages.map((m) => m.offset), accepted);
  assert.equal(hist.json.messages.at(-1).data, okData);
});

/** The raw bytes `body` (version byte included) with their check, base64url. */
function withCheck(body) {
  const c = H.fnv1a(body);
  return Buffer.from([...body, c & 0xff, (c >>> 8) & 0xff]).toString('base64url');
}

function withVersion(cursor, version) {
  const raw = [...Buffer.from(cursor, 'base64url')].slice(0, -2);
  raw[0] = version;
  return withCheck(raw);
}

/** Variants of a valid cursor that must all be refused. */
function badCursors(valid) {
  const flip = (s, i) => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const c = alphabet[(alphabet.indexOf(s[i]) + 1) % 64];
    return s.slice(0, i) + c + s.slice(i + 1);
  };
  const out = [
    ['garbage', '!!!not-a-cursor!!!'],
    ['short', 'abc'],
    ['padding', `${valid}=`],
    ['truncated by 2', valid.slice(0, -2)],
    ['truncated by 1', valid.slice(0, -1)],
    ['truncated to half', valid.slice(0, Math.floor(valid.length / 2))],
    ['too long', 'A'.repeat(1100)],
    ['wrong version (valid check)', withVersion(valid, 2)],
    ['no entry (valid check)', withCheck([1])],
    ['entry cut short (valid check)', withCheck([...Buffer.from(valid, 'base64url')].slice(0, 6))],
    ['space inside', `${valid.slice(0, 4)} ${valid.slice(4)}`],
  ];
  for (const i of [0, 3, Math.floor(valid.length / 2), valid.length - 3, valid.length - 1])
    out.push([`tampered at ${i}`, flip(valid, i)]);
  return out;
}

test('bad cursors (garbage, truncated, tampered) -> 400 bad_cursor on SSE (since and Last-Event-ID), poll and history', async () => {
  const ch = 'err:cursor';
  await H.publish(h, ch, 1);
  const p2 = await H.publish(h, ch, 2);
  await H.publish(h, ch, 3);
  const valid = p2.cursor;
  for (const [what, bad] of badCursors(valid)) {
    assert.notEqual(bad, valid);
    const q = encodeURIComponent(bad);
    assertError(await H.get(h, `/poll?channel=${ch}&since=${q}&timeout=0`), 400, 'bad_cursor', `poll ${what}`);
    assertError(await H.get(h, `/api/history?channel=${ch}&since=${q}`), 400, 'bad_cursor', `history ${what}`);
    const s1 = await H.SSEReader.open(h, { pathQuery: `/sse?channel=${ch}&since=${q}` });
    s1.close();
    assertError(s1, 400, 'bad_cursor', `sse since ${what}`);
    if (!/[\s]/.test(bad)) {
      const s2 = await H.SSEReader.open(h, { channels: ch, lastEventId: bad });
      s2.close();
      assertError(s2, 400, 'bad_cursor', `sse Last-Event-ID ${what}`);
    }
  }
  // The valid one still works after all that.
  const r = await H.poll(h, ch, { since: valid, timeout: 0 });
  assert.deepEqual(r.json.messages.map((m) => m.data), [3]);
  const c = await H.curlHttp(h, 'GET', `/sse?channel=${ch}&since=${encodeURIComponent(valid.slice(0, -1))}`);
  assertError(c, 400, 'bad_cursor', 'curl sse truncated cursor');
});

test('forged cursor: valid format but offset ahead of the channel -> 400 bad_cursor; other epoch -> reset', async () => {
  const ch = 'err:forged';
  const p = await H.publish(h, ch, 'only');
  const { tag, epoch } = H.decodeCursor(p.cursor)[0];
  assert.equal(tag, H.channelTag(ch), 'the cursor layout is as documented');
  assert.equal(H.encodeCursor([{ tag, epoch, offset: 1 }]), p.cursor, 'the JS encoder matches the server');
  for (const offset of [2, 1000, 2n ** 64n - 1n]) {
    const forged = H.encodeCursor([{ tag, epoch, offset }]);
    assertError(await H.get(h, `/poll?channel=${ch}&since=${forged}&timeout=0`), 400, 'bad_cursor', `poll ahead ${offset}`);
    assertError(await H.get(h, `/api/history?channel=${ch}&since=${forged}`), 400, 'bad_cursor', `history ahead ${offset}`);
    const s = await H.SSEReader.open(h, { channels: ch, since: forged });
    s.close();
    assertError(s, 400, 'bad_cursor', `sse since ahead ${offset}`);
    const s2 = await H.SSEReader.open(h, { channels: ch, lastEventId: forged });
    s2.close();
    assertError(s2, 400, 'bad_cursor', `sse Last-Event-ID ahead ${offset}`);
  }
  // A two-channel cursor with one channel ahead is refused as a whole.
  const other = await H.publish(h, 'err:forged2', 'x');
  const both = H.encodeCursor([H.decodeCursor(other.cursor)[0], { tag, epoch, offset: 5 }]);
  assertError(await H.get(h, `/poll?channel=err:forged2&channel=${ch}&since=${both}&timeout=0`), 400, 'bad_cursor', 'poll 2 channels');
  // Offset over 64 bits (an 11th LEB128 byte) is malformed.
  const raw = [...Buffer.from(H.encodeCursor([{ tag, epoch, offset: 2n ** 64n - 1n }]), 'base64url')].slice(0, -2);
  raw.splice(raw.length - 1, 1, 0xff, 0x01);
  const chk = H.fnv1a(raw);
  const over = Buffer.from([...raw, chk & 0xff, (chk >>> 8) & 0xff]).toString('base64url');
  assertError(await H.get(h, `/api/history?channel=${ch}&since=${over}`), 400, 'bad_cursor', 'offset over 64 bits');
  // History: a cursor that does not cover the channel.
  assertError(await H.get(h, `/api/history?channel=${ch}&since=${other.cursor}`), 400, 'bad_cursor', 'history other channel');
  // A well-formed cursor of another epoch is not an error but a reset.
  const stale = H.encodeCursor([{ tag, epoch: (epoch ^ 0x5a5a5a5a) >>> 0 || 1, offset: 1 }]);
  const r = await H.poll(h, ch, { since: stale, timeout: 0 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.recovered, false);
  assert.deepEqual(r.json.reset, [ch]);
  // Nothing was lost on the channel.
  assert.deepEqual((await H.history(h, ch, {})).json.messages.map((m) => m.data), ['only']);
});

test('unknown paths -> 404 not_found', async () => {
  for (const p of ['/nope', '/api/nope', '/api', '/api/publish/extra', '/sse/x', '/poll/', '/metrics/x', '/index.html', '/favicon.ico']) {
    assertError(await H.get(h, p), 404, 'not_found', `GET ${p}`);
  }
  assertError(await post('/api/unknown', { channel: OK_CH, data: 1 }), 404, 'not_found', 'POST /api/unknown');
  assertError(await H.curlHttp(h, 'GET', '/nope'), 404, 'not_found', 'curl');
});

test('wrong methods -> 405 method_not_allowed with an Allow header', async () => {
  const cases = [
    ['GET', '/api/publish', 'POST'],
    ['PUT', '/api/publish', 'POST'],
    ['GET', '/api/broadcast', 'POST'],
    ['POST', '/api/history', 'GET'],
    ['DELETE', '/api/channels', 'GET'],
    ['GET', '/publish', 'POST'],
    ['POST', '/metrics', 'GET'],
    ['POST', '/healthz', 'GET'],
    ['PUT', '/readyz', 'GET'],
    ['POST', '/', 'GET'],
    ['POST', '/sse?channel=a', 'GET'],
    ['POST', '/poll?channel=a', 'GET'],
    ['DELETE', '/sse?channel=a', 'GET'],
  ];
  const failures = [];
  for (const [method, p, allow] of cases) {
    const r = await H.request(h, method, p, method === 'POST' || method === 'PUT' ? { body: '{}' } : {});
    try {
      assertError(r, 405, 'method_not_allowed', `${method} ${p}`);
      assert.ok(r.headers.allow, `${method} ${p}: 405 without an Allow header`);
      assert.match(r.headers.allow, new RegExp(`\\b${allow}\\b`), `${method} ${p}: Allow: ${r.headers.allow}`);
    } catch (e) {
      failures.push(e.message.split('\n')[0]);
    }
  }
  assert.deepEqual(failures, []);
});

test('API key: 401 without, 403 with a wrong one, on every /api/* endpoint; other endpoints open', async () => {
  const key = 's3cret-Key_1';
  const hk = await H.startHerald(['--api-key', key, '--client-publish', 'true']);
  try {
    const calls = [
      ['POST', '/api/publish', { channel: 'k:a', data: 1 }],
      ['POST', '/api/broadcast', { channels: ['k:a'], data: 1 }],
      ['GET', '/api/history?channel=k:a'],
      ['GET', '/api/channels'],
      ['GET', '/api/nope'],
    ];
    for (const [method, p, body] of calls) {
      const opts = body ? { body } : {};
      assertError(await H.request(hk, method, p, opts), 401, 'unauthorized', `${method} ${p} without key`);
      for (const auth of [`Bearer ${key}x`, `Bearer ${key.slice(0, -1)}`, 'Bearer ', `Basic ${key}`, key, `bearer ${key}`]) {
        const r = await H.request(hk, method, p, { ...opts, headers: { Authorization: auth } });
        assert.ok(r.status === 403 || r.status === 401, `${method} ${p} with "${auth}": ${r.status} ${r.text}`);
        if (auth.startsWith('Bearer ') && auth !== 'Bearer ') assertError(r, 403, 'forbidden', `${method} ${p} wrong key`);
      }
    }
    const good = { Authorization: `Bearer ${key}` };
    const p = await H.request(hk, 'POST', '/api/publish', { body: { channel: 'k:a', data: 'ok' }, headers: good });
    assert.equal(p.status, 200, p.text);
    assert.equal((await H.request(hk, 'GET', '/api/history?channel=k:a', { headers: good })).json.messages.length, 1);
    assert.equal((await H.request(hk, 'GET', '/api/channels', { headers: good })).status, 200);
    assertError(await H.request(hk, 'GET', '/api/nope', { headers: good }), 404, 'not_found', 'unknown /api path with the key');
    // curl with and without the key
    assertError(await H.curlHttp(hk, 'POST', '/api/publish', { body: { channel: 'k:a', data: 2 } }), 401, 'unauthorized', 'curl no key');
    const cp = await H.curlHttp(hk, 'POST', '/api/publish', { body: { channel: 'k:a', data: 2 }, headers: good });
    assert.equal(cp.status, 200, cp.body);
    // Subscribing, client publish, health and metrics need no key.
    const { reader, preamble } = await H.openSynced(hk, { channels: 'k:a', since: p.json.cursor });
    reader.close();
    assert.deepEqual(preamble.filter((b) => b.data).map((b) => JSON.parse(b.data).data), [2]);
    assert.equal((await H.poll(hk, 'k:a', { timeout: 0 })).status, 200);
    assert.equal((await H.request(hk, 'POST', '/publish', { body: { channel: 'k:a', data: 3 } })).status, 200, '--client-publish true');
    for (const path of ['/healthz', '/readyz', '/metrics', '/']) assert.equal((await H.get(hk, path)).status, 200, path);
  } finally {
    await hk.stop();
  }
});

test('client publish: POST /publish is 403 unless the namespace allows it', async () => {
  assertError(await post('/publish', { channel: 'news', data: 1 }), 403, 'forbidden', 'default namespace');
  assertError(await post('/publish', { channel: 'other:room', data: 1 }), 403, 'forbidden', 'namespace other');
  assertError(await post('/publish', { channel: 'chatroom', data: 1 }), 403, 'forbidden', '"chatroom" is not in namespace chat');
  assertError(await H.curlHttp(h, 'POST', '/publish', { body: { channel: 'news', data: 1 } }), 403, 'forbidden', 'curl');
  // Refused publications left nothing behind.
  assert.deepEqual((await H.history(h, 'news', {})).json.messages, []);
  // Allowed in chat: delivered like any publication.
  const { reader } = await H.openSynced(h, { channels: 'chat:room' });
  try {
    const r = await post('/publish', { channel: 'chat:room', data: { text: 'hi' }, event: 'say' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.offset, 1);
    const e = await reader.nextEvent();
    assert.equal(e.event, 'say');
    assert.deepEqual(JSON.parse(e.data).data, { text: 'hi' });
    // The usual validation applies to client publish too.
    assertError(await post('/publish', { channel: 'chat:room' }), 400, 'bad_request', 'client publish without data');
    assertError(await post('/publish', '{'), 400, 'bad_json', 'client publish bad JSON');
  } finally {
    reader.close();
  }
});

test('limits: broker channel limit (per-channel error in a broadcast, 429 on publish), channels per connection', async () => {
  const hl = await H.startHerald(['--max-channels', '2', '--max-channels-per-connection', '2']);
  try {
    const r = await H.request(hl, 'POST', '/api/broadcast', { body: { channels: ['l:1', 'l:2', 'l:3'], data: 'x' } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.results.map((x) => x.channel), ['l:1', 'l:2', 'l:3']);
    assert.deepEqual(r.json.results.slice(0, 2).map((x) => x.offset), [1, 1]);
    const bad = r.json.results[2];
    assert.equal(bad.offset, undefined);
    assert.equal(typeof bad.error, 'object', `per-channel error: ${JSON.stringify(bad)}`);
    assert.equal(typeof bad.error.code, 'string');
    assert.equal(typeof bad.error.message, 'string');
    const p = await H.request(hl, 'POST', '/api/publish', { body: { channel: 'l:4', data: 1 } });
    assertError(p, 429, 'too_many_channels', 'publish past --max-channels');
    assert.equal(bad.error.code, 'too_many_channels');
    // The two accepted channels keep working.
    assert.equal((await H.request(hl, 'POST', '/api/publish', { body: { channel: 'l:1', data: 2 } })).json.offset, 2);
    // Three channels on one connection with --max-channels-per-connection 2.
    const s = await H.SSEReader.open(hl, { channels: ['l:1', 'l:2', 'l:5'] });
    s.close();
    assert.equal(s.status, 429, s.body);
    assert.equal(s.json.error.code, 'too_many_channels');
    const pl = await H.get(hl, '/poll?channel=l:1&channel=l:2&channel=l:3&timeout=0');
    assertError(pl, 429, 'too_many_channels', 'poll with 3 channels');
    assert.equal((await H.get(hl, '/healthz')).status, 200);
  } finally {
    await hl.stop();
  }
});

test('non-HTTP bytes on a raw socket -> 400 and the connection is closed', async () => {
  const garbage = [
    Buffer.from([0x00, 0x01, 0x02, 0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a]),
    Buffer.from('HELLO THERE\r\n\r\n'),
    Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a]),  // TLS-like
    Buffer.from('GET / HTTP/1.1\r\nHost x\r\n\r\n'),  // header without a colon
    Buffer.from('GET /healthz HTTP/1.1\r\nContent-Length: abc\r\n\r\n'),
    Buffer.from('\r\n\r\n\r\n\r\n\r\n'),
  ];
  for (const g of garbage) {
    const r = await H.rawExchange(h, g);
    const resp = H.parseRawResponse(r.data);
    assert.ok(resp, `no HTTP response to ${JSON.stringify(g.toString('latin1'))}: got ${JSON.stringify(r.data)}`);
    assertError(resp, 400, 'bad_request', `garbage ${JSON.stringify(g.toString('latin1'))}`);
    assert.ok(r.closed, `connection closed after garbage ${JSON.stringify(g.toString('latin1'))}`);
  }
});

test('a 400 for bad parameters keeps the connection usable (keep-alive)', async () => {
  const r = await H.rawExchange(h,
    'GET /poll?channel=a%20b HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const first = H.parseRawResponse(r.data);
  assertError(first, 400, 'invalid_channel', 'first request');
  const rest = r.data.slice(r.data.indexOf('\r\n\r\n') + 4 + Number(first.headers['content-length']));
  const second = H.parseRawResponse(rest);
  assert.ok(second, `second response missing: ${JSON.stringify(rest)}`);
  assert.equal(second.status, 200);
});

test('after all the errors the server still serves and no accepted publication was lost', async () => {
  assert.equal((await H.get(h, '/healthz')).status, 200);
  const { reader } = await H.openSynced(h, { channels: OK_CH });
  try {
    const p = await okPublish({ after: 'errors' });
    const e = await reader.nextEvent();
    assert.equal(e.id, p.cursor);
    assert.deepEqual(JSON.parse(e.data).data, { after: 'errors' });
  } finally {
    reader.close();
  }
  const hist = await H.history(h, OK_CH, { limit: 1000 });
  assert.deepEqual(hist.json.messages.map((m) => m.offset), accepted);
  assert.deepEqual(accepted, accepted.map((_, i) => i + 1), 'offsets gap-free: refused publications took none');
  const m = await H.metrics(h);
  assert.ok(m.get('herald_publish_errors_total') > 50, `publish errors counted: ${m.get('herald_publish_errors_total')}`);
  assert.ok(m.get('herald_http_responses_total{class="4xx"}') > 100);
  assert.equal(m.get('herald_http_responses_total{class="5xx"}'), 0);
  assert.equal(h.proc.exitCode, null, 'still running');
});
