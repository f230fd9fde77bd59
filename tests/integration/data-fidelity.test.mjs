// Data fidelity (issue 11, finding 4; ../shared/API.md "Data fidelity and wire formats"):
// `data` reaches subscribers as the publisher wrote it. It is validated as JSON; only
// whitespace outside strings may be removed; numbers are never rewritten (`1.5` stays
// `1.5`, `1.0` stays `1.0`, a 30-digit integer keeps every digit) and strings keep their
// bytes (`"\u00e9"` stays `"\u00e9"`, not `"é"`).
//
// Every payload below is published through each of the four publish paths
// (POST /api/publish, POST /api/broadcast, POST /publish in a client-publish namespace,
// the WebSocket `publish` command) and read back, as raw bytes, on every read path
// (SSE, WebSocket pushes, long polling, GET /api/history, the WebSocket `history`
// command). The raw text of each `data` value is cut out of the received JSON with a
// span parser (JSON.parse would hide a rewritten number), whitespace outside strings is
// removed from both sides, and the two must be byte-identical.
//
// Also: the WebSocket command `id` is echoed as sent (`"id":1.0` → `"id":1.0`), and
// malformed JSON is still refused with 400 bad_json (and `bad_json` on WebSocket).
//
// Only 127.0.0.1; every wait is bounded; the only process started is herald.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './lib/herald.mjs';
import { WsConn, textFrame } from './lib/ws-client.mjs';

// The payloads, as the publisher writes them (raw JSON text).
const PAYLOADS = [
  '{"price":1.5,"qty":1.0,"t":1234.5678}',
  '1e3',
  '-0',
  '0.1e-5',
  '12345678901234567890123',                 // 23 digits: more than 64 bits
  '12345678901234567890123456789',           // 29 digits
  '-98765432109876543210.000000000000000001',
  '1E+2',
  '[1.0,2.50,-0.0,3e-0,100]',
  '"\\u00e9"',                               // must stay the 6 characters \u00e9
  '"caf\\u00e9 \\ud83d\\ude00 tab\\t quote\\" slash\\/ nl\\n"',
  '"é raw UTF-8 stays"',
  '{ "a" : [ 1 , 2.50 , { "b" : "x  y" , "c" : null } ] ,\n  "d" : { } , "e" : [ ] , "f" : true }',
  '{"nested":{"deep":{"deeper":[{"n":0.10},{"n":1.000e10}]}}}',
];

const NS = 'fid';  // namespace with client publish
let h;

before(async () => {
  h = await H.startHerald(['--namespace', `${NS}:client_publish=true,history_size=1000`, '--history-size', '1000']);
});

after(async () => { await h?.stop(); });

// ---------------------------------------------------------------------------------------
// A JSON parser that keeps the source span of every value.

function parseSpans(text) {
  let i = 0;
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  const fail = (what) => { throw new Error(`span parser: ${what} at ${i} in ${JSON.stringify(text.slice(Math.max(0, i - 40), i + 40))}`); };
  function value() {
    ws();
    const start = i;
    const c = text[i];
    if (c === '{') {
      i++;
      const entries = new Map();
      ws();
      if (text[i] === '}') { i++; return { type: 'object', start, end: i, entries }; }
      for (;;) {
        ws();
        const k = value();
        if (k.type !== 'string') fail('object key');
        ws();
        if (text[i] !== ':') fail('expected :');
        i++;
        const v = value();
        entries.set(JSON.parse(text.slice(k.start, k.end)), v);
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return { type: 'object', start, end: i, entries }; }
        fail('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const items = [];
      ws();
      if (text[i] === ']') { i++; return { type: 'array', start, end: i, items }; }
      for (;;) {
        items.push(value());
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return { type: 'array', start, end: i, items }; }
        fail('expected , or ]');
      }
    }
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      if (text[i] !== '"') fail('unterminated string');
      i++;
      return { type: 'string', start, end: i };
    }
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 4096));
    if (!m) fail('unexpected character');
    i += m[0].length;
    return { type: 'scalar', start, end: i };
  }
  const root = value();
  ws();
  if (i !== text.length) fail('trailing characters');
  return root;
}

/** The raw text of the value at `path` (keys and indexes) in `text`. */
function rawAt(text, path) {
  let node = parseSpans(text);
  for (const p of path) {
    if (typeof p === 'number') node = node.items?.[p];
    else node = node.entries?.get(p);
    if (!node) throw new Error(`no ${path.join('.')} in ${text.slice(0, 300)}`);
  }
  return text.slice(node.start, node.end);
}

/** Removes whitespace outside strings (the only change the contract allows). */
function squeeze(json) {
  let out = '';
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let j = i + 1;
      while (j < json.length && json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      out += json.slice(i, j + 1);
      i = j;
    } else if (!' \t\n\r'.includes(c)) out += c;
  }
  return out;
}

const expected = PAYLOADS.map(squeeze);

// ---------------------------------------------------------------------------------------
// Raw readers

