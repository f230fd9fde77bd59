// /metrics after known traffic on a fresh server: counters and gauges with exact values
// where the traffic determines them.
import { test as nodeTest, before, after } from 'node:test';

// Every test is bounded in time (on top of the bounded waits inside).
const test = (name, fn) => nodeTest(name, { timeout: 30000 }, fn);
import assert from 'node:assert/strict';
import * as H from './lib/herald.mjs';

let h;
before(async () => { h = await H.startHerald(['--threads', '2', '--history-size', '10']); });
after(async () => { await h?.stop(); });

test('Prometheus text format with HELP/TYPE lines', async () => {
  const r = await H.get(h, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/plain/);
  for (const name of ['herald_publishes_total', 'herald_deliveries_total', 'herald_slow_disconnects_total',
    'herald_connections', 'herald_resets_total', 'herald_history_messages']) {
    assert.match(r.text, new RegExp(`^# TYPE ${name} (counter|gauge)$`, 'm'), `TYPE of ${name}`);
    assert.match(r.text, new RegExp(`^# HELP ${name} .+$`, 'm'), `HELP of ${name}`);
  }
  for (const line of r.text.split('\n').filter((l) => l && !l.startsWith('#')))
    assert.match(line, /^[a-z][a-z0-9_]*(\{[a-z_]+="[a-z0-9_]+"(,[a-z_]+="[a-z0-9_]+")*\})? -?\d+(\.\d+)?(e[+-]?\d+)?$/, `sample line: ${line}`);
  const c = await H.curlHttp(h, 'GET', '/metrics');
  assert.equal(c.status, 200);
  assert.match(c.body, /^herald_publishes_total \d+$/m);
});

test('counters and gauges follow the traffic exactly', async () => {
  const m0 = await H.metrics(h);
  assert.equal(m0.get('herald_publishes_total'), 0, 'fresh server');
  for (const t of ['sse', 'poll', 'ws']) assert.equal(m0.get(`herald_deliveries_total{transport="${t}"}`), 0);
  assert.equal(m0.get('herald_slow_disconnects_total'), 0);
  assert.equal(m0.get('herald_resets_total'), 0);
  assert.equal(m0.get('herald_history_messages'), 0);

  // Two SSE subscribers on m:a, one on m:a+m:b; the gauge counts them while connected.
  const s1 = await H.openSynced(h, { channels: 'm:a' });
  const s2 = await H.openSynced(h, { channels: 'm:a' });
  const s3 = await H.openSynced(h, { channels: ['m:a', 'm:b'] });
  const m1 = await H.metrics(h);
  assert.equal(m1.get('herald_connections{transport="sse"}'), 3);
  // Readiness, drain and the process's descriptors: three SSE streams hold three more.
  assert.equal(m1.get('herald_ready'), 1);
  assert.equal(m1.get('herald_draining'), 0);
  assert.ok(m1.get('process_open_fds') >= m0.get('process_open_fds') + 3, `open fds ${m0.get('process_open_fds')} -> ${m1.get('process_open_fds')}`);
  assert.ok(m1.get('process_open_fds') < m1.get('process_max_fds'));
  assert.ok(m1.get('process_resident_memory_bytes') > 1e6);
  // A held poll is counted while it waits.
  const held = H.poll(h, 'm:b', { timeout: 20 });
  await H.waitFor(async () => (await H.metrics(h)).get('herald_connections{transport="poll"}') === 1, { what: 'poll gauge 1' });

  // 7 publications on m:a, 3 on m:b (one of them wakes the poll), 2 refused.
  for (let i = 0; i < 7; i++) await H.publish(h, 'm:a', i);
  for (let i = 0; i < 3; i++) await H.publish(h, 'm:b', i);
  assert.equal((await H.request(h, 'POST', '/api/publish', { body: '{' })).status, 400);
  assert.equal((await H.request(h, 'POST', '/api/publish', { body: { channel: 'bad name', data: 1 } })).status, 400);
  const polled = await held;
  const pollDeliveries = polled.json.messages.length;
  assert.ok(pollDeliveries >= 1 && pollDeliveries <= 3);
  await s1.reader.events(7);
  await s2.reader.events(7);
  await s3.reader.events(10);
  // Plus one poll that picks up the 3 messages of m:b from history.
  const first = (await H.history(h, 'm:b', {})).json.messages[0];
  const replayCursor = H.encodeCursor([{ tag: H.channelTag('m:b'), epoch: H.decodeCursor(polled.json.cursor)[0].epoch, offset: first.offset - 1 }]);
  const p2 = await H.poll(h, 'm:b', { since: replayCursor, timeout: 0 });
  assert.equal(p2.json.messages.length, 3);

  const m2 = await H.metrics(h);
  assert.equal(m2.get('herald_publishes_total'), 10, 'accepted publications');
  assert.equal(m2.get('herald_publish_errors_total'), 2, 'refused publications');
  assert.equal(m2.get('herald_deliveries_total{transport="sse"}'), 7 + 7 + 10, 'one per message per SSE subscriber');
  assert.equal(m2.get('herald_deliveries_total{transport="poll"}'), pollDeliveries + 3);
  assert.equal(m2.get('herald_deliveries_total{transport="ws"}'), 0);
  assert.equal(m2.get('herald_connections{transport="poll"}'), 0, 'the poll answered');
  assert.equal(m2.get('herald_connections{transport="sse"}'), 3);
  assert.equal(m2.get('herald_history_messages'), 10);
  assert.ok(m2.get('herald_channels') >= 2);
  assert.ok(m2.get('herald_bytes_out_total') > m1.get('herald_bytes_out_total'));
  assert.ok(m2.get('herald_http_requests_total') > m1.get('herald_http_requests_total'));
  assert.equal(m2.get('herald_http_responses_total{class="4xx"}') - m1.get('herald_http_responses_total{class="4xx"}'), 2);

  // A reset is counted; history-size 10 evicts offsets 1..2 after 12 messages.
  for (let i = 7; i < 12; i++) await H.publish(h, 'm:a', i);
  const stale = H.encodeCursor([{ tag: H.channelTag('m:a'), epoch: H.decodeCursor(s1.reader.lastId)[0].epoch, offset: 0 }]);
  const rs = await H.poll(h, 'm:a', { since: stale, timeout: 0 });
  assert.equal(rs.json.recovered, false);

  // Closing the streams brings the gauge back to 0.
  for (const s of [s1, s2, s3]) s.reader.close();
  await H.waitFor(async () => (await H.metrics(h)).get('herald_connections{transport="sse"}') === 0, { what: 'sse gauge back to 0' });
  const m3 = await H.metrics(h);
  assert.equal(m3.get('herald_publishes_total'), 15);
  assert.equal(m3.get('herald_resets_total'), 1);
  assert.equal(m3.get('herald_history_messages'), 13, 'm:a keeps 10, m:b 3');
  assert.equal(m3.get('herald_slow_disconnects_total'), 0);
});
