// Streams across nodes (two herald processes sharing a real redis-server): a stop sent to
// node B reaches the producer's open ingest on node A, which is answered "aborted" within a
// second; a reader on node B follows and resumes an answer produced on node A.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as H from './lib/herald.mjs';
import * as C from './lib/cluster.mjs';

const test = (name, fn) => nodeTest(name, { timeout: 30000 }, fn);
const missing = C.missingTools(['redis-server', 'redis-cli']);
const NS = ['--namespace', 'ai:stream_coalesce_ms=10,history_size=5000'];

let redis, a, b;
before(async () => {
  if (missing.length) return;
  redis = await C.startRedis();
  a = await C.startNode(redis.url, { args: NS });
  b = await C.startNode(redis.url, { args: NS });
  await C.waitReady(a);
  await C.waitReady(b);
});
after(async () => {
  await a?.stop();
  await b?.stop();
  await redis?.stop();
});

function producer(node, channel) {
  const req = http.request({ host: H.HOST, port: node.port, method: 'POST', agent: false,
    path: `/api/stream?channel=${channel}`, headers: { 'Content-Type': 'text/plain' } });
  const reply = new Promise((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(body), at: Date.now() }));
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  return { write: (s) => new Promise((r) => req.write(s, r)), end: () => req.end(), destroy: () => req.destroy(), reply };
}

const history = async (node, ch) => (await H.history(node, ch, { since: 'earliest', limit: 1000 })).json.messages;

test('a stop on node B answers the producer on node A "aborted" within a second', { skip: missing.length ? `missing ${missing}` : false }, async () => {
  const ch = 'ai:x-node-stop';
  const { reader } = await H.openSynced(b, { channels: ch, since: 'earliest' });
  const p = producer(a, ch);
  try {
    await p.write('produced on A ');
    const first = await reader.nextEvent(5000);
    assert.equal(JSON.parse(first.data).data, 'produced on A ');
    const t0 = Date.now();
    const s = await H.request(b, 'POST', '/api/stream/stop', { body: { channel: ch, reason: 'stop from B' } });
    assert.equal(s.status, 200, s.text);
    assert.equal(s.json.state, 'aborted');
    const r = await p.reply;
    assert.ok(r.at - t0 < 1000, `the producer was answered ${r.at - t0} ms after the stop`);
    assert.equal(r.json.state, 'aborted');
    assert.equal(r.json.offset, s.json.offset);
    const end = await reader.nextEvent(5000);
    assert.equal(end.event, 'end');
    assert.deepEqual(JSON.parse(end.data).data, { state: 'aborted', reason: 'stop from B' });
    await reader.waitClosed();
  } finally {
    p.destroy();
    reader.close();
  }
});

test('a reader on node B resumes mid-answer an answer produced on node A, then gets 204 at the end', { skip: missing.length ? `missing ${missing}` : false }, async () => {
  const ch = 'ai:x-node-resume';
  const p = producer(a, ch);
  let sent = '';
  for (let i = 0; i < 40; i++) {
    const tok = `t${i} `;
    sent += tok;
    await p.write(tok);
    await H.sleep(3);
  }
  await H.waitFor(async () => (await history(b, ch)).length > 2, { what: 'messages on B' });
  const { reader, preamble } = await H.openSynced(b, { channels: ch, since: 'earliest' });
  const got = preamble.filter((x) => x.data !== undefined).map((x) => JSON.parse(x.data));
  reader.close();  // dropped mid-answer
  const resumeAt = preamble.at(-1).id;
  for (let i = 40; i < 80; i++) {
    const tok = `t${i} `;
    sent += tok;
    await p.write(tok);
    await H.sleep(3);
  }
  p.end();
  assert.equal((await p.reply).json.state, 'completed');
  const again = await H.SSEReader.open(b, { channels: ch, lastEventId: resumeAt });
  const rest = await again.until((x) => x.event === 'end', 10000);
  await again.waitClosed();
  got.push(...rest.filter((x) => x.data !== undefined).map((x) => JSON.parse(x.data)));
  const offsets = got.map((m) => m.offset);
  assert.deepEqual(offsets, offsets.map((_, i) => i + 1), 'every offset once, in order');
  assert.equal(got.filter((m) => m.event !== 'end').map((m) => m.data).join(''), sent);
  const after = await H.SSEReader.open(b, { channels: ch, lastEventId: rest.at(-1).id });
  assert.equal(after.status, 204);
});

test('a stop of a piecewise producer\'s stream, on a node with no ingest anywhere, publishes the end itself', { skip: missing.length ? `missing ${missing}` : false }, async () => {
  const ch = 'ai:x-node-piecewise';
  assert.equal((await H.request(a, 'POST', '/api/publish', { body: { channel: ch, data: 'x', expected_offset: 1 } })).status, 200);
  const s = await H.request(b, 'POST', '/api/stream/stop', { body: { channel: ch } });
  assert.equal(s.status, 200, s.text);
  assert.equal(s.json.offset, 2);
  const next = await H.request(a, 'POST', '/api/publish', { body: { channel: ch, data: 'y', expected_offset: 2 } });
  assert.equal(next.json.error.code, 'stream_ended');
});

