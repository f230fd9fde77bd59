// The node `ws` peer for herald-bench: a plain broadcast server, the baseline many teams
// start from. WebSocket clients connect to /sub/<channel>; POST /pub/<channel> sends the
// body to every client of that channel as one text frame. usage: node ws-server.mjs PORT
// (uses the `ws` package installed for the integration tests)
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tests/integration/package.json', import.meta.url));
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 8090);
const channels = new Map();
const server = http.createServer((req, res) => {
  const m = /^\/pub\/(.+)$/.exec(req.url);
  if (req.method !== 'POST' || !m) { res.writeHead(404).end(); return; }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString();
    for (const ws of channels.get(m[1]) || []) ws.send(body);
    res.writeHead(200, { 'Content-Length': 2 }).end('{}');
  });
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
server.on('upgrade', (req, socket, head) => {
  const m = /^\/sub\/(.+)$/.exec(req.url);
  if (!m) return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (!channels.has(m[1])) channels.set(m[1], new Set());
    channels.get(m[1]).add(ws);
    ws.on('close', () => channels.get(m[1]).delete(ws));
  });
});
server.listen(port, '127.0.0.1', () => console.log(`ws-server listening on http://127.0.0.1:${port}`));
