// Sentinels that misbehave: herald asks its --sentinels in turn, so one that answers
// garbage, the wrong type, an address where no Redis listens or where a replica does, or
// nothing at all must not
// keep it for long from the primary a real Sentinel names, and a node with no usable sentinel stays
// up, says it is not ready and refuses publishes with 503. The bad sentinels are small TCP
// servers of this test; the primary and the good sentinel are real redis-server processes.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import * as H from './lib/herald.mjs';
import * as C from './lib/cluster.mjs';

const test = (name, opts, fn) => nodeTest(name, { timeout: 60000, ...opts }, fn);
const missing = C.missingTools(['redis-server', 'redis-cli']);
const skip = missing.length ? `missing ${missing}` : false;

const bulk = (s) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
const servers = [];
/** A fake sentinel answering every command it is sent with `reply(commandText)` (or nothing). */
async function fakeSentinel(reply) {
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.on('data', (d) => { const r = reply(d.toString('latin1')); if (r !== undefined) s.write(r); });
  });
  await new Promise((r) => server.listen(0, H.HOST, r));
  servers.push({ server, sockets });
  return `${H.HOST}:${server.address().port}`;
}

let primary, replica, sentinel, closedPort;
before(async () => {
  if (skip) return;
  primary = await C.startRedis();
  replica = await C.startReplica(primary);
  sentinel = await C.startSentinel(primary, { quorum: 1 });
  closedPort = await H.freePort();
});
after(async () => {
  for (const { server, sockets } of servers) {
    for (const s of sockets) s.destroy();
    server.close();
  }
  await sentinel?.stop();
  await replica?.stop();
  await primary?.stop();
});

const hostile = {
  'garbage bytes': () => '\x00\xffthis is not RESP\r\n',
  'an integer instead of an address': () => ':42\r\n',
  'a nil (unknown master)': () => '*-1\r\n',
  'an address with a port out of range': () => `*2\r\n${bulk('127.0.0.1')}${bulk('99999')}\r\n`,
  'an address where no Redis listens': () => `*2\r\n${bulk('127.0.0.1')}${bulk(String(closedPort))}`,
  'the address of a replica (not a primary)': () => `*2\r\n${bulk('127.0.0.1')}${bulk(String(replica.port))}`,
  'nothing at all (silent)': () => undefined,
};

for (const [what, reply] of Object.entries(hostile)) {
  test(`a first sentinel that answers ${what}: herald goes on to the real one and serves`, { skip }, async () => {
    const bad = await fakeSentinel(reply);
    const node = await C.startNode('sentinel://herald', {
      args: ['--sentinels', `${bad},${sentinel.addr}`, '--sentinel-poll', '200', '--redis-timeout', '1000'],
    });
    try {
      await C.waitReady(node, 200, 20000);
      const r = await H.publishRaw(node, `hostile:${what.length}`, { ok: true });
      assert.equal(r.status, 200, r.text);
      assert.ok(C.alive(node), C.deathNote(node));
    } finally {
      await node.stop();
    }
  });
}

test('with only misbehaving sentinels the node stays up, is not ready, and refuses publishes with 503', { skip }, async () => {
  const a = await fakeSentinel(hostile['garbage bytes']);
  const b = await fakeSentinel(hostile['an integer instead of an address']);
  const node = await C.startNode('sentinel://herald', {
    args: ['--sentinels', `${a},${b}`, '--sentinel-poll', '100', '--redis-timeout', '500'],
  });
  try {
    await H.sleep(2000);  // many rounds over both
    assert.ok(C.alive(node), C.deathNote(node));
    assert.equal((await H.get(node, '/readyz')).status, 503);
    const r = await H.publishRaw(node, 'hostile:none', { ok: false });
    assert.equal(r.status, 503, r.text);
    assert.equal((await H.get(node, '/healthz')).status, 200);
  } finally {
    await node.stop();
  }
});
