// The herald demo: three panels, each one Herald client pinned to one transport.
import { Herald } from '/herald.js';

const params = new URLSearchParams(location.search);
const room = params.get('room') || 'lobby';
const CH = { chat: `demo:chat-${room}`, notifications: `demo:notifications-${room}`, dashboard: `demo:dashboard-${room}` };
const me = `guest-${Math.floor(Math.random() * 9000 + 1000)}`;

// Publish → receive latency: the server's time in the JSON format; with the raw formats
// (the client's default) messages carry their data only, so the page stamps what it sends.
const latency = (m) => Math.max(0, m.receivedAt - (m.time ?? m.data?.sent ?? m.receivedAt));

function stats(el) {
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

function panel(id, transport, channel, onMessage) {
  const root = document.getElementById(id);
  const stateEl = root.querySelector('.state');
  const st = stats(root.querySelector('.stats'));
  root.querySelector('.stats').textContent = 'waiting for the first message…';
  const client = new Herald({ transports: [transport], backoffBaseMs: 300, backoffMaxMs: 5000 });
  client.on('state', (s) => { stateEl.textContent = s.state; stateEl.className = `state ${s.state}`; root.dataset.state = s.state; });
  client.subscribe(channel, {
    message: (m) => { st.add(m); onMessage(m, root); },
    reset: () => logLine(root, 'history could not cover a gap: some messages were missed', 'reset'),
  });
  client.connect();
  window.herald = window.herald || {};
  window.herald[id] = client;
  return { client, root };
}

function logLine(root, text, cls, meta) {
  const ul = root.querySelector('.log');
  const li = document.createElement('li');
  if (cls) li.className = cls;
  const span = document.createElement('span');
  span.textContent = text;
  li.append(span);
  if (meta) { const m = document.createElement('span'); m.className = 'meta'; m.textContent = meta; li.append(m); }
  ul.append(li);
  while (ul.children.length > 200) ul.firstChild.remove();
  ul.scrollTop = ul.scrollHeight;
}

const meta = (m) => `#${m.offset} · ${m.bytes} B · ${latency(m)} ms`;

// Chat: WebSocket both ways.
const chat = panel('chat', 'websocket', CH.chat, (m, root) => logLine(root, `${m.data.from}: ${m.data.text}`, '', meta(m)));
chat.root.querySelector('form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = e.target.elements.text;
  if (!input.value) return;
  chat.client.publish(CH.chat, { from: me, text: input.value, sent: Date.now() }).catch((err) => logLine(chat.root, `not sent: ${err.message}`, 'reset'));
  input.value = '';
});

// Notifications: SSE down, POST /publish up.
const notes = panel('notifications', 'sse', CH.notifications, (m, root) => logLine(root, `• ${m.data.text}`, '', meta(m)));
notes.root.querySelector('form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = e.target.elements.text;
  if (!input.value) return;
  notes.client.publish(CH.notifications, { text: input.value, sent: Date.now() }, 'notification').catch((err) => logLine(notes.root, `not sent: ${err.message}`, 'reset'));
  input.value = '';
});

// Dashboard: long polling; the page itself feeds sample metrics (POST /publish).
const series = [];
const dash = panel('dashboard', 'poll', CH.dashboard, (m, root) => {
  for (const k of ['rps', 'cpu', 'p99']) root.querySelector(`[data-k=${k}]`).textContent = String(m.data[k]);
  series.push(m.data.rps);
  if (series.length > 60) series.shift();
  const c = root.querySelector('canvas'), g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  g.strokeStyle = '#3b6fd8'; g.lineWidth = 2; g.beginPath();
  series.forEach((v, i) => { const x = (i / 59) * c.width, y = c.height - (v / 2000) * c.height; i ? g.lineTo(x, y) : g.moveTo(x, y); });
  g.stroke();
});
let rps = 1000;
setInterval(() => {
  if (!dash.root.querySelector('input[name=feed]').checked || document.hidden) return;
  rps = Math.max(100, Math.min(1900, rps + Math.round((Math.random() - 0.5) * 200)));
  dash.client.publish(CH.dashboard, { rps, cpu: Math.round(20 + Math.random() * 60), p99: Math.round(5 + Math.random() * 40), sent: Date.now() }).catch(() => {});
}, 1000);
