// Three herald nodes on one Redis behind HAProxy, run with the shipped deploy/haproxy.cfg
// (only its ports replaced): cross-node delivery, round robin without stickiness for SSE
// and long polling, sticky WebSockets (inserted cookie), a node killed and a node drained
// mid-stream, Redis restarted. The scenarios are shared with cluster-nginx.test.mjs
// (lib/cluster.mjs, defineBalancerSuite); the HAProxy-specific checks are here.
import * as H from './lib/herald.mjs';
import { defineBalancerSuite, assertSseUnbuffered, nodeMetric } from './lib/cluster.mjs';

await defineBalancerSuite('haproxy', {
  extra(ctx, { test, assert }) {
    test('SSE through HAProxy streams each event as it is published; /readyz checks reach every node', async () => {
      const { c } = ctx;
      await assertSseUnbuffered(c, 'x:haproxy:unbuffered');
      // The health checks (GET /readyz every second, two backends) show up as requests on every node.
      const before = await nodeMetric(c.nodes, 'herald_http_requests_total');
      await H.sleep(2500);
      const after = await nodeMetric(c.nodes, 'herald_http_requests_total');
      for (let i = 0; i < 3; i++) assert.ok(after[i] - before[i] >= 3, `node ${i}: ${after[i] - before[i]} requests in 2.5 s`);
    });

    test('proxy timeouts sit above herald\'s intervals (poll cap 120 s, SSE heartbeat 15 s, WebSocket ping 25 s + 10 s); a held poll comes back with its cursor', async () => {
      const { c } = ctx;
      const fs = await import('node:fs');
      const conf = fs.readFileSync(`${c.lb.dir}/haproxy.cfg`, 'utf8');
      const secs = (name) => Number(new RegExp(`^\\s*timeout ${name} (\\d+)s$`, 'm').exec(conf)?.[1]);
      assert.ok(secs('server') > 120 && secs('client') > 120, 'client/server above --poll-timeout-max');
      assert.ok(secs('tunnel') > 25 + 10, 'tunnel above ping + pong timeout');
      assert.match(conf, /option httpchk GET \/readyz/);
      const r = await H.poll(c.lb, 'x:haproxy:hold', { timeout: 3 });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.messages, []);
      assert.ok(r.elapsed >= 1800, `held ${r.elapsed} ms`);
    });
  },
});
