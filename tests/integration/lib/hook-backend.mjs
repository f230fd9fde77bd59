// A backend for herald's hooks, written for the tests (node:http): it answers each hook
// call from what it is asked about, so one backend serves every case at once.
//   user or channel containing  -> answer
//   "deny"                      -> {"allow":false,"code":4444,"message":"no entry for <x>"}
//   "slow"                      -> the answer only after `slowMs` (past herald's timeout)
//   "bad"                       -> a body that is not JSON
//   "huge"                      -> a 100 KiB JSON body (past herald's 64 KiB bound)
//   "http500"                   -> HTTP 500
//   "rewrite" (publish)         -> {"allow":true,"data":{"moderated":<the data>}}
//   anything else               -> {"allow":true}
// Every call is recorded in `calls` (the parsed JSON bodies).
import http from 'node:http';

export async function startHookBackend({ slowMs = 3000, allowAll = false, keepAliveMs } = {}) {
  const calls = [];
  const timers = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { body = { unparsable: true }; }
      if (!allowAll) calls.push({ path: req.url, body });
      const send = (status, text) => {
        res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
      };
      if (allowAll) return send(200, '{"allow":true}');
      const subject = `${body.user ?? ''} ${body.channel ?? ''}`;
      if (subject.includes('deny')) return send(200, JSON.stringify({ allow: false, code: 4444, message: `no entry for ${subject.trim()}` }));
      if (subject.includes('slow')) {
        const t = setTimeout(() => { timers.delete(t); if (!res.destroyed) send(200, '{"allow":true}'); }, slowMs);
        timers.add(t);
        return;
      }
      if (subject.includes('bad')) return send(200, '{"allow": tru');
      if (subject.includes('huge')) return send(200, JSON.stringify({ allow: true, pad: 'x'.repeat(100 * 1024) }));
      if (subject.includes('http500')) return send(500, '{"error":"boom"}');
      if (body.hook === 'publish' && subject.includes('rewrite'))
        return send(200, `{"allow":true,"data":{"moderated":${JSON.stringify(body.data)},"n":1.50}}`);
      send(200, '{"allow":true}');
    });
  });
  if (keepAliveMs !== undefined) server.keepAliveTimeout = keepAliveMs;
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    port,
    url: (path = '/hook') => `http://127.0.0.1:${port}${path}`,
    calls,
    connections: () => connections,
    async stop() {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
