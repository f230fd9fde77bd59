// Unit tests of the client without a server: the wire readers against herald's golden
// files (tests/golden/, the same bytes the C++ tests check the server writes), and the
// client driven through a fake WebSocket and a fake fetch: signals leave the cursor, a
// stream's end (end message, "ended":true, 204) ends the channel without a fallback.
// Run from tests/integration/client-js.test.mjs (dist/ built by scripts/build-web.sh).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { rawPollReply, parseSseBlock, splitSseEvents } from '../dist/wire.js';
import { decodeCursor } from '../dist/cursor.js';
import { Herald } from '../dist/herald.js';

const golden = (name) => fs.readFileSync(new URL(`../../../tests/golden/${name}`, import.meta.url), 'utf8');
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('wire readers against the golden files', { timeout: 10000 }, () => {
  it('raw poll replies: offsets counted back from the cursor, named lines, the end, resets', () => {
    const r = rawPollReply(golden('raw-poll-reply.txt'), ['news']);
    assert.equal(r.cursor, 'kvHvEYAABI0ADEA');
    assert.deepEqual(r.messages.map((m) => [m.channel, m.offset, m.event]), [['news', 2, undefined], ['news', 3, 'headline']]);
    assert.deepEqual(decodeCursor(r.messages[0].cursor), [{ ...decodeCursor(r.cursor)[0], offset: 2 }]);
    const end = rawPollReply(golden('raw-poll-reply-end.txt'), ['news']);
    assert.deepEqual(end.messages.map((m) => [m.offset, m.event, m.data]), [[3, 'end', { state: 'completed', reason: null }]]);
    const reset = rawPollReply(golden('raw-poll-reply-reset.txt'), ['news', 'chat:room1']);
    assert.deepEqual([reset.reset, reset.messages], [['news', 'chat:room1'], []]);
    const two = rawPollReply(golden('raw-poll-reply-channels.txt'), ['news', 'chat:room1']);
    assert.deepEqual(two.messages.map((m) => [m.channel, m.offset, m.data]), [['news', 2, 'a'], ['news', 3, { n: 1.2345678901234568e22 }]]);
  });

  it('SSE events: messages, positions, signals (no id), raw events', () => {
    const body = ['sse-retry.txt', 'sse-position.txt', 'sse-join.txt', 'sse-ephemeral.txt', 'sse-message.txt'].map(golden).join('');
    const { blocks, rest } = splitSseEvents(body);
    assert.equal(rest, '');
    const ev = blocks.map((b) => parseSseBlock(b.text));
    assert.deepEqual(ev.map((e) => [e.id, e.event, e.hasData]), [
      [undefined, undefined, false], ['AUa8x0u8vhicA6NE', undefined, false], [undefined, 'join', true],
      [undefined, 'typing', true], ['AUa8x0s0EgAAA1M_', 'headline', true]]);
    assert.equal(JSON.parse(ev[2].data).user, 'alice');
    const raw = parseSseBlock(golden('raw-sse-message.txt'));
    assert.deepEqual([raw.id, raw.event, raw.data], ['kvHvEYAABI0ADEA', 'headline', '{"title":1.50}']);
  });
});

/** A WebSocket that the test plays the server of. */
class FakeWS {
  static last = null;
  constructor(url) { this.url = url; this.readyState = 0; this.sent = []; FakeWS.last = this; setTimeout(() => { this.readyState = 1; this.onopen?.({}); }, 0); }
  send(t) { this.sent.push(JSON.parse(t)); }
  close() { this.readyState = 3; }
  server(obj) { this.onmessage?.({ data: typeof obj === 'string' ? obj : JSON.stringify(obj) }); }
}

/** A fetch that answers from `routes` (path → function returning a Response), recording each path. */
function fakeFetch(routes, calls) {
  return async (url) => {
    const u = new URL(String(url));
    calls.push(u.pathname);
    const f = routes[u.pathname];
    return f ? f(u) : new Response('{"error":{"code":"not_found"}}', { status: 404 });
  };
}

