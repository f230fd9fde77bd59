// Server memory per idle connection: opens N connections of one transport to a running
// herald, each subscribed to its own channel, and reports the server's RSS delta / N.
// usage: node bench/idle_rss.mjs PID PORT ws|sse|poll N [own|one]  (a channel per connection, or one for all)
// (needs the `ws` package: run from tests/integration or with NODE_PATH set to it.)
// Superseded for benchmarks by herald-bench's idle scenario; kept as a quick check.
import fs from 'node:fs';
import net from 'node:net';

const [pid, port, transport, nArg] = process.argv.slice(2);
const n = Number(nArg || 10000);
const oneChannel = process.argv[6] === 'one';
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function open(i) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: Number(port) }, () => {
      const ch = oneChannel ? 'idle' : `idle:${i}`;
      if (transport === 'ws') {
        s.write(`GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
                `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
        const payload = Buffer.from(JSON.stringify({ id: 1, method: 'subscribe', channel: ch }));
        const frame = Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
        s.write(frame);  // zero mask key: payload unchanged
      } else if (transport === 'sse') {
        s.write(`GET /sse?channel=${ch} HTTP/1.1\r\nHost: x\r\n\r\n`);
      } else {
        s.write(`GET /poll?channel=${ch}&timeout=120 HTTP/1.1\r\nHost: x\r\n\r\n`);
      }
      resolve(s);
    });
    s.on('error', reject);
    s.on('data', () => {});
  });
}

const before = rss();
const socks = [];
for (let i = 0; i < n; i += 200) {
  const batch = [];
  for (let k = i; k < Math.min(n, i + 200); ++k) batch.push(open(k));
  socks.push(...(await Promise.all(batch)));
}
await sleep(2000);
const after = rss();
console.log(JSON.stringify({ transport, channels: oneChannel ? 1 : n, connections: n, rss_before: before, rss_after: after,
  bytes_per_connection: Math.round((after - before) / n) }));
for (const s of socks) s.destroy();
process.exit(0);
