// JSON Web Tokens for the trust tests, with node:crypto only: HS256 / HS512 (HMAC),
// RS256 (RSA PKCS#1 v1.5 with SHA-256, key pair from generateKeyPairSync), unsigned
// (alg none) and hand-made forgeries. Nothing here verifies: herald does.
import crypto from 'node:crypto';

export const b64url = (x) => Buffer.from(typeof x === 'string' || Buffer.isBuffer(x) ? x : JSON.stringify(x)).toString('base64url');

/** Unix seconds now (plus `delta` seconds). */
export const now = (delta = 0) => Math.floor(Date.now() / 1000) + delta;

const HMAC = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

/**
 * A token with the given header fields merged over {alg, typ:'JWT'}, signed for `alg`:
 * HS256/HS384/HS512 with `key` (a secret string or Buffer), RS256 with `key` (a private
 * KeyObject or PEM), 'none' with an empty signature.
 */
export function sign(claims, { alg = 'HS256', key, kid, header = {} } = {}) {
  const h = { alg, typ: 'JWT', ...(kid !== undefined ? { kid } : {}), ...header };
  const signed = `${b64url(h)}.${b64url(claims)}`;
  let sig;
  if (HMAC[alg]) sig = crypto.createHmac(HMAC[alg], key).update(signed).digest('base64url');
  else if (alg === 'RS256') sig = crypto.sign('sha256', Buffer.from(signed), key).toString('base64url');
  else if (alg.toLowerCase() === 'none') sig = '';
  else throw new Error(`jwt.sign: no signer for ${alg}`);
  return `${signed}.${sig}`;
}

export const hs256 = (claims, secret, opts = {}) => sign(claims, { ...opts, alg: 'HS256', key: secret });
export const rs256 = (claims, privateKey, opts = {}) => sign(claims, { ...opts, alg: 'RS256', key: privateKey });

/** An RSA key pair (2048 bits): { privateKey (KeyObject), publicPem (SPKI PEM text) }. */
export function rsaKeyPair(bits = 2048) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: bits });
  return { privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }) };
}

/** A random HS256 secret of `n` printable bytes (safe on a command line). */
export const secret = (n = 48) => crypto.randomBytes(n).toString('base64url').slice(0, n);

/** `token` with the last character of its signature changed (still base64url). */
export function tamperSignature(token) {
  const i = token.lastIndexOf('.');
  const sig = Buffer.from(token.slice(i + 1), 'base64url');
  sig[0] ^= 0x01;
  return `${token.slice(0, i + 1)}${sig.toString('base64url')}`;
}

/** `token` with its claims replaced by `claims`, the original signature kept. */
export function swapClaims(token, claims) {
  const [h, , s] = token.split('.');
  return `${h}.${b64url(claims)}.${s}`;
}

export const bearer = (token) => ({ Authorization: `Bearer ${token}` });