describe('the client against a fake server', { timeout: 10000 }, () => {
  it('WebSocket: ephemeral pushes and joins are signals, the cursor stays; "ended":true ends the channel', async () => {
    const c = new Herald({ url: 'http://h', transports: ['websocket'], WebSocket: FakeWS, format: 'json', fetch: fakeFetch({}, []) });
    const got = { messages: [], signals: [], joins: [], ends: [], held: [] };
    c.subscribe('chat:room1', { message: (m) => got.messages.push(m.offset), signal: (s) => got.signals.push(s.data), join: (e) => got.joins.push(e.user),
      subscribed: (x) => got.held.push(x.transport) }, 'AUa8x0u8vhicA6NE');
    await c.connect();
    await tick();
    const ws = FakeWS.last;
    assert.deepEqual(ws.sent[0], { id: 1, method: 'subscribe', channel: 'chat:room1', since: 'AUa8x0u8vhicA6NE' });
    assert.deepEqual(got.held, [], 'not held before the subscribe result');
    ws.server(`{"id":1,"result":${golden('ws-subscribed.json')}}`);
    assert.deepEqual(got.held, ['websocket']);
    const cursor = c.cursor('chat:room1');
    ws.server(`{"push":${golden('ephemeral.json')}}`);
    ws.server(golden('join.json'));
    assert.deepEqual(got.signals, [{ user: 'alice' }]);
    assert.deepEqual(got.joins, ['alice']);
    assert.deepEqual(got.messages, []);
    assert.equal(c.cursor('chat:room1'), cursor, 'the cursor did not move');

    c.subscribe('ai:answer-7', { end: (e) => got.ends.push(e) }, 'AUa8x0u8vhicA6NE');
    await tick();
    const sub = ws.sent.at(-1);
    assert.equal(sub.channel, 'ai:answer-7');
    ws.server(`{"id":${sub.id},"result":${golden('ws-subscribed-ended.json')}}`);
    assert.deepEqual(got.ends.map((e) => [e.channel, e.state, e.transport]), [['ai:answer-7', null, 'websocket']]);
    assert.equal(c.ended('ai:answer-7').state, null);
    await tick(20);
    assert.equal(ws.sent.length, 2, 'no unsubscribe and no resubscribe of the ended channel');
    assert.equal(c.state, 'connected');
    c.close();
  });

  it('WebSocket: the end push reaches message and end once; the stream gets its text', async () => {
    const c = new Herald({ url: 'http://h', transports: ['websocket'], WebSocket: FakeWS, format: 'json', fetch: fakeFetch({}, []) });
    const s = c.stream('ai:a');
    await c.connect();
    await tick();
    const ws = FakeWS.last;
    assert.equal(ws.sent[0].since, 'earliest');
    ws.server({ id: 1, result: { channel: 'ai:a', recovered: true, cursor: 'AUa8x0u8vhicA6NE' } });
    ws.server({ push: { channel: 'ai:a', offset: 1, data: 'Hel', cursor: 'c1' } });
    ws.server({ push: { channel: 'ai:a', offset: 2, data: 'lo', cursor: 'c2' } });
    ws.server({ push: { channel: 'ai:a', offset: 2, data: 'lo', cursor: 'c2' } });  // a replayed duplicate
    ws.server({ push: { channel: 'ai:a', offset: 3, event: 'end', data: { state: 'aborted', reason: 'stop' }, cursor: 'c3' } });
    const end = await s.done;
    assert.equal(s.text, 'Hello');
    assert.deepEqual([end.state, end.reason, end.offset], ['aborted', 'stop', 3]);
    assert.deepEqual(c.channels(), []);
    c.close();
  });

  it('WebSocket: connect() resolves on open; a close 4101 right after closes the client with an error, no retry', async () => {
    let made = 0;
    class Refused extends FakeWS { constructor(u) { super(u); made++; setTimeout(() => { this.readyState = 3; this.onclose?.({ code: 4101, reason: 'invalid ticket' }); }, 5); } }
    const c = new Herald({ url: 'http://h', transports: ['websocket', 'sse'], WebSocket: Refused, fetch: fakeFetch({}, []) });
    const errors = [];
    c.on('error', (e) => errors.push(e.code));
    c.subscribe('x', {}, 'AUa8x0u8vhicA6NE');
    await c.connect();  // resolves: the socket opened
    await tick(100);
    assert.equal(c.state, 'closed');
    assert.deepEqual(errors, ['unauthorized']);
    assert.equal(made, 1, 'no retry, no fallback');
    c.close();
  });

  for (const [first, second, path] of [['sse', 'poll', '/sse'], ['poll', 'sse', '/poll']]) {
    it(`${first}: 204 ends the channel; no fallback to ${second}, no reconnect`, async () => {
      const calls = [];
      const states = [];
      const c = new Herald({ url: 'http://h', transports: [first, second], fetch: fakeFetch({ [path]: () => new Response(null, { status: 204 }) }, calls) });
      c.on('state', (s) => states.push(`${s.state}:${s.transport}`));
      const s = c.stream('ai:done', { since: 'AUa8x0u8vhicA6NE' });
      await c.connect();
      const end = await s.done;
      await tick(300);
      assert.equal(end.state, null);
      assert.deepEqual(calls, [path]);
      assert.equal(c.transport, first);
      assert.ok(!states.some((x) => x.startsWith('disconnected')), states.join());
      c.close();
    });
  }

  it('SSE: signals and the position line; only messages move the cursor', async () => {
    const body = ['sse-retry.txt', 'sse-position.txt', 'sse-join.txt', 'sse-ephemeral.txt'].map(golden).join('');
    const got = { signals: [], joins: [] };
    const c = new Herald({ url: 'http://h', transports: ['sse'], format: 'json', fetch: fakeFetch({
      '/sse': () => new Response(new ReadableStream({ start(ctl) { ctl.enqueue(new TextEncoder().encode(body)); } }), { headers: { 'Content-Type': 'text/event-stream' } }),
    }, []) });
    c.subscribe('chat:room1', { signal: (s) => got.signals.push(s.event), join: (e) => got.joins.push(e.clientTransport) }, 'since0');
    await c.connect();
    await tick(50);
    assert.deepEqual(got, { signals: ['typing'], joins: ['ws'] });
    assert.equal(c.cursor('chat:room1'), 'AUa8x0u8vhicA6NE', 'the position line, not a signal');
    c.close();
  });

  for (const reconnect of [false, true]) {
    it(`SSE: event disconnect (users API) with reconnect ${reconnect}: ${reconnect ? 'reconnects' : 'stops, no retry'}`, async () => {
      const calls = [];
      const ev = `retry: 3000\n\nid: AUa8x0u8vhicA6NE\n\nevent: disconnect\ndata: {"code":${reconnect ? 4005 : 4105},"reason":"kicked","reconnect":${reconnect}}\n\n`;
      const c = new Herald({ url: 'http://h', transports: ['sse'], backoffBaseMs: 10, backoffMaxMs: 20, fetch: fakeFetch({
        '/sse': () => new Response(new ReadableStream({ start(ctl) { ctl.enqueue(new TextEncoder().encode(ev)); ctl.close(); } }), { headers: { 'Content-Type': 'text/event-stream' } }),
      }, calls) });
      const errors = [];
      c.on('error', (e) => errors.push(e.code));
      c.subscribe('chat:room1', {}, 'AUa8x0u8vhicA6NE');
      await c.connect();
      await tick(200);
      if (reconnect) {
        assert.ok(calls.length >= 2, `reconnected: ${calls.length}`);
        assert.deepEqual(errors, []);
      } else {
        assert.equal(c.state, 'closed');
        assert.deepEqual(calls, ['/sse']);
        assert.deepEqual(errors, ['disconnected']);
      }
      c.close();
    });
  }
});

