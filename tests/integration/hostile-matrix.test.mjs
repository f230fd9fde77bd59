// The hostile harness of issue 11 ("Close the classes").
//
// For every endpoint and transport, connections are reset (SO_LINGER 0 + close:
// `socket.resetAndDestroy()`) at each stage: in the middle of the request head (or body),
// right after the whole request (for /sse, /poll, /ws, /api/*, /publish and /ticket with
// the Redis broker that is during the broker round trip; with `?ticket=` it is during
// the ticket lookup), and while the reply or the stream is being written (an SSE replay
// of a channel with 6 MB of history, a long-poll replay, a WebSocket history reply, a
// history read, pipelined publishes and tickets). Then clients that never read
// (`socket.pause()`, never resumed, so the kernel buffers fill and herald's own queues
// are what is left) are run against every kind of reply: live pushes (SSE, WebSocket),
// WebSocket command replies (250 `history` commands on 60 KiB messages), WebSocket
// pongs (48 MB of pings), one WebSocket history reply of 6 MB, pipelined long-poll
// replays from an old cursor, an SSE replay.
//
// Throughout, well-behaved subscribers (10 SSE with the `eventsource` package, 10
// WebSockets with `ws`, 5 long pollers) follow a channel that is published to at a steady
// rate; each must receive every one of the N messages exactly once and in order, without
// a reset.
//
// Asserted: herald stays up (process and /healthz) after every cell (a crash is recorded
// and the matrix goes on with a fresh herald, so the whole matrix is printed); requests
// reset before they were whole are counted in herald_bad_connections_total (http-api.md:
// "a request cut short is counted"); no 5xx; its RSS stays under
// RSS_BOUND above its idle RSS; no connection is leaked (the stream gauges come back to
// the well-behaved subscribers' counts); the live pushes to never-readers are cut and
// counted (herald_slow_disconnects_total), and every never-reader herald closed is
// counted (slow disconnects, bad connections or request timeouts); the well-behaved
// subscribers got everything. The matrix and the figures are printed with t.diagnostic.
//
// Each phase runs against the memory broker and against a real redis-server.
//
// Only 127.0.0.1; every loop is bounded in count and time; the processes started here
// (herald, redis-server) are stopped in `finally` blocks, by their handles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import EventSource from 'eventsource';
import WebSocket from 'ws';
import * as H from './lib/herald.mjs';
import * as J from './lib/jwt.mjs';
import * as C from './lib/cluster.mjs';
import { textFrame, pingFrame, newKey } from './lib/ws-client.mjs';

const MAX_QUEUED = 1048576;           // --max-queued-bytes
// RSS bound: idle + 64 MiB. With one cap of 1 MiB per connection, the dozen connections
// of a phase may legitimately hold ~1 MiB queued plus one write in flight each (the
// largest, a 6 MB WebSocket history reply), ~20 MB in all; 64 MiB leaves room for the
// allocator and the broker's buffers, and is far below what an unbounded queue takes
// (250 history replies of 600 KB = 150 MB; 48 MB of pings = 48 MB of pongs).
const RSS_BOUND = 64 * 1024 * 1024;
const BIG_MSG = 60 * 1024;            // bytes of data per message in the replay channel
const BIG_COUNT = 100;                // messages in the replay channel (6 MB)
const REPS = 24;                      // resets per matrix cell
const GOOD = { sse: 10, ws: 10, poll: 5 };
const PUBLISH_EVERY_MS = 25;
const SECRET = J.secret(40);
const TOKEN = J.hs256({ sub: 'harness', exp: J.now(3600), subscribe: ['*'], publish: ['*'] }, SECRET);

const MB = (b) => `${(b / 1048576).toFixed(1)} MiB`;
const alive = (h) => h.proc.exitCode === null && h.proc.signalCode === null;



// ---------------------------------------------------------------------------------------
// The rig: herald (memory or Redis), a replay channel, well-behaved subscribers, a publisher

async function startRig(brokerKind) {
  const rig = { brokerKind, redis: null, h: null, good: [], closers: [] };
  if (brokerKind === 'redis') rig.redis = await C.startRedis();
  const common = ['--max-queued-bytes', String(MAX_QUEUED), '--token-key', `hs256:${SECRET}`,
    '--namespace', 'pub:client_publish=true', '--request-timeout', '3', '--ws-commands-per-second', '0'];
  rig.h = rig.redis
    ? await C.startNode(rig.redis.url, { threads: 2, historySize: BIG_COUNT, args: common })
    : await H.startHerald(['--threads', '2', '--history-size', String(BIG_COUNT), ...common]);
  if (rig.redis) await C.waitReady(rig.h);
  const h = rig.h;
  // The replay channel: 100 messages of 60 KiB.
  const agent = H.keepAliveAgent(4);
  rig.big0 = (await H.history(h, 'big', { limit: 0, agent })).json.cursor;
  for (let i = 0; i < BIG_COUNT; i++) await H.publish(h, 'big', 'b'.repeat(BIG_MSG), { agent });
  agent.destroy();
  await startGood(rig);
  return rig;
}

