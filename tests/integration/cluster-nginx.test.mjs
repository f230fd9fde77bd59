// Three herald nodes on one Redis behind nginx, run with the shipped deploy/nginx.conf
// (only its ports replaced): cross-node delivery, round robin without stickiness for SSE
// and long polling, sticky WebSockets, a node killed and a node drained mid-stream,
// Redis restarted. The scenarios are shared with cluster-haproxy.test.mjs
// (lib/cluster.mjs, defineBalancerSuite); the nginx-specific checks are here.
import * as H from './lib/herald.mjs';
import { defineBalancerSuite, assertSseUnbuffered } from './lib/cluster.mjs';

await defineBalancerSuite('nginx', {
  extra(ctx, { test, assert }) {
    test('SSE through nginx is not buffered: each event arrives as it is published', async () => {
      const headers = await assertSseUnbuffered(ctx.c, 'x:nginx:unbuffered');
      assert.equal(headers['x-accel-buffering'], undefined, 'nginx consumes X-Accel-Buffering');
    });

    test('proxy timeouts sit above herald\'s intervals (poll cap 120 s, SSE heartbeat 15 s, WebSocket ping 25 s + 10 s); a held poll comes back with its cursor', async () => {
      // Checked on the rendered configuration rather than by waiting two minutes.
      const { c } = ctx;
      const fs = await import('node:fs');
      const conf = fs.readFileSync(`${c.lb.dir}/nginx.conf`, 'utf8');
      const block = (loc) => {
        const i = conf.indexOf(`location ${loc} {`);
        assert.ok(i >= 0, `location ${loc}`);
        return conf.slice(i, conf.indexOf('}', i));
      };
      const secs = (loc, dir) => Number(new RegExp(`${dir} (\\d+)s;`).exec(block(loc))?.[1]);
      assert.ok(secs('= /poll', 'proxy_read_timeout') > 120, 'poll: read timeout above --poll-timeout-max');
      assert.ok(secs('= /sse', 'proxy_read_timeout') > 15, 'sse: read timeout above --sse-heartbeat');
      assert.ok(secs('= /ws', 'proxy_read_timeout') > 25 + 10, 'ws: read timeout above ping + pong timeout');
      assert.match(block('= /sse'), /proxy_buffering off;/);
      // And a 3 s hold does come back through nginx with the cursor.
      const r = await H.poll(c.lb, 'x:nginx:hold', { timeout: 3 });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.messages, []);
      assert.ok(r.elapsed >= 1800, `held ${r.elapsed} ms`);
    });
  },
});
