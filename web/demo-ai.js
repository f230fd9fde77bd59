// The "AI answer" panel: the page asks the demo backend for an answer, which it streams
// into herald token by token (POST /api/stream); client.stream() shows the text as it
// grows. "Drop the connection" cuts the transport as a network would: the client
// reconnects and the text goes on from its cursor, nothing repeated. "Stop" asks herald
// to stop the stream (POST /stop or WebSocket stop): the producer is answered "aborted".
import { Herald } from '/herald.js';
import { backendFetch, showState } from '/demo-ui.js';

export function answerPanel(root) {
  const box = root.querySelector('.answer');
  const statsEl = root.querySelector('.stats');
  const select = root.querySelector('select[name=transport]');
  const dropBtn = root.querySelector('[data-act=drop]');
  const stopBtn = root.querySelector('[data-act=stop]');
  const ui = { client: null, stream: null, drops: 0, dropAt: null, resumes: [] };
  const connect = () => {
    ui.client?.close();
    const t = select.value;
    ui.client = new Herald({ ...(t ? { transports: [t] } : {}), backoffBaseMs: 300, backoffMaxMs: 3000 });
    ui.client.on('state', (s) => showState(root, s));
    ui.client.connect();
  };
  connect();
  select.addEventListener('change', () => { ui.stream?.close(); ui.stream = null; connect(); });

  const render = () => {
    const s = ui.stream;
    box.textContent = '';
    if (!s) return;
    let at = 0;
    // The text, with a mark where each drop happened (the text goes on from there).
    for (const r of ui.resumes) {
      box.append(s.text.slice(at, r));
      const m = document.createElement('span');
      m.className = 'mark';
      m.textContent = ' ⟂ connection dropped here, resumed ';
      box.append(m);
      at = r;
    }
    box.append(s.text.slice(at));
    if (s.end) {
      const e = document.createElement('span');
      e.className = `end ${s.end.state ?? ''}`;
      e.textContent = `— ${s.end.state ?? 'ended'}${s.end.reason ? `: ${s.end.reason}` : ''}`;
      box.append(e);
    } else {
      const c = document.createElement('span');
      c.className = 'cursor';
      box.append(c);
    }
    box.scrollTop = box.scrollHeight;
    statsEl.textContent = `${s.messages} messages · ${s.text.length} characters · via ${ui.client.transport ?? '–'} · ` +
      `${ui.drops} drop${ui.drops === 1 ? '' : 's'} · ${s.end ? s.end.state ?? 'ended' : 'streaming'}`;
    root.dataset.chars = String(s.text.length);
    root.dataset.end = s.end ? s.end.state ?? 'ended' : '';
  };

  root.querySelector('form').addEventListener('submit', async (e) => {
    e.preventDefault();
    ui.stream?.close();
    ui.resumes = []; ui.drops = 0; ui.dropAt = null;
    let channel;
    try {
      ({ channel } = await backendFetch('/ask', { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ question: e.target.elements.q.value }) }));
    } catch (err) {
      statsEl.textContent = `no producer (${err.message}): run node scripts/demo-producer.mjs, or make run`;
      return;
    }
    const s = ui.client.stream(channel, {
      onDelta: (d) => {
        if (ui.dropAt !== null) { ui.resumes.push(ui.dropAt); ui.dropAt = null; }
        void d;
        render();
      },
      onEnd: () => { dropBtn.disabled = true; stopBtn.disabled = true; render(); },
    });
    ui.stream = s;
    root.dataset.channel = channel;
    dropBtn.disabled = false; stopBtn.disabled = false;
    render();
  });
  dropBtn.addEventListener('click', () => {
    if (!ui.stream || ui.stream.end) return;
    ui.drops++;
    ui.dropAt = ui.stream.text.length;
    ui.client.drop();
    render();
  });
  stopBtn.addEventListener('click', () => {
    ui.stream?.stop('stopped from the demo page').catch((err) => { statsEl.textContent = `stop: ${err.message}`; });
  });
  return ui;
}