async function stopRig(rig) {
  for (const f of rig.closers) { try { f(); } catch { /* gone */ } }
  if (rig.h) await rig.h.stop().catch(() => {});
  if (rig.redis) await rig.redis.stop().catch(() => {});
}

/** The well-behaved subscribers of channel 'good'; each records the offsets it gets. */
async function startGood(rig) {
  const { h } = rig;
  const mk = (kind, i) => ({ kind, name: `${kind}${i}`, offsets: [], resets: [], closes: [] });
  for (let i = 0; i < GOOD.sse; i++) {
    const g = mk('sse', i);
    const es = new EventSource(`${h.base}/sse?channel=good`);
    g.opened = new Promise((resolve) => { es.onopen = resolve; });
    es.onmessage = (e) => g.offsets.push(JSON.parse(e.data).offset);
    es.addEventListener('reset', (e) => g.resets.push(e.data));
    es.onerror = () => g.closes.push('error');
    rig.closers.push(() => es.close());
    rig.good.push(g);
  }
  for (let i = 0; i < GOOD.ws; i++) {
    const g = mk('ws', i);
    const ws = new WebSocket(`ws://${H.HOST}:${h.port}/ws`, { perMessageDeflate: false });
    g.opened = new Promise((resolve, reject) => {
      ws.on('open', () => ws.send('{"id":"s","method":"subscribe","channel":"good"}'));
      ws.on('error', reject);
      ws.on('message', (d) => {
        const j = JSON.parse(d.toString('utf8'));
        if (j.push) g.offsets.push(j.push.offset);
        else if (j.reset) g.resets.push(j.reset);
        else if (j.id === 's') { if (j.result?.recovered === false || j.error) g.resets.push(j); resolve(); }
      });
    });
    ws.on('close', (code) => g.closes.push(code));
    rig.closers.push(() => ws.terminate());
    rig.good.push(g);
  }
  // Long pollers start from the channel's position before the first publication.
  const start = (await H.history(h, 'good', { limit: 0 })).json.cursor;
  for (let i = 0; i < GOOD.poll; i++) {
    const f = new C.PollFollower(h, 'good', { since: start, holdSeconds: 2, name: `poll${i}` });
    f.start();
    const g = mk('poll', i);
    g.follower = f;
    Object.defineProperty(g, 'offsets', { get: () => f.messages.map((m) => m.offset) });
    Object.defineProperty(g, 'resets', { get: () => f.resets });
    g.opened = Promise.resolve();
    rig.closers.push(() => f.stop());
    rig.good.push(g);
  }
  await H.withTimeout(Promise.all(rig.good.map((g) => g.opened)), 15000, 'the well-behaved subscribers to connect');
  // The SSE streams are open once herald counts them (the gauge counts synced streams).
  await H.waitFor(async () => (await H.metrics(h)).get('herald_connections{transport="sse"}') >= GOOD.sse, { timeoutMs: 10000, what: 'the SSE subscribers' });
}

/** Publishes {seq} to 'good' every PUBLISH_EVERY_MS until stop(); resolves with the count. */
function startPublisher(rig) {
  const agent = H.keepAliveAgent(1);
  let stopped = false, seq = 0;
  const failures = [];
  const loop = (async () => {
    const t0 = Date.now();
    while (!stopped && seq < 20000 && Date.now() - t0 < 120000) {
      const r = await H.publishRaw(rig.h, 'good', { seq: seq + 1 }, { agent }).catch((e) => ({ status: e.code ?? e.message }));
      if (r.status === 200) seq++;
      else { failures.push(r.status); if (failures.length > 20 || !alive(rig.h)) break; }
      await H.sleep(PUBLISH_EVERY_MS);
    }
    agent.destroy();
    return seq;
  })();
  return { stop: async () => { stopped = true; return loop; }, failures, get count() { return seq; } };
}

