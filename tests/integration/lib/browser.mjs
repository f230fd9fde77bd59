// Headless Chromium (Debian package `chromium`) driven by playwright-core, for the
// browser tests: one persistent context per suite in a fresh temporary profile, closed
// (and the profile removed) by close(). Also builds the browser client (web/herald.js)
// when it is missing or stale, through scripts/build-web.sh.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { TESTS_DIR } from './herald.mjs';
import { killTree } from './procs.mjs';

export const CHROMIUM = process.env.HERALD_CHROMIUM || '/usr/bin/chromium';
export const REPO_DIR = path.resolve(TESTS_DIR, '../..');
export const WEB_DIR = path.join(REPO_DIR, 'web');
export const ARTIFACTS_DIR = path.join(TESTS_DIR, 'artifacts');

/** Runs scripts/build-web.sh (npm ci if needed, tsc + esbuild when stale, copy into web/). */
export function buildWeb() {
  execFileSync(path.join(REPO_DIR, 'scripts/build-web.sh'), { stdio: ['ignore', 'inherit', 'inherit'], timeout: 300000 });
}

/** Launches Chromium (`args`: extra command-line flags); resolves with { ctx, newPage(), close() }. */
export async function launchBrowser({ args = [] } = {}) {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (scripts/setup.sh test installs the Debian package chromium)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60000,
    viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...args],
  });
  return {
    ctx,
    /** A new page that records uncaught errors in page.errors. */
    async newPage() {
      const page = await ctx.newPage();
      page.errors = [];
      page.on('pageerror', (e) => page.errors.push(e.message));
      return page;
    },
    async close() {
      await ctx.close().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------
// nginx with one of the configurations of tests/integration/browser/ (a child process,
// files in a temporary prefix directory; it and its workers are killed by PID).

const nginxProcs = new Set();
process.on('exit', () => { for (const c of nginxProcs) killTree(c); });

/** Starts nginx with tests/integration/browser/<confName>, proxying to herald at `heraldPort`. */
export async function startNginxConf(confName, heraldPort) {
  const { freePort, HOST } = await import('./herald.mjs');
  const listenPort = await freePort();
  const text = fs.readFileSync(path.join(TESTS_DIR, 'browser', confName), 'utf8')
    .replaceAll('@LISTEN@', `${HOST}:${listenPort}`).replaceAll('@HERALD@', `${HOST}:${heraldPort}`);
  return startNginxText(text, listenPort);
}

/**
 * Starts nginx with the configuration `text` (relative paths under a fresh prefix
 * directory), waits until `listenPort` accepts; `scheme` only names `base`.
 */
export async function startNginxText(text, listenPort, { scheme = 'http' } = {}) {
  const { HOST, sleep } = await import('./herald.mjs');
  const net = await import('node:net');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-nginx-'));
  fs.chmodSync(dir, 0o755);
  fs.mkdirSync(path.join(dir, 'logs'));
  fs.mkdirSync(path.join(dir, 'temp'));
  fs.writeFileSync(path.join(dir, 'nginx.conf'), text);
  const bin = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p)) ?? 'nginx';
  const { spawn } = await import('node:child_process');
  const child = spawn(bin, ['-c', path.join(dir, 'nginx.conf'), '-p', dir, '-e', 'logs/error.log', '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  nginxProcs.add(child);
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
  const exited = new Promise((r) => child.on('close', () => { nginxProcs.delete(child); r(); }));
  const up = () => new Promise((resolve) => {
    const s = net.connect(listenPort, HOST);
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${err}`);
    if (await up()) break;
    if (i > 200) { killTree(child); throw new Error(`nginx not listening: ${err}`); }
    await sleep(25);
  }
  return {
    port: listenPort,
    base: `${scheme}://${HOST}:${listenPort}`,
    dir,
    async stop() { killTree(child); await exited; fs.rmSync(dir, { recursive: true, force: true }); },
  };
}
