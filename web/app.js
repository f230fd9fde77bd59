// The herald demo: an AI answer streamed token by token (demo-ai.js), a chat with
// presence and typing (demo-chat.js), notifications over SSE and a dashboard over long
// polling (each one Herald client pinned to one transport).
import { Herald } from '/herald.js';
import { params, stats, logLine, meta, showState } from '/demo-ui.js';
import { answerPanel } from '/demo-ai.js';
import { chatPanel } from '/demo-chat.js';

const room = params.get('room') || 'lobby';
const CH = { chat: `demo:chat-${room}`, notifications: `demo:notifications-${room}`, dashboard: `demo:dashboard-${room}` };
const me = params.get('name') || `guest-${Math.floor(Math.random() * 9000 + 1000)}`;

function panel(id, transport, channel, onMessage) {
  const root = document.getElementById(id);
  const st = stats(root.querySelector('.stats'));
  root.querySelector('.stats').textContent = 'waiting for the first message…';
  const client = new Herald({ transports: [transport], backoffBaseMs: 300, backoffMaxMs: 5000 });
  client.on('state', (s) => showState(root, s));
  client.subscribe(channel, {
    message: (m) => { st.add(m); onMessage(m, root); },
    reset: () => logLine(root, 'history could not cover a gap: some messages were missed', 'reset'),
  });
  client.connect();
  return { client, root };
}

window.demo = {
  me,
  answer: answerPanel(document.getElementById('answer')),
  chat: chatPanel(document.getElementById('chat'), CH.chat, me),
};

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
