// The chat panel: messages, who is online (presence, kept current by join and leave) and
// who is typing (ephemeral publishes: live only, never in history, no cursor moved), on
// the transport chosen in the panel. With the demo backend the page gets a token whose
// `sub` is its guest name, so presence can name it; without one it is anonymous
// (counted, not named).
import { Herald } from '/herald.js';
import { demoToken, logLine, meta, showState, stats } from '/demo-ui.js';

export function chatPanel(root, channel, me) {
  const select = root.querySelector('select[name=transport]');
  const onlineEl = root.querySelector('.online');
  const typingEl = root.querySelector('.typing');
  const input = root.querySelector('input[name=text]');
  const st = stats(root.querySelector('.stats'));
  root.querySelector('.stats').textContent = 'waiting for the first message…';
  const typing = new Map();  // user → last typing signal (ms)
  const ui = { client: null, tracker: null, presence: 'off' };

  const renderOnline = () => {
    const t = ui.tracker;
    onlineEl.textContent = '';
    if (!t || ui.presence !== 'on') { onlineEl.textContent = `online: ${ui.presence === 'off' ? 'presence is off (namespace option presence=true)' : '…'}`; return; }
    onlineEl.append('online: ');
    const names = t.list().map((m) => m.user);
    names.forEach((n, i) => { const b = document.createElement('b'); b.textContent = n === me ? `${n} (you)` : n; onlineEl.append(b); if (i < names.length - 1) onlineEl.append(', '); });
    if (t.anonymous) onlineEl.append(`${names.length ? ' + ' : ''}${t.anonymous} anonymous`);
    root.dataset.online = names.join(',');
  };
  const renderTyping = () => {
    const now = Date.now();
    for (const [u, at] of typing) if (now - at > 3000) typing.delete(u);
    const who = [...typing.keys()];
    typingEl.textContent = who.length ? `${who.join(', ')} ${who.length > 1 ? 'are' : 'is'} typing…` : '';
    root.dataset.typing = who.join(',');
  };
  setInterval(renderTyping, 500);

  const start = async () => {
    ui.tracker?.close();
    ui.client?.close();
    const token = await demoToken(me);
    const client = new Herald({ transports: [select.value], backoffBaseMs: 300, backoffMaxMs: 5000, ...(token ? { token } : {}) });
    ui.client = client;
    client.on('state', (s) => showState(root, s));
    client.subscribe(channel, {
      message: (m) => { st.add(m); typing.delete(m.data.from); renderTyping(); logLine(root, `${m.data.from}: ${m.data.text}`, '', meta(m)); },
      signal: (s) => { if (s.event === 'typing' && s.data?.from && s.data.from !== me) { typing.set(s.data.from, Date.now()); renderTyping(); } },
      join: (e) => logLine(root, `${e.user} joined`, 'presence'),
      leave: (e) => { typing.delete(e.user); logLine(root, `${e.user} left`, 'presence'); },
    });
    const tracker = client.watchPresence(channel);
    ui.tracker = tracker;
    tracker.on('change', () => { ui.presence = 'on'; renderOnline(); });
    tracker.on('error', (e) => { ui.presence = e.code === 'presence_disabled' || e.status === 403 ? 'off' : 'error'; renderOnline(); });
    renderOnline();
    client.connect();
  };
  select.addEventListener('change', () => { void start(); });
  void start();

  let lastTyping = 0;
  input.addEventListener('input', () => {
    if (!input.value || Date.now() - lastTyping < 2000 || !ui.client) return;
    lastTyping = Date.now();
    ui.client.publish(channel, { from: me }, { event: 'typing', ephemeral: true }).catch(() => {});
  });
  root.querySelector('form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (!input.value) return;
    ui.client.publish(channel, { from: me, text: input.value, sent: Date.now() }).catch((err) => logLine(root, `not sent: ${err.message}`, 'reset'));
    input.value = '';
    lastTyping = 0;
  });
  return ui;
}
