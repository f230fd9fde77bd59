// The GRIP origin behind the Pushpin peer of herald-bench (node, no packages). Every
// request for /sub/<channel> is answered with a hold instruction on that channel; the
// messages themselves are published to Pushpin's HTTP endpoint (/publish/), not here.
//   SSE (Accept: text/event-stream)  Grip-Hold: stream
//   WebSocket (WebSocket-over-HTTP)  OPEN, then a "c:" control message subscribing the connection
//   anything else: a long poll       Grip-Hold: response, a 60 s timeout answered with {}
// usage: node pushpin-origin.mjs PORT
import http from 'node:http';

const port = Number(process.argv[2] || 8091);

function wsEvents(body) {
  // Content-Type: application/websocket-events: "TYPE[ hexlen]\r\n[payload\r\n]"...
  const events = [];
  let p = 0;
  while (p < body.length) {
    const eol = body.indexOf('\r\n', p);
    if (eol < 0) break;
    const [type, hex] = body.slice(p, eol).split(' ');
    p = eol + 2;
    let payload = '';
    if (hex !== undefined) {
      const n = parseInt(hex, 16);
      payload = body.slice(p, p + n);
      p += n + 2;
    }
    events.push({ type, payload });
  }
  return events;
}

function text(s) { return `TEXT ${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`; }

const server = http.createServer((req, res) => {
  const m = /^\/sub\/([\w:.-]+)/.exec(req.url);
  if (!m) { res.writeHead(404).end(); return; }
  const channel = m[1];
  if ((req.headers['content-type'] || '').startsWith('application/websocket-events')) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let out = '';
      for (const e of wsEvents(Buffer.concat(chunks).toString('latin1'))) {
        if (e.type === 'OPEN') out += 'OPEN\r\n' + text('c:' + JSON.stringify({ type: 'subscribe', channel }));
        else if (e.type === 'CLOSE') out += 'CLOSE\r\n';
      }
      res.writeHead(200, { 'Content-Type': 'application/websocket-events', 'Sec-WebSocket-Extensions': 'grip' });
      res.end(out);
    });
    return;
  }
  req.resume();
  if ((req.headers.accept || '').includes('text/event-stream')) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Grip-Hold': 'stream', 'Grip-Channel': channel });
    res.end(':\n\n');
    return;
  }
  res.writeHead(200, {
    'Content-Type': 'application/json', 'Grip-Hold': 'response', 'Grip-Channel': channel, 'Grip-Timeout': '60',
  });
  res.end('{}');
});
server.keepAliveTimeout = 120000;
// A deep accept queue: a thousand subscribers arrive at once through zurl, and node's
// default backlog (511) answers some of them with a refusal that Pushpin turns into 502.
server.listen(port, '127.0.0.1', 4096, () => console.log(`pushpin-origin listening on http://127.0.0.1:${port}`));
