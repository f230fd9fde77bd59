// TLS helpers for the tests: self-signed certificates made by `openssl req -x509`, and
// the shipped deploy/nginx-tls.conf rendered for a test (ports, node addresses and
// certificate paths replaced) and started.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, HOST, TESTS_DIR } from './herald.mjs';
import { startNginxText } from './browser.mjs';

export const DEPLOY_DIR = path.resolve(TESTS_DIR, '../../deploy');

/** A self-signed certificate for 127.0.0.1 and localhost in `dir`; returns { cert, key, certFile, keyFile }. */
export function makeCert(dir, cn) {
  const certFile = path.join(dir, `${cn}.crt`), keyFile = path.join(dir, `${cn}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '2', '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
  { stdio: 'ignore', timeout: 30000 });
  return { cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8'), certFile, keyFile };
}

/** Replaces `from` in `text`, which must occur exactly `count` times outside comments. */
function replaceExact(text, from, to, count) {
  const n = text.split('\n').filter((l) => !l.trim().startsWith('#') && l.includes(from)).length;
  if (n !== count) throw new Error(`deploy/nginx-tls.conf: expected ${from} on ${count} lines, found ${n}`);
  return text.split('\n').map((l) => (l.trim().startsWith('#') ? l : l.split(from).join(to))).join('\n');
}

/**
 * deploy/nginx-tls.conf with its two listening ports, its three node addresses (all set
 * to `heraldPorts`, cycled) and its certificate paths replaced.
 */
export function renderNginxTls({ tlsPort, httpPort, heraldPorts, certFile, keyFile }) {
  let text = fs.readFileSync(path.join(DEPLOY_DIR, 'nginx-tls.conf'), 'utf8');
  text = replaceExact(text, 'listen 443 ssl http2;', `listen ${HOST}:${tlsPort} ssl http2;`, 1);
  text = replaceExact(text, 'listen 80;', `listen ${HOST}:${httpPort};`, 1);
  text = replaceExact(text, '/etc/herald/tls/fullchain.pem', certFile, 1);
  text = replaceExact(text, '/etc/herald/tls/privkey.pem', keyFile, 1);
  ['127.0.0.1:8081', '127.0.0.1:8082', '127.0.0.1:8083'].forEach((ph, i) => {
    text = replaceExact(text, ph, `${HOST}:${heraldPorts[i % heraldPorts.length]}`, 2);
  });
  return text;
}

/** nginx with deploy/nginx-tls.conf in front of herald; `base` is https://, `httpBase` the redirecting port. */
export async function startNginxTls(heraldPorts, { certFile, keyFile }) {
  const tlsPort = await freePort(), httpPort = await freePort();
  const text = renderNginxTls({ tlsPort, httpPort, heraldPorts, certFile, keyFile });
  const n = await startNginxText(text, tlsPort, { scheme: 'https' });
  n.httpPort = httpPort;
  n.httpBase = `http://${HOST}:${httpPort}`;
  n.text = text;
  return n;
}