/** A WebSocket (WsConn: raw text of every frame) subscribed to `channels`. */
async function wsSubscriber(channels) {
  const c = await WsConn.connect(h, { autoPong: true });
  assert.equal(c.status, 101);
  const texts = [];
  const waiters = [];
  c.onEvent = (e) => {
    if (e.type !== 'message') return;
    texts.push(e.text);
    for (const w of waiters.splice(0)) w();
  };
  const waitFor = async (pred, what, timeoutMs = 10000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = pred();
      if (r) return r;
      if (Date.now() > deadline) throw new Error(`WebSocket: timed out waiting for ${what}; got ${texts.length} messages: ${texts.slice(-3).join(' | ').slice(0, 500)}`);
      await new Promise((resolve) => { waiters.push(resolve); setTimeout(resolve, 100); });
    }
  };
  let id = 100;
  for (const ch of channels) {
    const myId = id++;
    await c.sendRaw(textFrame(JSON.stringify({ id: myId, method: 'subscribe', channel: ch })));
    await waitFor(() => texts.some((t) => t.startsWith(`{"id":${myId},"result"`)), `the subscribe reply ${myId}`);
  }
  return { c, texts, waitFor };
}

/** Pushes (raw texts) of `channel` among the texts received. */
const pushesOf = (texts, channel) => texts.filter((t) => t.startsWith('{"push":') && JSON.parse(t).push.channel === channel);

// ---------------------------------------------------------------------------------------
// Publish paths (raw bodies, so the payload's bytes reach herald as written)

const PATHS = {
  'POST /api/publish': async (ch, raw) => {
    const r = await H.request(h, 'POST', '/api/publish', { body: `{"channel":${JSON.stringify(ch)},"data":${raw}}` });
    assert.equal(r.status, 200, `/api/publish ${raw}: ${r.status} ${r.text}`);
  },
  'POST /api/broadcast': async (ch, raw) => {
    const r = await H.request(h, 'POST', '/api/broadcast', { body: `{"channels":[${JSON.stringify(ch)}],"data":${raw}}` });
    assert.equal(r.status, 200, `/api/broadcast ${raw}: ${r.status} ${r.text}`);
    assert.ok(r.json.results[0].offset, `/api/broadcast ${raw}: ${r.text}`);
  },
  'POST /publish': async (ch, raw) => {
    const r = await H.request(h, 'POST', '/publish', { body: `{"channel":${JSON.stringify(ch)},"data":${raw}}` });
    assert.equal(r.status, 200, `/publish ${raw}: ${r.status} ${r.text}`);
  },
  'WebSocket publish': null,  // filled in by the test (needs its connection)
};

test('published data arrives byte-identical (modulo whitespace outside strings) on every transport', { timeout: 60000 }, async (t) => {
  const channels = Object.keys(PATHS).map((_, i) => `${NS}:path${i}`);
  const startCursors = {};
  for (const ch of channels) {
    const r = await H.history(h, ch, { limit: 0 });
    assert.equal(r.status, 200, r.text);
    startCursors[ch] = r.json.cursor;
  }
  // Live readers: one SSE stream over the four channels, one WebSocket subscribed to all.
  const sse = await H.openSynced(h, { channels });
  const ws = await wsSubscriber(channels);
  // The publisher's own WebSocket (for the `publish` command).
  const pubWs = await wsSubscriber([]);
  let pubId = 1000;
  PATHS['WebSocket publish'] = async (ch, raw) => {
    const myId = pubId++;
    await pubWs.c.sendRaw(textFrame(`{"id":${myId},"method":"publish","channel":${JSON.stringify(ch)},"data":${raw}}`));
    const reply = await pubWs.waitFor(() => pubWs.texts.find((x) => x.startsWith(`{"id":${myId},`)), `the publish reply ${myId}`);
    assert.match(reply, /"result":\{"offset":\d+/, `WebSocket publish ${raw}: ${reply}`);
  };

  const failures = [];
  const check = (where, ch, k, got) => {
    const want = expected[k];
    const g = squeeze(got);
    if (g !== want) failures.push(`${where} on ${ch} (published by ${Object.keys(PATHS)[channels.indexOf(ch)]}): sent ${PAYLOADS[k]} → got ${got}`);
  };
  try {
    const names = Object.keys(PATHS);
    for (let p = 0; p < names.length; p++)
      for (const raw of PAYLOADS) await PATHS[names[p]](channels[p], raw);

    // SSE: one event per message, the data line is the message JSON.
    const events = await sse.reader.events(channels.length * PAYLOADS.length, 15000);
    for (let p = 0; p < channels.length; p++) {
      const mine = events.filter((e) => JSON.parse(e.data).channel === channels[p]);
      assert.equal(mine.length, PAYLOADS.length, `SSE events of ${channels[p]}`);
      mine.forEach((e, k) => check('SSE', channels[p], k, rawAt(e.data, ['data'])));
    }
    // WebSocket pushes.
    await ws.waitFor(() => channels.every((ch) => pushesOf(ws.texts, ch).length >= PAYLOADS.length), 'every push');
    for (const ch of channels)
      pushesOf(ws.texts, ch).forEach((x, k) => check('WebSocket push', ch, k, rawAt(x, ['push', 'data'])));
    // Long polling, from the cursor before the first publication.
    for (const ch of channels) {
      const r = await H.poll(h, ch, { since: startCursors[ch], timeout: 0, limit: 1000 });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.messages.length, PAYLOADS.length, `poll ${ch}: ${r.text.slice(0, 300)}`);
      PAYLOADS.forEach((_, k) => check('long poll', ch, k, rawAt(r.text, ['messages', k, 'data'])));
    }
    // GET /api/history.
    for (const ch of channels) {
      const r = await H.history(h, ch, { since: startCursors[ch], limit: 1000 });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.messages.length, PAYLOADS.length, `history ${ch}`);
      PAYLOADS.forEach((_, k) => check('/api/history', ch, k, rawAt(r.text, ['messages', k, 'data'])));
    }
    // The WebSocket history command.
    for (const ch of channels) {
      const myId = pubId++;
      await pubWs.c.sendRaw(textFrame(JSON.stringify({ id: myId, method: 'history', channel: ch, since: startCursors[ch], limit: 1000 })));
      const reply = await pubWs.waitFor(() => pubWs.texts.find((x) => x.startsWith(`{"id":${myId},`)), `the history reply ${myId}`);
      PAYLOADS.forEach((_, k) => check('WebSocket history', ch, k, rawAt(reply, ['result', 'messages', k, 'data'])));
    }
  } finally {
    sse.reader.close();
    ws.c.destroy();
    pubWs.c.destroy();
  }
  t.diagnostic(`${failures.length} rewritten deliveries out of ${channels.length * PAYLOADS.length * 6}`);
  for (const f of failures.slice(0, 12)) t.diagnostic(f);
  assert.deepEqual(failures.slice(0, 30), [], `data was rewritten (${failures.length} deliveries; first ones listed)`);
});