/** Checks every well-behaved subscriber got 1..n exactly once, in order, no reset. */
async function checkGood(t, rig, n) {
  await H.waitFor(() => rig.good.every((g) => g.offsets.length >= n || g.offsets.at(-1) >= n), { timeoutMs: 20000, intervalMs: 100, what: `every subscriber to reach offset ${n}` }).catch(() => {});
  const problems = [];
  for (const g of rig.good) {
    const o = g.offsets;
    const ok = o.length === n && o.every((v, i) => v === i + 1);
    if (!ok) {
      let bad = o.findIndex((v, i) => v !== i + 1);
      problems.push(`${g.name}: ${o.length} messages of ${n}${bad >= 0 ? `, offset ${o[bad]} at index ${bad}` : ''}`);
    }
    if (g.resets.length) problems.push(`${g.name}: ${g.resets.length} resets`);
    if (g.kind === 'ws' && g.closes.length) problems.push(`${g.name}: closed ${g.closes.join(',')}`);
  }
  t.diagnostic(`well-behaved subscribers: ${rig.good.length} (${GOOD.sse} SSE, ${GOOD.ws} WS, ${GOOD.poll} long poll), ` +
    `${n} messages published, ${problems.length} problems`);
  assert.deepEqual(problems.slice(0, 15), [], 'every well-behaved subscriber gets every message once, in order, without a reset');
}

// ---------------------------------------------------------------------------------------
// Reset matrix

/**
 * One connection: writes `bytes` (in one write), then resets it: at once, after
 * `delayMs`, or (waitReply) once the first reply bytes arrived (the socket is then
 * paused, so herald is still writing). Resolves with what happened.
 */
function resetAttempt(port, bytes, { waitReply = false, delayMs = 0, timeoutMs = 5000 } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(port, H.HOST);
    let done = false;
    const kill = (how) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try { s.resetAndDestroy(); } catch { s.destroy(); }
      resolve(how);
    };
    const later = (how) => (delayMs > 0 ? setTimeout(() => kill(how), delayMs) : kill(how));
    const timer = setTimeout(() => kill('no reply'), timeoutMs);
    s.on('error', () => kill('error'));
    s.on('close', () => kill('closed by herald'));
    if (waitReply) s.once('data', () => { s.pause(); later('reset mid-reply'); });
    s.on('connect', () => s.write(bytes, () => { if (!waitReply) later('reset'); }));
  });
}

const wsUpgrade = (path, port) => `GET ${path} HTTP/1.1\r\nHost: ${H.HOST}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: ${newKey()}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
const get = (path, port, extra = '') => `GET ${path} HTTP/1.1\r\nHost: ${H.HOST}:${port}\r\n${extra}\r\n`;
const post = (path, port, body, extra = '') => `POST ${path} HTTP/1.1\r\nHost: ${H.HOST}:${port}\r\nContent-Type: application/json\r\n` +
  `Content-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

async function freshTicket(h) {
  const r = await H.request(h, 'POST', '/ticket', { headers: J.bearer(TOKEN) });
  if (r.status !== 200) throw new Error(`POST /ticket: ${r.status} ${r.text}`);
  return r.json.ticket;
}

/**
 * The endpoints of the matrix: each builds the bytes of one request (fresh ticket
 * where needed); `pipeline` copies are sent for the mid-reply stage of small replies.
 */
function endpoints(rig) {
  const { h } = rig;
  const p = h.port;
  const big0 = encodeURIComponent(rig.big0);
  const pubBody = JSON.stringify({ channel: 'rs', data: { x: 'y'.repeat(200) } });
  const clientBody = JSON.stringify({ channel: 'pub:rs', data: 1 });
  const histCmd = textFrame(JSON.stringify({ id: 1, method: 'history', channel: 'big', limit: BIG_COUNT }));
  return [
    { name: 'POST /api/publish', post: true, pipeline: 50, build: async () => post('/api/publish', p, pubBody) },
    { name: 'GET /api/history', build: async () => get(`/api/history?channel=big&limit=${BIG_COUNT}`, p) },
    { name: 'POST /publish', post: true, pipeline: 50, build: async () => post('/publish', p, clientBody) },
    { name: 'POST /ticket', post: true, pipeline: 50, build: async () => post('/ticket', p, '{}', `Authorization: Bearer ${TOKEN}\r\n`) },
    { name: 'GET /sse (replay)', build: async () => get(`/sse?channel=big&since=${big0}`, p) },
    { name: 'GET /ws (history)', build: async () => Buffer.concat([Buffer.from(wsUpgrade('/ws', p)), histCmd]) },
    { name: 'GET /sse?ticket=', ticket: true, build: async () => get(`/sse?channel=big&since=${big0}&ticket=${await freshTicket(h)}`, p) },
    { name: 'GET /ws?ticket=', ticket: true, build: async () => Buffer.concat([Buffer.from(wsUpgrade(`/ws?ticket=${await freshTicket(h)}`, p)), histCmd]) },
    { name: 'GET /poll (replay)', build: async () => get(`/poll?channel=big&since=${big0}&limit=${BIG_COUNT}&timeout=1`, p) },
    { name: 'GET /poll?ticket=', ticket: true, build: async () => get(`/poll?channel=big&since=${big0}&limit=${BIG_COUNT}&timeout=1&ticket=${await freshTicket(h)}`, p) },
  ];
}

