#!/usr/bin/env node
// Cross-node figures of the Redis broker, next to a single node with the memory broker,
// measured in one run on this machine:
//
//   1. publish-to-receive latency: publish on node 1 (POST /api/publish), receive on
//      node 2 over SSE; the payload carries the send time (one process, one clock);
//      median, p90, p99, max over --messages messages sent at --rate per second.
//      The same with one memory-broker node (publish and receive on it) for reference.
//   2. delivered messages per second with --subscribers SSE subscribers on node 2 and a
//      burst of --burst messages published on node 1 (--inflight requests at a time);
//      the same on one memory-broker node.
//   3. Redis commands per publish: CONFIG RESETSTAT, --count-publishes publishes on node 1
//      with subscribers of that channel on both nodes, then INFO commandstats (commands
//      run inside the publish script are counted too; the figure is per publish).
//
// Usage (from the repository root, after `ninja -C build herald`):
//   node bench/cluster_latency.mjs [--messages 1000] [--rate 200] [--subscribers 100]
//        [--burst 2000] [--inflight 8] [--count-publishes 1000] [--threads 1] [--json]
// Needs redis-server and redis-cli (scripts/setup.sh test installs them). Everything
// runs on 127.0.0.1; the processes it starts are stopped at the end.
import http from 'node:http';
import os from 'node:os';
import * as H from '../tests/integration/lib/herald.mjs';
import * as C from '../tests/integration/lib/cluster.mjs';

const opt = {
  messages: 1000, rate: 200, subscribers: 100, burst: 2000, inflight: 8, 'count-publishes': 1000, threads: 1, json: false,
};
for (let i = 2; i < process.argv.length; i++) {
  const k = process.argv[i].replace(/^--/, '');
  if (k === 'help' || k === 'h') {
    console.log('usage: node bench/cluster_latency.mjs [--messages N] [--rate R] [--subscribers N] [--burst N] [--inflight N] [--count-publishes N] [--threads N] [--json]');
    process.exit(0);
  }
  if (!(k in opt)) { console.error(`unknown option --${k}`); process.exit(2); }
  if (typeof opt[k] === 'boolean') opt[k] = true;
  else opt[k] = Number(process.argv[++i]);
}

const now = () => performance.timeOrigin + performance.now();  // ms, sub-ms resolution
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** An SSE stream that calls onEvent(parsed) for each data event (full parse). */
function sseParsed(target, channel, since, onEvent) {
  return new Promise((resolve, reject) => {
    const q = `/sse?${H.query(channel)}${since ? `&since=${encodeURIComponent(since)}` : ''}`;
    const req = http.get({ host: H.HOST, port: target.port, path: q, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE ${res.statusCode}`));
      const p = new C.SseParser((b) => { if (b.data !== undefined && b.event === undefined) onEvent(JSON.parse(b.data)); });
      res.setEncoding('utf8').on('data', (d) => p.push(d));
      resolve({ close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

/** An SSE stream that only counts data events (cheap: the client must not be the bottleneck). */
function sseCounter(target, channel, since, want, onDone) {
  return new Promise((resolve, reject) => {
    const q = `/sse?${H.query(channel)}${since ? `&since=${encodeURIComponent(since)}` : ''}`;
    const s = { count: 0, done: false };
    const req = http.get({ host: H.HOST, port: target.port, path: q, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE ${res.statusCode}`));
      let tail = '';
      res.setEncoding('latin1').on('data', (d) => {
        const text = tail + d;
        let i = -1;
        while ((i = text.indexOf('\ndata: ', i + 1)) >= 0) s.count++;
        tail = text.slice(-6);
        if (!s.done && s.count >= want) { s.done = true; onDone(now()); }
      });
      resolve(s);
    });
    s.close = () => req.destroy();
    req.on('error', reject);
  });
}

async function latency(pubNode, subNode, channel) {
  const since = await C.currentCursor(pubNode, channel);
  const lat = [];
  let resolveAll;
  const all = new Promise((r) => { resolveAll = r; });
  const s = await sseParsed(subNode, channel, since, (m) => {
    lat.push(now() - m.data.t);
    if (lat.length >= opt.messages) resolveAll();
  });
  await H.sleep(200);
  const agent = H.keepAliveAgent(1);
  const t0 = now();
  for (let i = 0; i < opt.messages; i++) {
    const due = t0 + i * (1000 / opt.rate);
    const wait = due - now();
    if (wait > 0) await H.sleep(wait);
    await H.publish(pubNode, channel, { i, t: now() }, { agent });
  }
  await H.withTimeout(all, 30000, 'latency: waiting for every message');
  agent.destroy();
  s.close();
  return {
    messages: lat.length,
    median_ms: round(C.percentile(lat, 50)), p90_ms: round(C.percentile(lat, 90)),
    p99_ms: round(C.percentile(lat, 99)), max_ms: round(Math.max(...lat)),
  };
}

