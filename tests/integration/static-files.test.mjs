// --web-root: a temporary root with a symlink out of it, one inside it, a dotfile, a
// dot-directory and a name with a space. Files are served at their own (lexical) path,
// percent-decoded; nothing outside the root, no dotfile, and no path that only decodes
// into a traversal is ever served.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as H from './lib/herald.mjs';

const test = (name, fn) => nodeTest(name, { timeout: 30000 }, fn);

let h, dir;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-static-'));
  const root = path.join(dir, 'root');
  fs.mkdirSync(path.join(root, 'sub'), { recursive: true });
  fs.mkdirSync(path.join(root, '.git'));
  fs.writeFileSync(path.join(dir, 'outside.txt'), 'SECRET outside the root');
  fs.writeFileSync(path.join(root, 'index.html'), '<p>index</p>');
  fs.writeFileSync(path.join(root, 'sub', 'page.html'), '<p>sub</p>');
  fs.writeFileSync(path.join(root, 'with space.txt'), 'spaced');
  fs.writeFileSync(path.join(root, '.env'), 'SECRET=dotfile');
  fs.writeFileSync(path.join(root, '.git', 'config'), 'SECRET in a dot-directory');
  fs.symlinkSync(path.join(dir, 'outside.txt'), path.join(root, 'leak.txt'));
  fs.symlinkSync(dir, path.join(root, 'updir'));
  fs.symlinkSync('sub/page.html', path.join(root, 'alias.html'));
  h = await H.startHerald(['--threads', '1', '--web-root', root]);
});
after(async () => {
  await h?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** GET on a raw socket, so that the target reaches herald byte for byte. */
async function rawGet(target) {
  const r = await H.rawExchange(h, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  const resp = H.parseRawResponse(r.data);
  assert.ok(resp, `${target}: no response (${JSON.stringify(r.data.slice(0, 200))})`);
  return resp;
}

test('files are served at their path, / being /index.html', async () => {
  assert.equal((await rawGet('/')).body, '<p>index</p>');
  assert.equal((await rawGet('/sub/page.html')).body, '<p>sub</p>');
});

test('request paths are percent-decoded before the lookup', async () => {
  assert.equal((await rawGet('/%69ndex.html')).body, '<p>index</p>');
  assert.equal((await rawGet('/sub%2Fpage.html')).status, 404, 'an encoded / is not a separator');
  const spaced = await rawGet('/with%20space.txt');
  assert.equal(spaced.status, 200);
  assert.equal(spaced.body, 'spaced');
});

test('a symlink out of the root is not served, under any name', async () => {
  for (const p of ['/leak.txt', '/../outside.txt', '/updir/outside.txt', '/%2E%2E/outside.txt', '/sub/%2e%2e/index.html']) {
    const r = await rawGet(p);
    assert.equal(r.status, 404, `${p}: ${r.status} ${r.body}`);
    assert.doesNotMatch(r.body, /SECRET/);
    assert.equal(r.json?.error?.code, 'not_found');
  }
});

test('a symlink inside the root is served at its own path, with its own type', async () => {
  const r = await rawGet('/alias.html');
  assert.equal(r.status, 200);
  assert.equal(r.body, '<p>sub</p>');
  assert.match(r.headers['content-type'], /^text\/html/);
});

test('dotfiles and dot-directories are not served', async () => {
  for (const p of ['/.env', '/.git/config', '/%2eenv']) {
    const r = await rawGet(p);
    assert.equal(r.status, 404, `${p}: ${r.status} ${r.body}`);
    assert.doesNotMatch(r.body, /SECRET/);
  }
});

test('paths that decode to NUL or a backslash are not found; bad escapes are bad requests', async () => {
  for (const p of ['/index.html%00', '/sub%5Cpage.html', '/sub%5cpage.html']) {
    const r = await rawGet(p);
    assert.equal(r.status, 404, `${p}: ${r.status} ${r.body}`);
  }
  for (const p of ['/index%2', '/%zzindex.html']) {
    const r = await rawGet(p);
    assert.equal(r.status, 400, `${p}: ${r.status} ${r.body}`);
  }
  // Still serving.
  assert.equal((await H.get(h, '/healthz')).status, 200);
});
