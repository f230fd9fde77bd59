// Helpers shared by the demo's panels.

export const params = new URLSearchParams(location.search);

// Publish → receive latency: the server's time in the JSON format; with the raw formats
// (the client's default) messages carry their data only, so the page stamps what it sends.
export const latency = (m) => Math.max(0, m.receivedAt - (m.time ?? m.data?.sent ?? m.receivedAt));
export const meta = (m) => `#${m.offset} · ${m.bytes} B · ${latency(m)} ms`;

export function stats(el) {
  const s = { n: 0, bytes: [], lat: [] };
  return {
    add(m) {
      s.n++;
      s.bytes.push(m.bytes); s.lat.push(latency(m));
      if (s.bytes.length > 100) { s.bytes.shift(); s.lat.shift(); }
      const avg = (a) => a.reduce((x, y) => x + y, 0) / a.length;
      const sorted = [...s.lat].sort((a, b) => a - b);
      const p = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
      el.textContent = `messages ${s.n} · last ${m.bytes} B, avg ${avg(s.bytes).toFixed(0)} B/msg on the wire · ` +
        `latency last ${latency(m)} ms, p50 ${p(0.5)} ms, p95 ${p(0.95)} ms`;
      el.dataset.count = String(s.n);
    },
  };
}

export function logLine(root, text, cls, metaText) {
  const ul = root.querySelector('.log');
  const li = document.createElement('li');
  if (cls) li.className = cls;
  const span = document.createElement('span');
  span.textContent = text;
  li.append(span);
  if (metaText) { const m = document.createElement('span'); m.className = 'meta'; m.textContent = metaText; li.append(m); }
  ul.append(li);
  while (ul.children.length > 200) ul.firstChild.remove();
  ul.scrollTop = ul.scrollHeight;
}

export function showState(root, s) {
  const el = root.querySelector('.state');
  el.textContent = s.transport && s.state !== 'closed' ? `${s.state} · ${s.transport}` : s.state;
  el.className = `state ${s.state}`;
  root.dataset.state = s.state;
  root.dataset.transport = s.transport ?? '';
}

// The demo's backend (scripts/demo-producer.mjs): ?backend=URL, else port 8081 of this host.
export const backend = params.get('backend') || `${location.protocol}//${location.hostname}:8081`;

export async function backendFetch(path, init = {}) {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), 2000);
  try {
    const res = await fetch(backend + path, { ...init, signal: ctl.signal });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return await res.json();
  } finally {
    clearTimeout(t);
  }
}

let tokenPromise = null;
/** A connection token for `user` from the backend, or null (no backend, or one without tokens: anonymous). */
export function demoToken(user) {
  tokenPromise ??= backendFetch(`/token?user=${encodeURIComponent(user)}`).then((r) => r.token, () => null);
  return tokenPromise;
}