/** Cuts a request: the first half of its head, or the head plus half of its body. */
function cut(bytes, where) {
  const b = Buffer.from(bytes);
  const sep = b.indexOf('\r\n\r\n');
  if (where === 'head') return b.subarray(0, Math.max(1, Math.floor(sep / 2)));
  const bodyLen = b.length - sep - 4;
  return b.subarray(0, sep + 4 + Math.max(1, Math.floor(bodyLen / 2)));
}

async function resetMatrix(t, brokerKind) {
  let rig = await startRig(brokerKind);
  let rss = H.rssSampler(rig.h);
  let idle = H.rssBytes(rig.h.pid);
  let pub;
  try {
    let m0 = await H.metrics(rig.h);
    pub = startPublisher(rig);
    let cutShort = 0;  // requests reset before they were whole (since the last herald start)
    const rows = [];
    const crashes = [];
    const stageNames = ['mid-head', 'mid-body', 'after request', 'mid-reply'];
    const names = endpoints(rig).map((e) => e.name);
    for (const name of names) {
      const row = { endpoint: name, cells: {} };
      rows.push(row);
      for (const stage of stageNames) {
        const ep = endpoints(rig).find((e) => e.name === name);
        if (stage === 'mid-body' && !ep.post) { row.cells[stage] = '-'; continue; }
        const h = rig.h;
        for (let k = 0; k < REPS; k++) {
          const delayMs = k % 3;  // at once, 1 ms, 2 ms after the stage is reached
          let bytes = await ep.build().catch(() => null);
          if (bytes === null) break;  // herald is gone (a ticket could not be had)
          if (stage === 'mid-head' || stage === 'mid-body') cutShort++;
          if (stage === 'mid-head') await resetAttempt(h.port, cut(bytes, 'head'), { delayMs });
          else if (stage === 'mid-body') await resetAttempt(h.port, cut(bytes, 'body'), { delayMs });
          else if (stage === 'after request') await resetAttempt(h.port, bytes, { delayMs });
          else {
            if (ep.pipeline) bytes = Buffer.concat(Array.from({ length: ep.pipeline }, () => Buffer.from(bytes)));
            await resetAttempt(h.port, bytes, { waitReply: true, delayMs });
          }
          if (!alive(h)) break;
        }
        await H.sleep(20);
        const up = alive(h) && (await H.get(h, '/healthz', { timeoutMs: 3000 }).then((r) => r.status === 200, () => false));
        row.cells[stage] = up ? `ok ${REPS}` : 'CRASH';
        if (!up) {
          // Record it, and go on with a fresh herald so that the whole matrix is known.
          await H.sleep(100);
          crashes.push(`${name} x ${stage}: ${C.deathNote(h).replace(/command: .*?; /, '').slice(0, 300)}`);
          await pub.stop();
          rss.stop();
          await stopRig(rig);
          rig = await startRig(brokerKind);
          rss = H.rssSampler(rig.h);
          idle = H.rssBytes(rig.h.pid);
          m0 = await H.metrics(rig.h);
          cutShort = 0;
          pub = startPublisher(rig);
        }
      }
    }
    const h = rig.h;
    const n = await pub.stop();
    rss.stop();
    t.diagnostic(`reset matrix (${brokerKind} broker), ${REPS} resets per cell (endpoint x stage):`);
    t.diagnostic(`  ${'endpoint'.padEnd(20)} ${stageNames.map((s) => s.padEnd(14)).join(' ')}`);
    for (const r of rows) t.diagnostic(`  ${r.endpoint.padEnd(20)} ${stageNames.map((s) => String(r.cells[s]).padEnd(14)).join(' ')}`);
    for (const c of crashes) t.diagnostic(`  crash: ${c}`);

    // No connection leaked: the stream gauges come back to the well-behaved subscribers.
    let gauges;
    await H.waitFor(async () => {
      const m = await H.metrics(h);
      gauges = { sse: m.get('herald_connections{transport="sse"}'), ws: m.get('herald_connections{transport="ws"}'), poll: m.get('herald_connections{transport="poll"}') };
      return gauges.sse === GOOD.sse && gauges.ws === GOOD.ws && gauges.poll <= GOOD.poll;
    }, { timeoutMs: 10000, intervalMs: 200, what: 'the stream gauges to come back' }).catch(() => {});
    const m1 = await H.metrics(h);
    const d = (k) => (m1.get(k) ?? 0) - (m0.get(k) ?? 0);
    t.diagnostic(`figures${crashes.length ? ' (of the last herald)' : ''}: idle RSS ${MB(idle)}, peak ${MB(rss.peak())} (bound +${MB(RSS_BOUND)}); ` +
      `gauges after ${JSON.stringify(gauges)}; bad_connections +${d('herald_bad_connections_total')}, ` +
      `request_timeout refusals +${d('herald_limit_refusals_total{limit="request_timeout"}')}, drops +${d('herald_drops_total')}, ` +
      `4xx +${d('herald_http_responses_total{class="4xx"}')}, 5xx +${d('herald_http_responses_total{class="5xx"}')}`);
    assert.deepEqual(crashes, [], 'herald must survive a reset at every stage of every endpoint');
    assert.equal(gauges?.sse, GOOD.sse, `no reset SSE stream is left open in herald: ${JSON.stringify(gauges)}`);
    assert.equal(gauges?.ws, GOOD.ws, `no reset WebSocket is left open in herald: ${JSON.stringify(gauges)}`);
    assert.ok(gauges.poll <= GOOD.poll, `no reset long poll is left held in herald: ${JSON.stringify(gauges)}`);
    assert.ok(rss.peak() - idle <= RSS_BOUND, `RSS grew by ${MB(rss.peak() - idle)}, over ${MB(RSS_BOUND)}`);
    assert.equal(d('herald_http_responses_total{class="5xx"}'), 0, 'no 5xx (internal errors) for reset connections');
    // http-api.md: "a request cut short is counted in herald_bad_connections_total".
    assert.ok(d('herald_bad_connections_total') >= cutShort,
      `${cutShort} requests reset before they were whole, ${d('herald_bad_connections_total')} counted in herald_bad_connections_total`);
    await checkGood(t, rig, n);
  } finally {
    rss.stop();
    await pub?.stop();
    await stopRig(rig);
  }
}

