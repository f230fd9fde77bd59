// Interop of herald's /ws with independent WebSocket implementations:
//   - the `ws` npm package (node), with and without permessage-deflate;
//   - Debian's python3-websockets (tests/interop/ws_client.py, run by /usr/bin/python3),
//     with and without permessage-deflate.
// (Headless Chromium's native WebSocket is in browser/ws-browser.test.mjs.)
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import WebSocket from 'ws';
import { startHerald, publish, TESTS_DIR } from './lib/herald.mjs';

const PY = process.env.HERALD_PYTHON || '/usr/bin/python3';
const PY_CLIENT = path.resolve(TESTS_DIR, '../interop/ws_client.py');

/** A `ws` client with a queue of parsed messages. */
function connect(h, opts = {}) {
  return new Promise((resolve, reject) => {
    const sock = new WebSocket(`ws://127.0.0.1:${h.port}/ws`, { handshakeTimeout: 5000, ...opts });
    const c = { sock, queue: [], waiters: [], closed: null, nextId: 1 };
    c.closedP = new Promise((res) => sock.on('close', (code, reason) => { c.closed = { code, reason: reason.toString() }; res(c.closed); for (const w of c.waiters.splice(0)) w.reject(new Error(`closed ${code}`)); }));
    sock.on('message', (data, isBinary) => {
      assert.equal(isBinary, false, 'herald sends text frames');
      const j = JSON.parse(data.toString('utf8'));
      const w = c.waiters.shift();
      if (w) w.resolve(j); else c.queue.push(j);
    });
    c.next = (ms = 5000) => {
      if (c.queue.length) return Promise.resolve(c.queue.shift());
      return new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`no message within ${ms} ms`)), ms);
        c.waiters.push({ resolve: (j) => { clearTimeout(t); res(j); }, reject: (e) => { clearTimeout(t); rej(e); } });
      });
    };
    c.request = async (cmd) => {
      const id = c.nextId++;
      sock.send(JSON.stringify({ id, ...cmd }));
      for (;;) {
        const j = await c.next();
        if (j.id === id) return j;
        c.pushes = (c.pushes ?? []).concat(j.push ? [j.push] : []);
        if (!j.push) throw new Error(`unexpected frame ${JSON.stringify(j)}`);
      }
    };
    c.push = async () => (c.pushes?.length ? c.pushes.shift() : (await c.next()).push);
    sock.once('open', () => resolve(c));
    sock.once('error', reject);
  });
}

function runPython(args) {
  return new Promise((resolve) => {
    execFile(PY, [PY_CLIENT, ...args], { timeout: 45000, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : err.signal ?? err.code) : 0, stdout, stderr, err });
    });
  });
}

describe('interop', () => {
  let plain, deflate;
  before(async () => {
    plain = await startHerald(['--namespace', 'chat:client_publish=true', '--ws-max-message', '100000']);
    deflate = await startHerald(['--namespace', 'chat:client_publish=true', '--ws-deflate', 'true']);
  });
  after(async () => { await plain?.stop(); await deflate?.stop(); });

  for (const [label, pmd] of [['without compression', false], ['with permessage-deflate', true]]) {
    it(`ws (npm) client ${label}: subscribe, HTTP and WS publish, ping, normal close`, async () => {
      const h = pmd ? deflate : plain;
      const c = await connect(h, { perMessageDeflate: pmd });
      if (pmd) assert.match(c.sock.extensions, /^permessage-deflate/, `extensions: ${c.sock.extensions}`);
      else assert.equal(c.sock.extensions, '');
      const ch = `chat:ws-npm-${pmd}`;
      const sub = await c.request({ method: 'subscribe', channel: ch });
      assert.equal(sub.result.channel, ch);
      const pub = await publish(h, ch, { via: 'http', text: 'κόσμε 😀' });
      const p1 = await c.push();
      assert.deepEqual([p1.offset, p1.data, p1.cursor], [pub.offset, { via: 'http', text: 'κόσμε 😀' }, pub.cursor]);
      const big = { blob: 'herald '.repeat(4000) };  // over ws's 1 KiB compression threshold
      const r = await c.request({ method: 'publish', channel: ch, data: big });
      assert.equal(r.result.offset, 2);
      const p2 = await c.push();
      assert.deepEqual(p2.data, big);
      const pong = new Promise((res) => c.sock.once('pong', (d) => res(d.toString())));
      c.sock.ping('npm-ping');
      assert.equal(await pong, 'npm-ping');
      c.sock.close(1000, 'bye');
      const closed = await c.closedP;
      assert.equal(closed.code, 1000);
    });
  }

  it('ws (npm) client sees herald\'s close codes: 1009 for a message over --ws-max-message', async () => {
    const c = await connect(plain, { perMessageDeflate: false });
    c.sock.send(JSON.stringify({ id: 1, method: 'ping', pad: 'x'.repeat(200000) }));
    let t;
    const closed = await Promise.race([c.closedP, new Promise((_, rej) => { t = setTimeout(() => rej(new Error('not closed within 5 s')), 5000); })]);
    clearTimeout(t);
    assert.equal(closed.code, 1009);
  });

  for (const [label, args] of [['without compression', []], ['with permessage-deflate', ['--deflate']]]) {
    it(`python3-websockets client ${label} (tests/interop/ws_client.py)`, { timeout: 60000 }, async () => {
      const h = args.length ? deflate : plain;
      const r = await runPython([String(h.port), ...args]);
      if (r.err && r.err.code === 'ENOENT') assert.fail(`${PY} not found (scripts/setup.sh test installs python3 and python3-websockets)`);
      assert.equal(r.code, 0, `${PY} ${PY_CLIENT} ${h.port} ${args.join(' ')} failed (${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      const res = JSON.parse(r.stdout.trim().split('\n').pop());
      assert.equal(res.ok, true);
      assert.equal(res.close_code, 1000);
      if (args.length) assert.deepEqual(res.extensions, ['PerMessageDeflate']);
      console.log(`python interop ${label}: ${r.stdout.trim()}`);
    });
  }
});
