// The cost of the publish hook per publish: WebSocket clients publish (client publishes
// are the ones a hook is asked about) as fast as herald answers, against herald without
// a hook and with --publish-hook pointing at a local node:http backend that allows
// everything (in a process of its own). Reported per run: publishes/s and herald's CPU
// (user + system, from /proc) per publish; then the medians of the runs, alternated.
//   node bench/hook_cost.mjs [--runs 3] [--publishes 20000] [--clients 8] [--window 8] [--threads 1]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as H from '../tests/integration/lib/herald.mjs';

const require = createRequire(path.join(H.TESTS_DIR, 'package.json'));
const WebSocket = require('ws');

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const RUNS = arg('runs', 3), PUBLISHES = arg('publishes', 20000), CLIENTS = arg('clients', 8);
const WINDOW = arg('window', 8), THREADS = arg('threads', 1);
const TICK_S = 1 / 100;  // USER_HZ

function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_S;  // utime, stime
}

async function startBackend() {
  const code = `const http=require('http');const s=http.createServer((q,r)=>{q.resume();q.on('end',()=>{r.writeHead(200,{'Content-Type':'application/json','Content-Length':14});r.end('{"allow":true}')})});s.keepAliveTimeout=60000;s.listen(0,'127.0.0.1',()=>console.log(s.address().port));`;
  const p = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve) => p.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
  return { port, stop: () => p.kill('SIGTERM') };
}

async function run(h) {
  const socks = await Promise.all(Array.from({ length: CLIENTS }, () => new Promise((resolve, reject) => {
    const s = new WebSocket(`ws://${H.HOST}:${h.port}/ws`);
    s.once('open', () => resolve(s));
    s.once('error', reject);
  })));
  let sent = 0, done = 0, errors = 0;
  const t0 = process.hrtime.bigint();
  const cpu0 = cpuSeconds(h.proc.pid);
  await new Promise((resolve) => {
    for (const [i, s] of socks.entries()) {
      const send = () => {
        if (sent >= PUBLISHES) return;
        sent++;
        s.send(JSON.stringify({ id: sent, method: 'publish', channel: `bench:c${i}`, data: { text: 'hello', n: sent } }));
      };
      s.on('message', (d) => {
        if (!String(d).includes('"offset"') && errors++ === 0) console.error(String(d));
        if (++done === PUBLISHES) resolve();
        send();
      });
      for (let k = 0; k < WINDOW; k++) send();
    }
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds(h.proc.pid) - cpu0;
  for (const s of socks) s.terminate();
  if (errors) throw new Error(`${errors} publishes failed`);
  return { rate: PUBLISHES / secs, cpuUs: (cpu / PUBLISHES) * 1e6 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const backend = await startBackend();
const common = ['--threads', String(THREADS), '--ws-commands-per-second', '0', '--namespace', 'bench:client_publish=true,history_size=10'];
const results = { none: [], hook: [] };
try {
  for (let r = 0; r < RUNS; r++) {
    for (const kind of r % 2 ? ['hook', 'none'] : ['none', 'hook']) {
      const h = await H.startHerald(kind === 'hook' ? [...common, '--publish-hook', `http://127.0.0.1:${backend.port}/publish`] : common);
      try {
        await run(h);  // warm-up: connections, allocations
        const res = await run(h);
        results[kind].push(res);
        console.log(`run ${r + 1} ${kind.padEnd(4)} ${res.rate.toFixed(0).padStart(7)} publishes/s  ${res.cpuUs.toFixed(1).padStart(6)} µs herald CPU per publish`);
      } finally {
        await h.stop();
      }
    }
  }
} finally {
  backend.stop();
}
for (const kind of ['none', 'hook']) {
  const xs = results[kind];
  console.log(`median ${kind.padEnd(4)} ${median(xs.map((x) => x.rate)).toFixed(0).padStart(7)} publishes/s  ${median(xs.map((x) => x.cpuUs)).toFixed(1).padStart(6)} µs herald CPU per publish`);
}
