// Every integer query parameter (/api/history limit, /poll timeout and limit, /sse limit)
// goes through one parser: ASCII digits only, at most 2^63-1. What /poll refuses,
// /api/history refuses too.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './lib/herald.mjs';

const test = (name, fn) => nodeTest(name, { timeout: 30000 }, fn);

let h;
before(async () => {
  h = await H.startHerald(['--threads', '1']);
  await H.publish(h, 'ints:a', 1);
  await H.publish(h, 'ints:a', 2);
});
after(async () => { await h?.stop(); });

const refused = ['%205', '5%20', '+5', '-5', '-0', '0x5', '5.0', '1e2', '', '99999999999999999999', '9223372036854775808'];

test('/api/history and /poll refuse the same malformed limits', async () => {
  for (const v of refused) {
    const hist = await H.get(h, `/api/history?channel=ints:a&limit=${v}`);
    assert.equal(hist.status, 400, `/api/history limit=${v}: ${hist.status} ${hist.text}`);
    assert.equal(hist.json?.error?.code, 'bad_request');
    const poll = await H.get(h, `/poll?channel=ints:a&timeout=0&limit=${v}`);
    assert.equal(poll.status, 400, `/poll limit=${v}: ${poll.status} ${poll.text}`);
    const timeout = await H.get(h, `/poll?channel=ints:a&timeout=${v}`);
    assert.equal(timeout.status, 400, `/poll timeout=${v}: ${timeout.status} ${timeout.text}`);
  }
});

test('well-formed limits are accepted and capped', async () => {
  const one = await H.get(h, '/api/history?channel=ints:a&limit=1');
  assert.equal(one.status, 200, one.text);
  assert.equal(one.json.messages.length, 1);
  const big = await H.get(h, '/api/history?channel=ints:a&limit=9223372036854775807');
  assert.equal(big.status, 200, big.text);
  assert.equal(big.json.messages.length, 2);
  assert.equal((await H.get(h, '/api/history?channel=ints:a&limit=0')).status, 200);
  assert.equal((await H.get(h, '/api/history?channel=ints:a&limit=007')).status, 200);
  const poll = await H.get(h, '/poll?channel=ints:a&timeout=0&limit=9223372036854775807');
  assert.equal(poll.status, 200, poll.text);
});