// ---------------------------------------------------------------------------------------
// Never-reading clients

function pausedSocket(port, bytes) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, H.HOST);
    s.pause();
    s.on('error', () => {});
    s.once('connect', () => { s.write(bytes); resolve(s); });
    s.once('error', reject);
  });
}


async function neverReaders(t, brokerKind) {
  const rig = await startRig(brokerKind);
  const { h } = rig;
  const p = h.port;
  const big0 = encodeURIComponent(rig.big0);
  const socks = [];
  try {
    await H.sleep(200);
    const idle = H.rssBytes(h.pid);
    const rss = H.rssSampler(h);
    const m0 = await H.metrics(h);
    const pub = startPublisher(rig);
    const kinds = [];
    const add = async (kind, transport, bytes, then) => {
      const s = await pausedSocket(p, bytes);
      socks.push(s);
      const k = { kind, transport, socket: s, note: '' };
      kinds.push(k);
      if (then) k.note = await then(s);
      return k;
    };
    const ws = (extra) => Buffer.concat([Buffer.from(wsUpgrade('/ws', p)), extra]);
    // Live pushes.
    await add('SSE live pushes', 'sse', get('/sse?channel=flood', p));
    await add('WS live pushes', 'ws', ws(textFrame('{"id":1,"method":"subscribe","channel":"flood"}')));
    // Replays and replies.
    await add('SSE replay (6 MB)', 'sse', get(`/sse?channel=big&since=${big0}`, p));
    await add('WS history reply (6 MB)', 'ws', ws(textFrame(JSON.stringify({ id: 1, method: 'history', channel: 'big', limit: BIG_COUNT }))));
    await add('WS command replies (250 history)', 'ws', ws(Buffer.concat(Array.from({ length: 250 },
      (_, i) => textFrame(JSON.stringify({ id: i + 1, method: 'history', channel: 'big', limit: 10 }))))));
    await add('long-poll replays (20 pipelined)', 'poll', Buffer.concat(Array.from({ length: 20 },
      () => Buffer.from(get(`/poll?channel=big&since=${big0}&limit=20&timeout=0`, p)))));
    const pings = await add('WS pongs (48 MB of pings)', 'ws', ws(Buffer.alloc(0)));
    const one = pingFrame(Buffer.alloc(125, 'p'));
    const block = Buffer.concat(Array.from({ length: Math.floor(1048576 / one.length) }, () => one));
    const pinging = H.writeUntilStalled(pings.socket, block, 48).then((n) => { pings.note = `${MB(n)} of pings taken`; });
    // Live traffic for the live never-readers: 300 messages of 60 KiB (18 MB), until both are cut.
    const agent = H.keepAliveAgent(2);
    const flood = 'f'.repeat(BIG_MSG);
    const slow0 = m0.get('herald_slow_disconnects_total') ?? 0;
    let floods = 0;
    for (; floods < 300; floods++) {
      await H.publish(h, 'flood', flood, { agent });
      if (floods % 20 === 19 && ((await H.metrics(h)).get('herald_slow_disconnects_total') ?? 0) - slow0 >= 2) break;
    }
    agent.destroy();
    await pinging;
    await H.sleep(1500);
    const m1 = await H.metrics(h);
    rss.stop();
    const growth = rss.peak() - idle;
    const up = alive(h) && (await H.get(h, '/healthz', { timeoutMs: 3000 }).then((r) => r.status === 200, () => false));
    const d = (k) => (m1.get(k) ?? 0) - (m0.get(k) ?? 0);
    const open = { sse: m1.get('herald_connections{transport="sse"}') - GOOD.sse, ws: m1.get('herald_connections{transport="ws"}') - GOOD.ws };
    const opened = { sse: kinds.filter((k) => k.transport === 'sse').length, ws: kinds.filter((k) => k.transport === 'ws').length };
    const closedByHerald = (opened.sse - open.sse) + (opened.ws - open.ws);
    const counted = d('herald_slow_disconnects_total') + d('herald_bad_connections_total') + d('herald_limit_refusals_total{limit="request_timeout"}');
    t.diagnostic(`never-reading clients (${brokerKind} broker), reply kinds:`);
    for (const k of kinds) t.diagnostic(`  ${k.kind.padEnd(36)} ${k.note}`);
    t.diagnostic(`figures: idle RSS ${MB(idle)}, peak ${MB(rss.peak())}, growth ${MB(growth)} (bound ${MB(RSS_BOUND)}); ` +
      `flood messages published ${floods + 1}; slow_disconnects +${d('herald_slow_disconnects_total')}, ` +
      `bad_connections +${d('herald_bad_connections_total')}, request_timeout +${d('herald_limit_refusals_total{limit="request_timeout"}')}, ` +
      `drops +${d('herald_drops_total')}; never-readers still open: sse ${open.sse}/${opened.sse}, ws ${open.ws}/${opened.ws}; herald up: ${up}`);
    assert.ok(up, `herald is not serving: ${C.deathNote(h)}`);
    assert.ok(growth <= RSS_BOUND, `RSS grew by ${MB(growth)}, over the bound of ${MB(RSS_BOUND)}`);
    assert.ok(d('herald_slow_disconnects_total') >= 2, `the two live never-readers (SSE, WS) were cut and counted: +${d('herald_slow_disconnects_total')}`);
    assert.ok(counted >= closedByHerald, `${closedByHerald} never-readers closed by herald, ${counted} counted`);
    for (const s of socks) s.destroy();
    socks.length = 0;
    const n = await pub.stop();
    await checkGood(t, rig, n);
  } finally {
    for (const s of socks) s.destroy();
    await stopRig(rig);
  }
}

const haveRedis = C.missingTools(['redis-server', 'redis-cli']).length === 0;

test('reset at every stage of every endpoint (memory broker)', { timeout: 80000 }, (t) => resetMatrix(t, 'memory'));
test('reset at every stage of every endpoint (Redis broker: broker round trips and ticket lookups in flight)', { timeout: 80000, skip: !haveRedis && 'redis-server not installed' }, (t) => resetMatrix(t, 'redis'));
test('clients that never read, against every kind of reply (memory broker)', { timeout: 80000 }, (t) => neverReaders(t, 'memory'));
test('clients that never read, against every kind of reply (Redis broker)', { timeout: 80000, skip: !haveRedis && 'redis-server not installed' }, (t) => neverReaders(t, 'redis'));