describe('the users API on a live connection (fake server)', { timeout: 10000 }, () => {
  it('WebSocket: {"unsubscribed"} drops the channel, tells the application, and no reconnect resubscribes it', async () => {
    const c = new Herald({ url: 'http://h', transports: ['websocket'], WebSocket: FakeWS, format: 'json', backoffBaseMs: 10, backoffMaxMs: 20, fetch: fakeFetch({}, []) });
    const handler = [], client = [], messages = [];
    c.on('unsubscribed', (u) => client.push([u.channel, u.transport]));
    c.on('message', (m) => messages.push([m.channel, m.offset]));
    c.subscribe('chat:a', { unsubscribed: (u) => handler.push(u.channel) }, 'AUa8x0u8vhicA6NE');
    c.subscribe('chat:b', {}, 'AUa8x0u8vhicA6NE');
    await c.connect();
    await tick();
    const ws = FakeWS.last;
    for (const s of ws.sent) ws.server({ id: s.id, result: { channel: s.channel, recovered: true, cursor: 'AUa8x0u8vhicA6NE' } });
    ws.server({ unsubscribed: { channel: 'chat:a' } });
    ws.server({ push: { channel: 'chat:a', offset: 9, data: 'late', cursor: 'c9' } });
    assert.deepEqual(handler, ['chat:a']);
    assert.deepEqual(client, [['chat:a', 'websocket']]);
    assert.deepEqual(c.channels(), ['chat:b']);
    assert.deepEqual(messages, [], 'nothing of the channel after it was left');
    await tick(10);
    assert.equal(ws.sent.length, 2, 'no unsubscribe sent: herald left the channel already');
    c.drop();
    await tick(100);
    assert.notEqual(FakeWS.last, ws);
    assert.deepEqual(FakeWS.last.sent.map((s) => [s.method, s.channel]), [['subscribe', 'chat:b']]);
    c.close();
  });

  it('WebSocket: {"id":null,"result"} adds the channel from its cursor, announced byServer; a reconnect resubscribes it', async () => {
    const c = new Herald({ url: 'http://h', transports: ['websocket'], WebSocket: FakeWS, format: 'json', backoffBaseMs: 10, backoffMaxMs: 20, fetch: fakeFetch({}, []) });
    const subscribed = [], messages = [], errors = [];
    c.on('subscribed', (s) => subscribed.push([s.channel, s.transport, s.byServer]));
    c.on('message', (m) => messages.push([m.channel, m.offset, m.data]));
    c.on('error', (e) => errors.push(e.code));
    await c.connect();
    await tick();
    const ws = FakeWS.last;
    ws.server({ id: null, result: { channel: 'inbox:u', recovered: true, cursor: 'AUa8x0u8vhicA6NE' } });
    assert.deepEqual(subscribed, [['inbox:u', 'websocket', true]]);
    assert.deepEqual(c.channels(), ['inbox:u']);
    assert.equal(c.cursor('inbox:u'), 'AUa8x0u8vhicA6NE');
    ws.server({ push: { channel: 'inbox:u', offset: 1, data: 'hi', cursor: 'c1' } });
    assert.deepEqual(messages, [['inbox:u', 1, 'hi']]);
    ws.server({ id: null, error: { code: 'forbidden', message: 'no' } });
    assert.deepEqual(errors, ['forbidden']);
    await tick(10);
    assert.equal(ws.sent.length, 0, 'the server subscribed it: no subscribe command');
    c.drop();
    await tick(100);
    assert.deepEqual(FakeWS.last.sent.map((s) => [s.method, s.channel, s.since]), [['subscribe', 'inbox:u', 'c1']]);
    FakeWS.last.server({ id: 1, result: { channel: 'inbox:u', recovered: true, cursor: 'c1' } });
    assert.deepEqual(subscribed.at(-1), ['inbox:u', 'websocket', undefined]);
    c.close();
  });

  it('SSE: event resubscribe reopens at once (no backoff) with the new channel set, from the last id', async () => {
    const urls = [];
    const sse = (text, end) => new Response(new ReadableStream({ start(ctl) { ctl.enqueue(new TextEncoder().encode(text)); if (end) ctl.close(); } }),
      { headers: { 'Content-Type': 'text/event-stream' } });
    const replies = [
      () => sse('retry: 3000\n\nid: AUa8x0u8vhicA6NE\n\nevent: resubscribe\ndata: {"subscribe":"inbox:u"}\n\n', true),
      () => sse('retry: 3000\n\nid: AUa8x0u8vhicA6NF\n\nevent: resubscribe\ndata: {"unsubscribe":"chat:room1"}\n\n', true),
      () => sse('retry: 3000\n\n', false),
    ];
    const fetch = async (url) => {
      const u = new URL(String(url));
      urls.push([u.searchParams.getAll('channel'), u.searchParams.getAll('since')]);
      return (replies[urls.length - 1] ?? replies[2])();
    };
    const c = new Herald({ url: 'http://h', transports: ['sse'], format: 'json', backoffBaseMs: 5000, backoffMaxMs: 5000, fetch });
    const states = [], subscribed = [], unsubscribed = [];
    c.on('state', (s) => states.push(s.state));
    c.on('subscribed', (s) => subscribed.push([s.channel, s.byServer]));
    c.on('unsubscribed', (u) => unsubscribed.push([u.channel, u.transport]));
    c.subscribe('chat:room1', {}, 'AUa8x0u8vhicA6NA');
    await c.connect();
    await tick(100);
    assert.deepEqual(urls, [
      [['chat:room1'], ['AUa8x0u8vhicA6NA']],
      [['chat:room1', 'inbox:u'], ['AUa8x0u8vhicA6NE']],
      [['inbox:u'], ['AUa8x0u8vhicA6NF']],
    ]);
    assert.deepEqual(c.channels(), ['inbox:u']);
    assert.deepEqual(unsubscribed, [['chat:room1', 'sse']]);
    assert.deepEqual(subscribed.filter((s) => s[0] === 'inbox:u').map((s) => s[1]), [true, undefined]);
    assert.ok(!states.includes('disconnected'), `no failure, no backoff: ${states}`);
    c.close();
  });
});
