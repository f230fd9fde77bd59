// Chat under load over WebSocket: 50 clients in one room, each publishing 40 messages
// over its own connection while receiving. Every client must receive every message
// exactly once, in offset order, and the push of each message must match its publish
// reply (offset and cursor). Reports deliveries per second.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, sleep, metrics } from './lib/herald.mjs';
import { HeraldWs } from './lib/ws-client.mjs';

const CLIENTS = 50;
const PER_CLIENT = 40;
const WINDOW = 5;  // publishes in flight per client

describe('chat under load', () => {
  let h;
  const clients = [];
  before(async () => { h = await startHerald(['--namespace', 'chat:client_publish=true,history_size=5000']); });
  after(async () => { for (const c of clients) c.destroy(); await h?.stop(); });

  it(`${CLIENTS} clients × ${PER_CLIENT} messages in one room: each client gets all ${CLIENTS * PER_CLIENT} once, in order`, { timeout: 120000 }, async () => {
    const room = `chat:room${process.pid}`;
    const total = CLIENTS * PER_CLIENT;
    const state = [];
    for (let i = 0; i < CLIENTS; i++) {
      const c = await HeraldWs.open(h);
      c.keepLog = false;
      clients.push(c);
      const st = { expected: 1, keys: new Set(), problems: [], pushByOffset: new Map(), done: null };
      st.finished = new Promise((resolve) => { st.done = resolve; });
      c.onPush = (p) => {
        if (p.offset !== st.expected) st.problems.push(`client ${i}: offset ${p.offset} where ${st.expected} was due`);
        st.expected = p.offset + 1;
        const key = `${p.data.from}/${p.data.seq}`;
        if (st.keys.has(key)) st.problems.push(`client ${i}: ${key} twice`);
        st.keys.add(key);
        if (p.data.from === i) st.pushByOffset.set(p.offset, p);
        if (st.keys.size === total) st.done();
      };
      state.push(st);
      const r = await c.subscribe(room);
      assert.equal(r.channel, room);
    }

    const t0 = process.hrtime.bigint();
    const replies = state.map(() => []);
    await Promise.all(clients.map(async (c, i) => {
      let next = 0;
      const worker = async () => {
        while (next < PER_CLIENT) {
          const seq = next++;
          const r = await c.request({ method: 'publish', channel: room, data: { from: i, seq, text: `message ${seq} from client ${i}` } }, 30000);
          if (!r.result) throw new Error(`publish failed: ${JSON.stringify(r)}`);
          replies[i].push({ seq, ...r.result });
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, worker));
    }));
    const tPub = Number(process.hrtime.bigint() - t0) / 1e9;
    let timer;
    await Promise.race([
      Promise.all(state.map((s) => s.finished)),
      new Promise((resolve) => { timer = setTimeout(resolve, 60000); }),
    ]);
    clearTimeout(timer);
    const tAll = Number(process.hrtime.bigint() - t0) / 1e9;
    await sleep(200);  // anything extra would show up as a duplicate or an out-of-order offset

    const problems = state.flatMap((s) => s.problems);
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problems`);
    for (const [i, s] of state.entries()) {
      assert.equal(s.keys.size, total, `client ${i} received ${s.keys.size} of ${total}`);
      assert.equal(s.expected, total + 1, `client ${i} ended at offset ${s.expected - 1}`);
    }
    // Each publish reply matches the push of that message.
    const offsets = new Set();
    for (const [i, rs] of replies.entries()) {
      assert.equal(rs.length, PER_CLIENT);
      for (const r of rs) {
        assert.ok(!offsets.has(r.offset), `offset ${r.offset} given twice`);
        offsets.add(r.offset);
        const p = state[i].pushByOffset.get(r.offset);
        assert.ok(p, `client ${i}: no push for its publish at offset ${r.offset}`);
        assert.equal(p.data.seq, r.seq);
        assert.equal(p.cursor, r.cursor);
      }
    }
    assert.equal(offsets.size, total);
    for (const c of clients) { assert.equal(c.close, null); c.assertClean(); }
    const m = await metrics(h);
    const deliveries = total * CLIENTS;
    console.log(`chat load: ${CLIENTS} clients, ${total} messages published in ${tPub.toFixed(2)} s (${Math.round(total / tPub)} publishes/s); ` +
      `${deliveries} deliveries in ${tAll.toFixed(2)} s (${Math.round(deliveries / tAll)} msgs/s received); ` +
      `herald_deliveries_total{transport="ws"} = ${m.get('herald_deliveries_total{transport="ws"}')}`);
  });
});