test('the WebSocket command id is echoed as sent', { timeout: 60000 }, async () => {
  const ws = await wsSubscriber([]);
  try {
    const cases = [
      ['1.0', '1.0'],
      ['7', '7'],
      ['"req-\\u0041"', null],     // a string id: the same JSON string (either spelling)
    ];
    const seen = [];
    for (const [rawId, want] of cases) {
      const before = ws.texts.length;
      await ws.c.sendRaw(textFrame(`{"id":${rawId},"method":"ping"}`));
      const reply = await ws.waitFor(() => ws.texts.slice(before).find((x) => /^\{"id":/.test(x)), `the reply to id ${rawId}`);
      const got = rawAt(reply, ['id']);
      seen.push(`${rawId} → ${reply}`);
      if (want !== null) assert.equal(got, want, `id ${rawId} echoed as ${got} (${reply})`);
      else assert.equal(JSON.parse(got), JSON.parse(rawId), `id ${rawId} echoed as ${got}`);
      assert.ok('result' in JSON.parse(reply), `id ${rawId}: ${reply}`);
    }
  } finally {
    ws.c.destroy();
  }
});

test('malformed JSON is still refused with bad_json on every publish path', { timeout: 60000 }, async () => {
  const bad = ['1.', '01', '[1,]', '{"a":1,}', '"\\u00zz"', 'nan', '+1', '.5', '1e', '"unterminated', '{"a" 1}', "'single'"];
  for (const raw of bad) {
    for (const p of ['/api/publish', '/publish']) {
      const r = await H.request(h, 'POST', p, { body: `{"channel":"${NS}:bad","data":${raw}}` });
      assert.equal(r.status, 400, `${p} data ${raw}: ${r.status} ${r.text}`);
      assert.equal(r.json?.error?.code, 'bad_json', `${p} data ${raw}: ${r.text}`);
    }
    const r = await H.request(h, 'POST', '/api/broadcast', { body: `{"channels":["${NS}:bad"],"data":${raw}}` });
    assert.equal(r.status, 400, `/api/broadcast data ${raw}: ${r.status} ${r.text}`);
    assert.equal(r.json?.error?.code, 'bad_json', `/api/broadcast data ${raw}: ${r.text}`);
  }
  // Trailing bytes after the body's object.
  const r = await H.request(h, 'POST', '/api/publish', { body: `{"channel":"${NS}:bad","data":1} x` });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json?.error?.code, 'bad_json', r.text);
  // WebSocket: a command that is not JSON gets a bad_json error (id null: unreadable).
  const ws = await wsSubscriber([]);
  try {
    for (const raw of bad.slice(0, 6)) {
      const before = ws.texts.length;
      await ws.c.sendRaw(textFrame(`{"id":1,"method":"publish","channel":"${NS}:bad","data":${raw}}`));
      const reply = await ws.waitFor(() => ws.texts.slice(before).find((x) => /"error"/.test(x)), `the error for ${raw}`);
      assert.equal(JSON.parse(reply).error.code, 'bad_json', `WebSocket publish data ${raw}: ${reply}`);
    }
  } finally {
    ws.c.destroy();
  }
  // Nothing was published.
  const hist = await H.history(h, `${NS}:bad`, { limit: 10 });
  assert.deepEqual(hist.json.messages, []);
});