test('Redis restarted mid-answer: the producer gets 503, the readers a reset and then an error end', { skip: missing.length ? `missing ${missing}` : false }, async () => {
  const own = await C.startRedis();
  const node = await C.startNode(own.url, { args: NS });
  let again;
  try {
    await C.waitReady(node);
    const ch = 'ai:redis-restart';
    const { reader } = await H.openSynced(node, { channels: ch });
    const p = producer(node, ch);
    await p.write('before the restart ');
    const first = await reader.nextEvent(5000);
    assert.equal(JSON.parse(first.data).data, 'before the restart ');
    await own.kill();
    await p.write('while Redis is down ');
    const r = await p.reply;
    assert.equal(r.status, 503, JSON.stringify(r.json));
    assert.equal(r.json.error.state, 'error');
    again = await C.startRedis({ port: own.port });  // empty: the channel's history is gone
    const blocks = await reader.until((b) => b.event === 'end', 20000);
    const reset = blocks.find((b) => b.event === 'reset');
    assert.ok(reset, `a reset before the end: ${JSON.stringify(blocks)}`);
    const end = JSON.parse(blocks.at(-1).data).data;
    assert.equal(end.state, 'error');
    assert.match(end.reason, /not reachable/);
    await reader.waitClosed();
  } finally {
    await node.stop();
    await again?.stop();
    await own.stop();
  }
});

test('a second producer on another node is refused 409 while the first is live; its lease goes with the end', { skip: missing.length ? `missing ${missing}` : false }, async () => {
  const ch = 'ai:x-node-second-producer';
  const p = producer(a, ch);
  try {
    await p.write('the first producer ');
    // Its lease is in Redis once its first delta is published.
    const { reader } = await H.openSynced(b, { channels: ch, since: 'earliest' });
    await reader.nextEvent(5000);
    reader.close();
    const second = await H.request(b, 'POST', `/api/stream?channel=${ch}`, { body: 'a second producer', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(second.status, 409, second.text);
    assert.equal(second.json.error.code, 'stream_busy');
    assert.match(second.json.error.message, /another node/);
    assert.deepEqual(await C.redisKeys(redis.port, 'herald:lease:*'), [`herald:lease:stream:${ch}`]);
    p.end();
    const r = await p.reply;
    assert.equal(r.json.state, 'completed');
    assert.equal((await history(b, ch)).filter((m) => m.event !== 'end').map((m) => m.data).join(''), 'the first producer ',
      'nothing of the refused producer was published');
    assert.deepEqual(await C.redisKeys(redis.port, 'herald:lease:*'), [], 'the lease is released at the end');
  } finally {
    p.destroy();
  }
});

test('a producer\'s node killed mid-answer: another node may take the stream over once the lease expires (10 s)', { skip: missing.length ? `missing ${missing}` : false, timeout: 40000 }, async () => {
  const ch = 'ai:x-node-takeover';
  const doomed = await C.startNode(redis.url, { args: NS });
  const p = producer(doomed, ch);
  p.reply.catch(() => {});
  try {
    await C.waitReady(doomed);
    await p.write('from the node that dies ');
    const { reader } = await H.openSynced(b, { channels: ch, since: 'earliest' });
    await reader.nextEvent(5000);
    const killedAt = Date.now();
    await doomed.kill();
    const early = await H.request(b, 'POST', `/api/stream?channel=${ch}`, { body: 'too early', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(early.status, 409, 'the dead node still holds the lease');
    let taken;
    while (Date.now() - killedAt < 15000) {
      await new Promise((r) => setTimeout(r, 500));
      taken = await H.request(b, 'POST', `/api/stream?channel=${ch}`, { body: 'and the rest from B', headers: { 'Content-Type': 'text/plain' } });
      if (taken.status !== 409) break;
    }
    assert.equal(taken.status, 200, taken.text);
    assert.equal(taken.json.state, 'completed');
    assert.ok(Date.now() - killedAt <= 12000, `taken over ${Date.now() - killedAt} ms after the kill`);
    const blocks = await reader.until((e) => e.event === 'end', 5000);
    assert.equal(blocks.filter((e) => e.data !== undefined && e.event !== 'end').map((e) => JSON.parse(e.data).data).join(''), 'and the rest from B');
    reader.close();
  } finally {
    p.destroy();
    await doomed.kill();
  }
});

test('SIGTERM drain: a live answer gets the drain window, then ends "error" for its readers and 503 draining for its producer', { skip: missing.length ? `missing ${missing}` : false }, async () => {
  const ch = 'ai:drained';
  const node = await C.startNode(redis.url, { args: NS, drainSeconds: 1 });
  const p = producer(node, ch);
  try {
    await C.waitReady(node);
    await p.write('an answer cut by a restart ');
    const { reader } = await H.openSynced(b, { channels: ch, since: 'earliest' });
    await reader.nextEvent(5000);
    const t0 = Date.now();
    node.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    await p.write('still within the window ');  // the window is the answer's: still taken
    const r = await p.reply;
    assert.ok(Date.now() - t0 >= 900, `answered ${Date.now() - t0} ms into a 1 s window`);
    assert.equal(r.status, 503, JSON.stringify(r.json));
    assert.equal(r.json.error.code, 'draining');
    assert.equal(r.json.error.state, 'error');
    const blocks = await reader.until((e) => e.event === 'end', 5000);
    assert.equal(blocks.filter((e) => e.data !== undefined && e.event !== 'end').map((e) => JSON.parse(e.data).data).join(''), 'still within the window ');
    assert.deepEqual(JSON.parse(blocks.at(-1).data).data, { state: 'error', reason: 'the server is shutting down' });
    assert.equal(r.json.error.offset, JSON.parse(blocks.at(-1).data).offset);
    const exit = await node.exited;
    assert.equal(exit.code, 0);
    assert.deepEqual(await C.redisKeys(redis.port, 'herald:lease:*'), []);
    reader.close();
  } finally {
    p.destroy();
    await node.kill();
  }
});
