// Connection tokens (JWT), tickets and namespace policy against the real binary, every
// refusal on every transport (docs/security.md):
//   - tokens in `Authorization: Bearer` on GET /sse, GET /poll, GET /ws (the upgrade),
//     POST /publish and POST /ticket; tickets in `?ticket=` on /sse, /poll, /ws;
//   - refusals: 401 token_invalid / token_expired / token_not_yet_valid / ticket_invalid /
//     unauthorized, 403 forbidden, 400 for a token plus a ticket; on /ws the upgrade
//     completes and the server closes at once with 4101 (invalid) or 4003 (expired);
//   - WebSocket subscribe / publish / history refused per channel (error replies);
//   - expiry on live connections: SSE `event: token_expired` with an id, WS close 4003,
//     a long poll's hold cut at the expiry;
//   - tickets: single use, --ticket-ttl, across two nodes sharing Redis;
//   - --token-leeway, --anonymous false, the metrics of refusals and expiries.
//
// Tokens are made with node:crypto (lib/jwt.mjs). Only 127.0.0.1; every wait is bounded.
import { test as nodeTest, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import * as H from './lib/herald.mjs';
import * as J from './lib/jwt.mjs';
import * as C from './lib/cluster.mjs';
import { WsConn, HeraldWs } from './lib/ws-client.mjs';

const test = (name, fn, opts = {}) => nodeTest(name, { timeout: 60000, ...opts }, fn);

const SECRET = J.secret(48);        // hs256, no kid
const SECRET2 = J.secret(40);       // hs256, kid k2
const RSA = J.rsaKeyPair();         // rs256, kid r1
const OTHER_RSA = J.rsaKeyPair();   // not configured anywhere
const ISS = 'https://issuer.test';
const AUD = 'herald-test';

const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-auth-'));
const PEM_FILE = path.join(keyDir, 'rs256.pem');
fs.writeFileSync(PEM_FILE, RSA.publicPem);
after(() => fs.rmSync(keyDir, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------
// Helpers

/** Claims with iss, aud and a 5-minute exp unless overridden (null removes a claim). */
function claims(extra = {}) {
  const c = { iss: ISS, aud: AUD, sub: 'user-1', exp: J.now(300), ...extra };
  for (const [k, v] of Object.entries(c)) if (v === null) delete c[k];
  return c;
}
const tok = (extra, { key = SECRET, kid } = {}) => J.hs256(claims(extra), key, kid ? { kid } : {});

/** Asserts an error reply: status, JSON {"error":{"code","message"}}, the code. */
function assertError(r, status, code, what = '') {
  const body = r.text ?? r.body;
  assert.equal(r.status, status, `${what}: expected ${status} ${code}, got ${r.status} ${body}`);
  const j = r.json ?? JSON.parse(body);
  assert.ok(j && j.error && typeof j.error === 'object', `${what}: error body ${body}`);
  assert.deepEqual(Object.keys(j), ['error'], `${what}: only "error" at top level: ${body}`);
  assert.equal(j.error.code, code, `${what}: error code in ${body}`);
  assert.equal(typeof j.error.message, 'string');
  assert.ok(j.error.message.length > 0, `${what}: empty message`);
}

/** A WS error reply {"id","error":{"code","message"}}. */
function assertWsError(r, code, what = '') {
  assert.ok(r && r.error, `${what}: expected error ${code}, got ${JSON.stringify(r)}`);
  assert.equal(r.error.code, code, `${what}: ${JSON.stringify(r)}`);
  assert.equal(typeof r.error.message, 'string');
}

const withTicket = (channels, ticket, extra = {}) => H.query(channels, { ...extra, ticket });

/** GET /sse; a 200 stream is closed at once. Resolves with {status, headers, json, text}. */
async function sse(h, channels, { headers = {}, ticket } = {}) {
  const r = await H.SSEReader.open(h, { pathQuery: `/sse?${withTicket(channels, ticket)}`, headers });
  r.close();
  return { status: r.status, headers: r.headers, json: r.json, text: r.body };
}

/** GET /poll with timeout=0. */
const poll = (h, channels, { headers = {}, ticket } = {}) =>
  H.get(h, `/poll?${withTicket(channels, ticket, { timeout: 0 })}`, { headers });

/** POST /publish (the client publish endpoint). */
const clientPublish = (h, channel, data, { headers = {} } = {}) =>
  H.request(h, 'POST', '/publish', { body: { channel, data }, headers });

/** POST /ticket. */
const postTicket = (h, headers = {}) => H.request(h, 'POST', '/ticket', { headers });

async function newTicket(h, token) {
  const r = await postTicket(h, J.bearer(token));
  assert.equal(r.status, 200, `POST /ticket: ${r.text}`);
  return r.json.ticket;
}

const wsPath = (ticket) => (ticket === undefined ? '/ws' : `/ws?ticket=${encodeURIComponent(ticket)}`);

/**
 * A /ws upgrade that the server must refuse by closing: 101, then a close frame with
 * `code` and nothing before it, then the end of TCP. Resolves with the close reason.
 */
async function wsRefused(h, code, { headers = {}, ticket, what = '' } = {}) {
  const c = await WsConn.connect(h, { path: wsPath(ticket), headers });
  try {
    assert.equal(c.status, 101, `${what}: the upgrade completes (got ${c.status} ${c.body})`);
    const cl = await c.readClose(5000);
    assert.equal(cl.code, code, `${what}: close code (reason "${cl.reason}")`);
    assert.deepEqual(cl.before, [], `${what}: nothing before the close frame`);
    assert.ok(await c.waitEnd(5000), `${what}: TCP closed after the close frame`);
    c.assertClean();
    return cl.reason;
  } finally {
    c.destroy();
  }
}

/** An open, authenticated (or not) herald WebSocket client. */
const wsOpen = (h, { headers = {}, ticket } = {}) => HeraldWs.open(h, { path: wsPath(ticket), headers });

const metric = async (h, name) => (await H.metrics(h)).get(name) ?? 0;
const CRED = 'herald_auth_refusals_total{reason="credentials"}';
const FORB = 'herald_auth_refusals_total{reason="forbidden"}';
const EXPIRIES = 'herald_token_expiries_total';

/** The token must not be echoed in a refusal (body, close reason). */
function assertNoLeak(text, token, what) {
  if (token && token.length >= 16) assert.ok(!String(text).includes(token), `${what}: the refusal echoes the token`);
}

// ---------------------------------------------------------------------------------------

describe('tokens and namespace policy', () => {
  let h;
  const opened = [];
  before(async () => {
    h = await H.startHerald(['--threads', '2',
      '--token-key', `hs256:${SECRET}`, '--token-key', `k2=hs256:${SECRET2}`, '--token-key', `r1=rs256:@${PEM_FILE}`,
      '--token-issuer', ISS, '--token-audience', AUD, '--ticket-ttl', '20',
      '--namespace', 'priv:anonymous=false', '--namespace', 'pub:client_publish=true']);
  });
  after(async () => {
    for (const c of opened.splice(0)) c.destroy();
    await h?.stop();
  });
  const keep = (c) => { opened.push(c); return c; };

  test('valid tokens are accepted on every transport: HS256 with and without kid, RS256 with and without kid, aud in an array', async () => {
    const grant = { subscribe: ['priv:ok*'], publish: ['priv:ok'] };
    const tokens = [
      ['hs256 without kid', tok(grant)],
      ['hs256 with kid k2', tok(grant, { key: SECRET2, kid: 'k2' })],
      ['hs256 without kid, signed with the k2 secret', tok(grant, { key: SECRET2 })],
      ['rs256 with kid r1', J.rs256(claims(grant), RSA.privateKey, { kid: 'r1' })],
      ['rs256 without kid', J.rs256(claims(grant), RSA.privateKey)],
      ['aud as an array', tok({ ...grant, aud: ['other', AUD] })],
      ['fractional exp and nbf in the past', tok({ ...grant, exp: Date.now() / 1000 + 120.5, nbf: Date.now() / 1000 - 10.25 })],
      ['no exp at all', tok({ ...grant, exp: null })],
    ];
    for (const [what, t] of tokens) {
      const auth = J.bearer(t);
      const s = await sse(h, 'priv:ok', { headers: auth });
      assert.equal(s.status, 200, `${what}: SSE ${s.text}`);
      const p = await poll(h, ['priv:ok', 'priv:ok2'], { headers: auth });
      assert.equal(p.status, 200, `${what}: poll ${p.text}`);
      const pub = await clientPublish(h, 'priv:ok', { what }, { headers: auth });
      assert.equal(pub.status, 200, `${what}: POST /publish ${pub.text}`);
      const tk = await postTicket(h, auth);
      assert.equal(tk.status, 200, `${what}: POST /ticket ${tk.text}`);
      const ws = await wsOpen(h, { headers: auth });
      try {
        const r = await ws.subscribe('priv:ok');
        assert.equal(r.channel, 'priv:ok');
        const pr = await ws.request({ method: 'publish', channel: 'priv:ok', data: 1 });
        assert.ok(pr.result, `${what}: WS publish ${JSON.stringify(pr)}`);
        ws.assertClean();
      } finally {
        ws.destroy();
      }
    }
  });

  test('invalid tokens: 401 token_invalid on /sse, /poll, /publish, /ticket; /ws opens and closes 4101; counted as credentials refusals', async () => {
    const grant = { subscribe: ['*'], publish: ['*'] };
    const valid = tok(grant);
    const [vh, vp] = valid.split('.');
    const cases = [
      ['not a JWT', 'abc'],
      ['two parts', `${vh}.${vp}`],
      ['four parts', `${valid}.x`],
      ['empty parts', '..'],
      ['characters outside base64url', `${vh}.${vp}$$.sig`],
      ['header not JSON', `${J.b64url('not json')}.${vp}.${valid.split('.')[2]}`],
      ['header without alg', `${J.b64url({ typ: 'JWT' })}.${vp}.${J.tamperSignature(valid).split('.')[2]}`],
      ['alg none', J.sign(claims(grant), { alg: 'none' })],
      ['alg None with an HMAC signature', (() => {
        const part = `${J.b64url({ alg: 'None', typ: 'JWT' })}.${J.b64url(claims(grant))}`;
        return `${part}.${crypto.createHmac('sha256', SECRET).update(part).digest('base64url')}`;
      })()],
      ['HS512 with a configured secret', J.sign(claims(grant), { alg: 'HS512', key: SECRET })],
      ['HS384 with a configured secret', J.sign(claims(grant), { alg: 'HS384', key: SECRET })],
      ['ES256 header', `${J.b64url({ alg: 'ES256', typ: 'JWT' })}.${vp}.${valid.split('.')[2]}`],
      ['tampered signature', J.tamperSignature(valid)],
      ['claims swapped under a valid signature', J.swapClaims(tok({ subscribe: ['priv:a'] }), claims(grant))],
      ['signed with an unknown secret', tok(grant, { key: J.secret(48) })],
      ['unknown kid (signed with the k2 secret)', tok(grant, { key: SECRET2, kid: 'gone' })],
      ['kid not a string', J.sign(claims(grant), { alg: 'HS256', key: SECRET, header: { kid: 7 } })],
      ['rs256 from another key pair', J.rs256(claims(grant), OTHER_RSA.privateKey, { kid: 'r1' })],
      ['rs256 from another key pair, no kid', J.rs256(claims(grant), OTHER_RSA.privateKey)],
      ['HS256 signed with the RS256 public key PEM (algorithm confusion)', J.hs256(claims(grant), RSA.publicPem)],
      ['HS256 signed with the PEM, kid r1', J.hs256(claims(grant), RSA.publicPem, { kid: 'r1' })],
      ['RS256 header, HMAC of the PEM as signature', J.sign(claims(grant), { alg: 'HS256', key: RSA.publicPem, header: { alg: 'RS256' } })],
      ['wrong issuer', tok({ ...grant, iss: 'https://evil.test' })],
      ['no issuer', tok({ ...grant, iss: null })],
      ['wrong audience', tok({ ...grant, aud: 'other' })],
      ['audience array without ours', tok({ ...grant, aud: ['a', 'b'] })],
      ['no audience', tok({ ...grant, aud: null })],
      ['bad subscribe pattern (space)', tok({ subscribe: ['bad name'] })],
      ['bad subscribe pattern (star inside)', tok({ subscribe: ['a*b'] })],
      ['bad publish pattern', tok({ publish: ['x?'] })],
      ['subscribe not an array', tok({ subscribe: 'priv:a' })],
      ['subscribe holding a number', tok({ subscribe: [1] })],
      ['exp not a date', tok({ ...grant, exp: 'tomorrow' })],
      ['sub not a string', tok({ ...grant, sub: 42 })],
      ['claims not an object', `${vh}.${J.b64url('[1,2]')}.${crypto.createHmac('sha256', SECRET).update(`${vh}.${J.b64url('[1,2]')}`).digest('base64url')}`],
    ];
    const m0 = await metric(h, CRED);
    let refusals = 0;
    for (const [what, t] of cases) {
      const auth = J.bearer(t);
      const s = await sse(h, 'priv:a', { headers: auth });
      assertError(s, 401, 'token_invalid', `${what} on /sse`);
      assert.match(s.headers['www-authenticate'] ?? '', /^Bearer/, `${what}: WWW-Authenticate on /sse`);
      assertNoLeak(s.text, t, what);
      const p = await poll(h, 'news', { headers: auth });   // refused even where anonymous may read
      assertError(p, 401, 'token_invalid', `${what} on /poll`);
      assert.match(p.headers['www-authenticate'] ?? '', /^Bearer/, `${what}: WWW-Authenticate on /poll`);
      assertError(await clientPublish(h, 'pub:x', 1, { headers: auth }), 401, 'token_invalid', `${what} on POST /publish`);
      assertError(await postTicket(h, auth), 401, 'token_invalid', `${what} on POST /ticket`);
      const reason = await wsRefused(h, 4101, { headers: auth, what: `${what} on /ws` });
      assertNoLeak(reason, t, what);
      refusals += 5;
    }
    assert.equal(await metric(h, CRED) - m0, refusals, 'one credentials refusal per refused request');
    // Nothing was published by any of them.
    const hist = await H.history(h, 'pub:x', {});
    assert.deepEqual(hist.json.messages, []);
  });

  test('expired and not-yet-valid tokens: 401 token_expired / token_not_yet_valid; /ws closes 4003 / 4101', async () => {
    const grant = { subscribe: ['*'], publish: ['*'] };
    const cases = [
      ['expired an hour ago', tok({ ...grant, exp: J.now(-3600) }), 'token_expired', 4003],
      ['expired a second ago', tok({ ...grant, exp: J.now(-1) }), 'token_expired', 4003],
      ['expired rs256', J.rs256(claims({ ...grant, exp: J.now(-60) }), RSA.privateKey, { kid: 'r1' }), 'token_expired', 4003],
      ['nbf in an hour', tok({ ...grant, nbf: J.now(3600) }), 'token_not_yet_valid', 4101],
      ['nbf in a minute, kid k2', tok({ ...grant, nbf: J.now(60) }, { key: SECRET2, kid: 'k2' }), 'token_not_yet_valid', 4101],
    ];
    const m0 = await metric(h, CRED);
    for (const [what, t, code, wsCode] of cases) {
      const auth = J.bearer(t);
      assertError(await sse(h, 'priv:a', { headers: auth }), 401, code, `${what} on /sse`);
      assertError(await poll(h, 'priv:a', { headers: auth }), 401, code, `${what} on /poll`);
      assertError(await clientPublish(h, 'priv:a', 1, { headers: auth }), 401, code, `${what} on POST /publish`);
      assertError(await postTicket(h, auth), 401, code, `${what} on POST /ticket`);
      await wsRefused(h, wsCode, { headers: auth, what: `${what} on /ws` });
    }
    assert.equal(await metric(h, CRED) - m0, cases.length * 5);
  });

  test('no credentials where the namespace needs them: 401 unauthorized on /sse, /poll, /publish and WS subscribe, publish, history', async () => {
    const f0 = await metric(h, FORB);
    assertError(await sse(h, 'priv:a'), 401, 'unauthorized', 'SSE');
    assertError(await sse(h, ['news', 'priv:a']), 401, 'unauthorized', 'SSE, one channel of two');
    assertError(await poll(h, 'priv:a'), 401, 'unauthorized', 'poll');
    assertError(await clientPublish(h, 'priv:a', 1), 401, 'unauthorized', 'POST /publish');
    // Another Authorization scheme is not a token: the client is anonymous.
    const basic = { Authorization: 'Basic dXNlcjpwYXNz' };
    assertError(await sse(h, 'priv:a', { headers: basic }), 401, 'unauthorized', 'SSE with Basic');
    assert.equal((await poll(h, 'news', { headers: basic })).status, 200, 'Basic on an anonymous channel');
    // WebSocket: the connection opens (anonymous), each command on priv: is refused.
    const ws = keep(await wsOpen(h));
    assertWsError(await ws.request({ method: 'subscribe', channel: 'priv:a' }), 'unauthorized', 'WS subscribe');
    assertWsError(await ws.request({ method: 'publish', channel: 'priv:a', data: 1 }), 'unauthorized', 'WS publish');
    assertWsError(await ws.request({ method: 'history', channel: 'priv:a' }), 'unauthorized', 'WS history');
    // The connection is still usable where anonymous clients may go.
    assert.ok((await ws.request({ method: 'subscribe', channel: 'news' })).result);
    assert.deepEqual((await ws.request({ id: 'p', method: 'ping' })), { id: 'p', result: {} });
    ws.assertClean();
    assert.equal(await metric(h, FORB) - f0, 8, 'each policy refusal counted (reason="forbidden")');
    // POST /ticket without a token.
    const t = await postTicket(h);
    assertError(t, 401, 'unauthorized', 'POST /ticket without Authorization');
    assert.match(t.headers['www-authenticate'] ?? '', /^Bearer/);
    const g = await H.get(h, '/ticket');
    assertError(g, 405, 'method_not_allowed', 'GET /ticket');
  });

  test('a token that does not grant the channel: 403 forbidden on /sse, /poll, /publish and WS subscribe, publish, history', async () => {
    const t = tok({ subscribe: ['priv:room*'], publish: ['priv:room1'] });
    const auth = J.bearer(t);
    const f0 = await metric(h, FORB);
    assertError(await sse(h, 'priv:other', { headers: auth }), 403, 'forbidden', 'SSE');
    assertError(await sse(h, ['priv:room1', 'priv:other'], { headers: auth }), 403, 'forbidden', 'SSE, one channel of two not granted');
    assertError(await poll(h, 'priv:other', { headers: auth }), 403, 'forbidden', 'poll');
    assertError(await poll(h, ['priv:room2', 'priv:other'], { headers: auth }), 403, 'forbidden', 'poll, one of two');
    assertError(await clientPublish(h, 'priv:room2', 1, { headers: auth }), 403, 'forbidden', 'POST /publish on a subscribe-only channel');
    assertError(await clientPublish(h, 'news', 1, { headers: auth }), 403, 'forbidden', 'POST /publish on an anonymous channel without client_publish');
    // What the token grants works: exact and prefix patterns.
    assert.equal((await sse(h, ['priv:room1', 'priv:room42'], { headers: auth })).status, 200);
    assert.equal((await clientPublish(h, 'priv:room1', 'ok', { headers: auth })).status, 200);

    const ws = keep(await wsOpen(h, { headers: auth }));
    assertWsError(await ws.request({ method: 'subscribe', channel: 'priv:other' }), 'forbidden', 'WS subscribe');
    assertWsError(await ws.request({ method: 'publish', channel: 'priv:room2', data: 1 }), 'forbidden', 'WS publish');
    assertWsError(await ws.request({ method: 'history', channel: 'priv:other' }), 'forbidden', 'WS history');
    assert.equal(await metric(h, FORB) - f0, 9);
    // Granted commands on the same connection.
    await ws.subscribe('priv:room1');
    const pr = await ws.request({ method: 'publish', channel: 'priv:room1', data: 'ws' });
    assert.ok(pr.result, JSON.stringify(pr));
    const push = await ws.nextPush();
    assert.equal(push.channel, 'priv:room1');
    assert.equal(push.data, 'ws');
    const hist = await ws.request({ method: 'history', channel: 'priv:room1' });
    assert.deepEqual(hist.result.messages.map((m) => m.data), ['ok', 'ws']);
    // Nothing forbidden was published.
    assert.deepEqual((await H.history(h, 'priv:room2', {})).json.messages, []);
    ws.assertClean();
  });

  test('a token adds its grants to what anonymous clients may do', async () => {
    // Anonymous: may subscribe to news (anonymous namespace), may not publish there; may
    // publish on pub: (client_publish=true).
    assert.equal((await sse(h, 'news')).status, 200);
    assertError(await clientPublish(h, 'news', 1), 403, 'forbidden', 'anonymous publish on news');
    assert.equal((await clientPublish(h, 'pub:x', 'anon')).status, 200);
    // A token granting only priv:mine still reads news and publishes on pub: ...
    const narrow = J.bearer(tok({ subscribe: ['priv:mine'] }));
    assert.equal((await sse(h, ['news', 'priv:mine'], { headers: narrow })).status, 200);
    assert.equal((await clientPublish(h, 'pub:x', 'narrow', { headers: narrow })).status, 200);
    // ... and a token granting publish on news adds that.
    const pubNews = J.bearer(tok({ publish: ['news'] }));
    assert.equal((await clientPublish(h, 'news', 'granted', { headers: pubNews })).status, 200);
    const ws = keep(await wsOpen(h, { headers: pubNews }));
    assert.ok((await ws.request({ method: 'publish', channel: 'news', data: 'ws' })).result);
    assertWsError(await ws.request({ method: 'subscribe', channel: 'priv:mine' }), 'forbidden', 'not granted to this token');
    // `*` grants every channel.
    const all = J.bearer(tok({ subscribe: ['*'], publish: ['*'] }));
    assert.equal((await sse(h, ['priv:any', 'priv:thing:deep'], { headers: all })).status, 200);
    assert.equal((await clientPublish(h, 'priv:any', 1, { headers: all })).status, 200);
    // A token with no grants is like no token where anonymous clients may go, and
    // forbidden (403, not 401) elsewhere.
    const none = J.bearer(tok({}));
    assert.equal((await poll(h, 'news', { headers: none })).status, 200);
    assertError(await poll(h, 'priv:a', { headers: none }), 403, 'forbidden', 'token without grants on priv:');
    ws.assertClean();
  });

  test('a token and a ticket together: 400 bad_request (/ws: closed 4101)', async () => {
    const t = tok({ subscribe: ['*'] });
    const ticket = await newTicket(h, t);
    assertError(await sse(h, 'priv:a', { headers: J.bearer(t), ticket }), 400, 'bad_request', 'SSE');
    assertError(await poll(h, 'priv:a', { headers: J.bearer(t), ticket }), 400, 'bad_request', 'poll');
    await wsRefused(h, 4101, { headers: J.bearer(t), ticket, what: 'WS' });
    // The ticket was not consumed by those refusals.
    assert.equal((await sse(h, 'priv:a', { ticket })).status, 200);
  });

  test('POST /ticket: {"ticket":<32 chars>,"expires_in":N}; each ticket works once, on any transport, with its token\'s grants', async () => {
    const t = tok({ subscribe: ['priv:t*'], publish: ['priv:t1'] });
    const r = await postTicket(h, J.bearer(t));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ['ticket', 'expires_in']);
    assert.match(r.json.ticket, /^[A-Za-z0-9_-]{32}$/);
    assert.equal(r.json.expires_in, 20);
    assert.equal(r.headers['cache-control'], 'no-store');
    // Tickets are unique.
    const seen = new Set([r.json.ticket]);
    for (let i = 0; i < 20; i++) seen.add(await newTicket(h, t));
    assert.equal(seen.size, 21);

    const c0 = await metric(h, CRED);
    // SSE: first use streams, second refused (on every transport).
    const t1 = r.json.ticket;
    const s = await H.SSEReader.open(h, { pathQuery: `/sse?${withTicket('priv:t1', t1)}` });
    try {
      assert.equal(s.status, 200, s.body);
      await s.until((b) => b.id !== undefined && b.data === undefined);
      await H.publish(h, 'priv:t1', 'via ticket');
      assert.equal(JSON.parse((await s.nextEvent()).data).data, 'via ticket');
    } finally { s.close(); }
    assertError(await sse(h, 'priv:t1', { ticket: t1 }), 401, 'ticket_invalid', 'SSE ticket reused on SSE');
    assertError(await poll(h, 'priv:t1', { ticket: t1 }), 401, 'ticket_invalid', 'SSE ticket reused on poll');
    await wsRefused(h, 4101, { ticket: t1, what: 'SSE ticket reused on /ws' });
    // Poll.
    const t2 = await newTicket(h, t);
    assert.equal((await poll(h, 'priv:t2', { ticket: t2 })).status, 200);
    assertError(await poll(h, 'priv:t2', { ticket: t2 }), 401, 'ticket_invalid', 'poll ticket reused');
    // WebSocket: the ticket's grants apply to its commands.
    const t3 = await newTicket(h, t);
    const ws = keep(await wsOpen(h, { ticket: t3 }));
    await ws.subscribe('priv:t3');
    assert.ok((await ws.request({ method: 'publish', channel: 'priv:t1', data: 'ws ticket' })).result);
    assertWsError(await ws.request({ method: 'publish', channel: 'priv:t3', data: 1 }), 'forbidden', 'publish not granted');
    assertWsError(await ws.request({ method: 'subscribe', channel: 'priv:other' }), 'forbidden', 'subscribe not granted');
    ws.assertClean();
    await wsRefused(h, 4101, { ticket: t3, what: 'WS ticket reused' });
    // A ticket carries the grants of its token: a channel it does not grant is forbidden
    // (and the ticket is used up by that attempt).
    const t4 = await newTicket(h, t);
    assertError(await sse(h, 'priv:other', { ticket: t4 }), 403, 'forbidden', 'ticket without the grant');
    assertError(await sse(h, 'priv:t4', { ticket: t4 }), 401, 'ticket_invalid', 'ticket used by the forbidden attempt');
    // Unknown and malformed tickets.
    const unknown = crypto.randomBytes(24).toString('base64url');
    assertError(await sse(h, 'priv:t1', { ticket: unknown }), 401, 'ticket_invalid', 'unknown ticket');
    assertError(await poll(h, 'news', { ticket: unknown }), 401, 'ticket_invalid', 'unknown ticket on an anonymous channel');
    assertError(await poll(h, 'news', { ticket: 'short' }), 401, 'ticket_invalid', 'malformed ticket');
    assertError(await poll(h, 'news', { ticket: `${'a'.repeat(31)}!` }), 401, 'ticket_invalid', 'ticket with a bad character');
    await wsRefused(h, 4101, { ticket: unknown, what: 'unknown ticket on /ws' });
    // Reuses: 3 + 1 + 1 + 1; unknown or malformed: 5.
    assert.equal(await metric(h, CRED) - c0, 11);
  });

  test('POST /ticket with an expired, unsigned or non-Bearer credential is refused; a ticket outliving its token is refused', async () => {
    assertError(await postTicket(h, J.bearer(tok({ subscribe: ['*'], exp: J.now(-5) }))), 401, 'token_expired', 'expired token');
    assertError(await postTicket(h, J.bearer(J.sign(claims({ subscribe: ['*'] }), { alg: 'none' }))), 401, 'token_invalid', 'alg none');
    assertError(await postTicket(h, { Authorization: 'Basic dXNlcjpwYXNz' }), 401, 'unauthorized', 'Basic');
    // The ticket keeps its token's expiry: the token ends before the ticket's 20 s.
    const expMs = Date.now() + 2500;
    const t = tok({ subscribe: ['*'], exp: expMs / 1000 });
    const a = await newTicket(h, t), b = await newTicket(h, t);
    await H.sleep(expMs + 300 - Date.now());
    assertError(await sse(h, 'priv:a', { ticket: a }), 401, 'ticket_invalid', 'SSE, ticket of an expired token');
    await wsRefused(h, 4101, { ticket: b, what: 'WS, ticket of an expired token' });
  });

  test('a token naming an unknown kid is refused even when a key without kid would verify it', async () => {
    // With keys `hs256:S` (no kid) and `k2=hs256:S2`: a token with "kid":"gone" (unknown)
    // or "kid":"k2" signed with S (a kid naming another key) should be token_invalid.
    const g = { subscribe: ['*'] };
    assertError(await poll(h, 'priv:a', { headers: J.bearer(tok(g, { key: SECRET, kid: 'gone' })) }), 401, 'token_invalid', 'unknown kid, no-kid key');
    assertError(await poll(h, 'priv:a', { headers: J.bearer(tok(g, { key: SECRET, kid: 'k2' })) }), 401, 'token_invalid', 'kid k2 signed with the no-kid key');
  });

  test('every 401 carries WWW-Authenticate (RFC 9110 section 11.6.1)', async () => {
    const bad = J.bearer(J.sign(claims({}), { alg: 'none' }));
    const cases = [
      ['GET /sse, no token on priv:', await sse(h, 'priv:a')],
      ['GET /poll, no token on priv:', await poll(h, 'priv:a')],
      ['POST /publish, no token on priv:', await clientPublish(h, 'priv:a', 1)],
      ['POST /ticket, invalid token', await postTicket(h, bad)],
      ['POST /ticket, Basic', await postTicket(h, { Authorization: 'Basic dXNlcjpwYXNz' })],
    ];
    for (const [what, r] of cases) {
      assert.equal(r.status, 401, what);
      assert.match(r.headers['www-authenticate'] ?? '', /^Bearer/, `${what}: WWW-Authenticate`);
    }
  });
});

describe('expiry: live connections, --ticket-ttl', () => {
  let h;
  before(async () => {
    h = await H.startHerald(['--threads', '2', '--token-key', `hs256:${SECRET}`, '--ticket-ttl', '2',
      '--namespace', 'priv:anonymous=false', '--history-size', '100']);
  });
  after(async () => { await h?.stop(); });
  const etok = (extra) => J.hs256({ sub: 'exp-user', subscribe: ['priv:*'], publish: ['priv:*'], ...extra }, SECRET);

  test('a token expiring on a live connection: SSE gets event token_expired with an id and ends, WS closes 4003, a held poll ends at the expiry', async () => {
    const expMs = Date.now() + 4000;  // room to open everything first on a busy machine
    const t = etok({ exp: expMs / 1000 });
    const auth = J.bearer(t);
    const x0 = await metric(h, EXPIRIES);
    const longLived = J.bearer(etok({ exp: J.now(600) }));
    // Open: SSE (token), SSE (ticket), WS (token), WS (ticket), and a held poll (token).
    const { reader: sseTok } = await H.openSynced(h, { channels: 'priv:live', headers: auth });
    const sseTicket = await newTicket(h, t);
    const { reader: sseTick } = await H.openSynced(h, { pathQuery: `/sse?${withTicket('priv:live', sseTicket)}` });
    const wsTok = await wsOpen(h, { headers: auth });
    const wsTick = await wsOpen(h, { ticket: await newTicket(h, t) });
    try {
      await wsTok.subscribe('priv:live');
      await wsTick.subscribe('priv:live');
      const pollStart = Date.now();
      const heldPoll = H.poll(h, 'priv:quiet', { timeout: 30, headers: auth, timeoutMs: 20000 });
      // Messages before the expiry arrive.
      const pubs = [];
      for (let i = 1; i <= 3; i++) pubs.push(await H.publish(h, 'priv:live', { i }));
      for (const r of [sseTok, sseTick]) assert.deepEqual((await r.events(3, 5000)).map((e) => JSON.parse(e.data).data.i), [1, 2, 3]);
      for (const w of [wsTok, wsTick]) assert.deepEqual((await w.takePushes(3)).map((p) => p.data.i), [1, 2, 3]);

      // SSE: event token_expired, carrying the id to resume from, then the end.
      for (const [name, r] of [['SSE token', sseTok], ['SSE ticket', sseTick]]) {
        const blocks = await r.until((b) => b.event === 'token_expired', expMs - Date.now() + 8000);
        const ev = blocks.at(-1);
        const at = Date.now();
        assert.ok(at >= expMs - 50, `${name}: token_expired ${expMs - at} ms before the expiry`);
        assert.equal(ev.id, pubs[2].cursor, `${name}: the id is the cursor after the last message`);
        assert.equal(JSON.parse(ev.data).error.code, 'token_expired');
        assert.deepEqual(blocks.filter((b) => b.data !== undefined && b.event === undefined), [], `${name}: nothing else before it`);
        await r.waitClosed(5000);
      }
      // WebSocket: close 4003.
      for (const [name, w] of [['WS token', wsTok], ['WS ticket', wsTick]]) {
        await H.waitFor(() => w.close, { timeoutMs: expMs - Date.now() + 8000, what: `${name} close` });
        assert.equal(w.close.code, 4003, `${name}: ${w.close.reason}`);
        assert.ok(w.close.at >= expMs - 50, `${name}: closed ${expMs - w.close.at} ms before the expiry`);
        assert.ok(await w.conn.waitEnd(5000));
        w.assertClean();
      }
      // The held poll (timeout 30 s) was answered at the expiry, empty.
      const p = await heldPoll;
      assert.equal(p.status, 200, p.text);
      assert.deepEqual(p.json.messages, []);
      assert.ok(pollStart + p.elapsed >= expMs - 50, `the poll was answered ${expMs - pollStart - p.elapsed} ms before the expiry`);
      assert.ok(p.elapsed < 15000, `poll held ${p.elapsed} ms (timeout 30 s, token expiry ~4 s)`);
      // The next poll with the old token is refused; with a new token, the SSE id resumes.
      assertError(await poll(h, 'priv:quiet', { headers: auth }), 401, 'token_expired', 'poll after the expiry');
      await H.publish(h, 'priv:live', { i: 4 });
      const resumed = await H.poll(h, 'priv:live', { since: pubs[2].cursor, timeout: 0, headers: longLived });
      assert.deepEqual(resumed.json.messages.map((m) => m.data.i), [4]);
      assert.equal(await metric(h, EXPIRIES) - x0, 4, 'SSE and WebSocket expiries counted (token and ticket)');
    } finally {
      sseTok.close();
      sseTick.close();
      wsTok.destroy();
      wsTick.destroy();
    }
  });

  test('token_expired is a reserved event name: publishing it is refused (400 bad_request)', async () => {
    const r = await H.publishRaw(h, 'priv:live', 1, { event: 'token_expired' });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, 'bad_request');
    const ws = await wsOpen(h, { headers: J.bearer(etok({ exp: J.now(600) })) });
    try {
      const w = await ws.request({ method: 'publish', channel: 'priv:live', event: 'token_expired', data: 1 });
      assert.equal(w.error?.code, 'bad_request', JSON.stringify(w));
    } finally { ws.destroy(); }
  });

  test('tickets expire after --ticket-ttl (2 s) on every transport', async () => {
    const t = etok({ exp: J.now(600) });
    const [a, b, c] = [await newTicket(h, t), await newTicket(h, t), await newTicket(h, t)];
    await H.sleep(2600);
    assertError(await sse(h, 'priv:a', { ticket: a }), 401, 'ticket_invalid', 'SSE, expired ticket');
    assertError(await poll(h, 'priv:a', { ticket: b }), 401, 'ticket_invalid', 'poll, expired ticket');
    await wsRefused(h, 4101, { ticket: c, what: 'WS, expired ticket' });
    // A ticket used at once is fine.
    assert.equal((await poll(h, 'priv:a', { ticket: await newTicket(h, t) })).status, 200);
  });
});

describe('--token-leeway, --anonymous false', () => {
  let h;
  before(async () => {
    h = await H.startHerald(['--token-key', `hs256:${SECRET}`, '--token-leeway', '30',
      '--anonymous', 'false', '--namespace', 'open:anonymous=true', '--namespace', 'open2:anonymous=true,client_publish=true']);
  });
  after(async () => { await h?.stop(); });
  const ltok = (extra) => J.hs256({ subscribe: ['news'], ...extra }, SECRET);

  test('leeway: exp and nbf within 30 s of now are accepted, beyond it refused', async () => {
    assert.equal((await poll(h, 'news', { headers: J.bearer(ltok({ exp: J.now(-10) })) })).status, 200, 'exp 10 s ago');
    assert.equal((await poll(h, 'news', { headers: J.bearer(ltok({ nbf: J.now(10) })) })).status, 200, 'nbf in 10 s');
    assertError(await poll(h, 'news', { headers: J.bearer(ltok({ exp: J.now(-45) })) }), 401, 'token_expired', 'exp 45 s ago');
    assertError(await poll(h, 'news', { headers: J.bearer(ltok({ nbf: J.now(45) })) }), 401, 'token_not_yet_valid', 'nbf in 45 s');
    // A WebSocket with a token inside the leeway stays open.
    const ws = await wsOpen(h, { headers: J.bearer(ltok({ exp: J.now(-10) })) });
    try {
      await ws.subscribe('news');
      await H.sleep(600);
      assert.deepEqual(await ws.request({ id: 1, method: 'ping' }), { id: 1, result: {} });
      assert.equal(ws.close, null);
    } finally { ws.destroy(); }
  });

  test('--anonymous false: tokenless clients are refused in the default namespace, allowed where a namespace says anonymous=true', async () => {
    assertError(await sse(h, 'news'), 401, 'unauthorized', 'SSE news');
    assertError(await poll(h, 'news'), 401, 'unauthorized', 'poll news');
    assertError(await clientPublish(h, 'news', 1), 401, 'unauthorized', 'publish news');
    assert.equal((await sse(h, 'open:a')).status, 200);
    assertError(await clientPublish(h, 'open:a', 1), 403, 'forbidden', 'anonymous publish without client_publish');
    assert.equal((await clientPublish(h, 'open2:a', 1)).status, 200);
    assert.equal((await poll(h, 'news', { headers: J.bearer(ltok({})) })).status, 200, 'a token granting news');
    assertError(await poll(h, 'other', { headers: J.bearer(ltok({})) }), 403, 'forbidden', 'a token not granting other');
    const ws = await wsOpen(h);
    try {
      assertWsError(await ws.request({ method: 'subscribe', channel: 'news' }), 'unauthorized');
      assert.ok((await ws.request({ method: 'subscribe', channel: 'open:a' })).result);
      ws.assertClean();
    } finally { ws.destroy(); }
  });
});

describe('tickets across two nodes sharing Redis', () => {
  let redis, n1, n2;
  const args = ['--token-key', `hs256:${SECRET}`, '--ticket-ttl', '20', '--namespace', 'priv:anonymous=false'];
  before(async () => {
    const missing = C.missingTools(['redis-server', 'redis-cli']);
    if (missing.length) throw new Error(`this suite needs ${missing.join(', ')} (scripts/setup.sh test installs them)`);
    redis = await C.startRedis();
    n1 = await C.startNode([redis.url], { args });
    n2 = await C.startNode([redis.url], { args });
    await C.waitReady(n1);
    await C.waitReady(n2);
  });
  after(async () => {
    for (const n of [n1, n2]) await n?.stop(5000);
    await redis?.stop();
  });

  test('a ticket issued on node 1 works once on node 2, then on no node; the Redis key has the TTL and is gone once taken', async () => {
    const t = J.hs256({ sub: 'r', subscribe: ['priv:*'], exp: J.now(600) }, SECRET);
    const ticket = await newTicket(n1, t);
    const keys = await C.redisKeys(redis.port, `*${ticket}*`);
    assert.equal(keys.length, 1, `one Redis key for the ticket: ${keys}`);
    const pttl = Number((await C.redisCli(redis.port, ['PTTL', keys[0]])).trim());
    assert.ok(pttl > 0 && pttl <= 20000, `PTTL ${pttl}`);
    // Node 2 takes it (SSE), delivered across nodes.
    const s = await H.SSEReader.open(n2, { pathQuery: `/sse?${withTicket('priv:x', ticket)}` });
    try {
      assert.equal(s.status, 200, s.body);
      await s.until((b) => b.id !== undefined && b.data === undefined);
      await H.publish(n1, 'priv:x', 'cross');
      assert.equal(JSON.parse((await s.nextEvent(5000)).data).data, 'cross');
    } finally { s.close(); }
    assert.deepEqual(await C.redisKeys(redis.port, `*${ticket}*`), [], 'the ticket key is gone');
    assertError(await poll(n1, 'priv:x', { ticket }), 401, 'ticket_invalid', 'reuse on node 1');
    assertError(await poll(n2, 'priv:x', { ticket }), 401, 'ticket_invalid', 'reuse on node 2');
    await wsRefused(n1, 4101, { ticket, what: 'reuse on node 1 /ws' });
    await wsRefused(n2, 4101, { ticket, what: 'reuse on node 2 /ws' });
  });

  test('a ticket issued on node 2 opens a WebSocket on node 1 once; concurrent uses on both nodes: exactly one wins', async () => {
    const t = J.hs256({ sub: 'r', subscribe: ['priv:*'], exp: J.now(600) }, SECRET);
    const ticket = await newTicket(n2, t);
    const ws = await wsOpen(n1, { ticket });
    try {
      assert.ok((await ws.subscribe('priv:w')).cursor);
    } finally { ws.destroy(); }
    await wsRefused(n2, 4101, { ticket, what: 'reuse on node 2' });
    for (let round = 0; round < 5; round++) {
      const tk = await newTicket(round % 2 ? n1 : n2, t);
      const rs = await Promise.all([n1, n2, n1, n2].map((n) => poll(n, 'priv:race', { ticket: tk })));
      const codes = rs.map((r) => (r.status === 200 ? 200 : r.json?.error?.code)).sort();
      assert.deepEqual(codes, [200, 'ticket_invalid', 'ticket_invalid', 'ticket_invalid'], `round ${round}`);
    }
  });

  // The last tests of this suite: they stop Redis.
  let heldTicket;
  test('Redis unreachable: POST /ticket and a ticket on /sse or /poll answer 503 unavailable', async () => {
    const t = J.hs256({ sub: 'r', subscribe: ['priv:*'], exp: J.now(600) }, SECRET);
    const ticket = await newTicket(n1, t);
    heldTicket = await newTicket(n1, t);
    await redis.kill();
    await C.waitReady(n1, 503);
    assertError(await postTicket(n1, J.bearer(t)), 503, 'unavailable', 'POST /ticket');
    assertError(await sse(n1, 'priv:a', { ticket }), 503, 'unavailable', 'SSE with a ticket');
    assertError(await poll(n1, 'priv:a', { ticket }), 503, 'unavailable', 'poll with a ticket');
    // Tokens are verified without the broker: a WebSocket with a token still opens.
    const ws = await wsOpen(n1, { headers: J.bearer(t) });
    try {
      assert.deepEqual(await ws.request({ id: 1, method: 'ping' }), { id: 1, result: {} });
    } finally { ws.destroy(); }
  });

  test('a ticket on /ws while Redis is unreachable is closed with a transient code (4000-4099), not 4101 "do not retry"', async () => {
    assert.ok(heldTicket, 'set by the previous test');
    const c = await WsConn.connect(n1, { path: wsPath(heldTicket) });
    try {
      assert.equal(c.status, 101);
      const cl = await c.readClose(5000);
      assert.ok(cl.code >= 4000 && cl.code <= 4099, `close ${cl.code} "${cl.reason}"`);
    } finally { c.destroy(); }
  });
});