async function fanout(pubNode, subNode, channel) {
  const since = await C.currentCursor(pubNode, channel);
  const doneAt = [];
  const subs = [];
  let resolveAll;
  const all = new Promise((r) => { resolveAll = r; });
  for (let i = 0; i < opt.subscribers; i++) {
    subs.push(await sseCounter(subNode, channel, since, opt.burst, (t) => {
      doneAt.push(t);
      if (doneAt.length === opt.subscribers) resolveAll();
    }));
  }
  await H.waitFor(async () => ((await H.metrics(subNode)).get('herald_connections{transport="sse"}') ?? 0) >= opt.subscribers,
    { timeoutMs: 10000, what: 'subscribers connected' });
  const agent = H.keepAliveAgent(opt.inflight);
  const t0 = now();
  let next = 0;
  const worker = async () => {
    while (next < opt.burst) {
      const i = next++;
      await H.publish(pubNode, channel, { i }, { agent });
    }
  };
  await Promise.all(Array.from({ length: opt.inflight }, worker));
  const published = now();
  await H.withTimeout(all, 120000, 'fan-out: waiting for every subscriber');
  const end = Math.max(...doneAt);
  agent.destroy();
  for (const s of subs) s.close();
  const delivered = subs.reduce((a, s) => a + s.count, 0);
  return {
    subscribers: opt.subscribers, burst: opt.burst, delivered,
    publish_per_s: Math.round(opt.burst / ((published - t0) / 1000)),
    delivered_per_s: Math.round(delivered / ((end - t0) / 1000)),
    seconds: round((end - t0) / 1000, 3),
  };
}

async function commandsPerPublish(redis, pubNode, subNodes, channel) {
  const since = await C.currentCursor(pubNode, channel);
  const subs = [];
  for (const n of subNodes) subs.push(await sseParsed(n, channel, since, () => {}));
  await H.sleep(300);
  await C.redisCli(redis.port, ['CONFIG', 'RESETSTAT']);
  const agent = H.keepAliveAgent(1);
  for (let i = 0; i < opt['count-publishes']; i++) await H.publish(pubNode, channel, { i }, { agent });
  agent.destroy();
  const stats = await C.commandStats(redis.port);
  for (const s of subs) s.close();
  for (const k of [...stats.keys()]) if (/^(config|info)\b/.test(k)) stats.delete(k);  // RESETSTAT, INFO themselves
  const n = opt['count-publishes'];
  const per = {};
  let total = 0;
  for (const [k, v] of [...stats].sort((a, b) => b[1] - a[1])) { per[k] = round(v / n, 3); total += v; }
  const evals = (stats.get('evalsha') ?? 0) + (stats.get('eval') ?? 0);
  return { publishes: n, round_trips_per_publish: round(evals / n, 3), commands_per_publish: round(total / n, 3), by_command: per };
}

const procs = [];
async function main() {
  const redis = await C.startRedis();
  procs.push(redis);
  const args = { threads: opt.threads, historySize: 1000, drainSeconds: 1 };
  const n1 = await C.startNode([redis.url], args);
  procs.push(n1);
  const n2 = await C.startNode([redis.url], args);
  procs.push(n2);
  const mem = await C.startNode('memory', args);
  procs.push(mem);
  for (const n of [n1, n2]) await C.waitReady(n);
  const out = {
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    options: opt,
    latency: {
      redis_cross_node: await latency(n1, n2, 'bench:lat'),
      memory_single_node: await latency(mem, mem, 'bench:lat'),
    },
    fanout: {
      redis_cross_node: await fanout(n1, n2, 'bench:fan'),
      memory_single_node: await fanout(mem, mem, 'bench:fan'),
    },
    redis_commands: await commandsPerPublish(redis, n1, [n1, n2], 'bench:cmd'),
  };
  if (opt.json) { console.log(JSON.stringify(out, null, 2)); return; }
  const L = out.latency, F = out.fanout, R = out.redis_commands;
  console.log(`machine: ${out.machine}; herald --threads ${opt.threads} per node; all processes on this machine`);
  console.log(`latency, ${opt.messages} messages at ${opt.rate}/s, publish -> SSE receive:`);
  for (const [k, v] of Object.entries(L)) console.log(`  ${k.padEnd(20)} median ${v.median_ms} ms  p90 ${v.p90_ms} ms  p99 ${v.p99_ms} ms  max ${v.max_ms} ms`);
  console.log(`fan-out, ${opt.subscribers} SSE subscribers, burst of ${opt.burst} (${opt.inflight} publishes in flight):`);
  for (const [k, v] of Object.entries(F)) console.log(`  ${k.padEnd(20)} ${v.delivered_per_s} delivered msgs/s (${v.delivered} in ${v.seconds} s), publishes ${v.publish_per_s}/s`);
  console.log(`Redis commands per publish (${R.publishes} publishes, subscribers on both nodes): ${R.round_trips_per_publish} round trip (EVALSHA), ` +
    `${R.commands_per_publish} commands counted by INFO commandstats: ${Object.entries(R.by_command).map(([k, v]) => `${k} ${v}`).join(', ')}`);
}

try {
  await main();
} finally {
  for (const p of procs.reverse()) await p.stop().catch(() => {});
}
