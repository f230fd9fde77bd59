#include "api/demo_page.hpp"

namespace herald::api {

std::string_view demo_page_html() noexcept {
  return R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>herald demo</title>
<style>
 body { font: 15px/1.4 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
 input, button { font: inherit; padding: .3rem .5rem; }
 #log { border: 1px solid #ccc; height: 22rem; overflow: auto; padding: .5rem; font-family: monospace; font-size: 13px; }
 .reset { color: #b00; } .state { color: #777; }
</style>
</head>
<body>
<h1>herald</h1>
<p>Subscribe to a channel over Server-Sent Events, publish to it through <code>POST /api/publish</code>.
Reload the page or drop the connection: it resumes from its cursor without losing a message.</p>
<p><label>Channel <input id="channel" value="demo:lobby"></label>
<button id="connect">Subscribe</button></p>
<p><input id="text" size="40" placeholder="message" value="hello"> <button id="send">Publish</button></p>
<div id="log"></div>
<script>
const $ = (id) => document.getElementById(id);
let es = null;
function log(text, cls) {
  const line = document.createElement('div');
  if (cls) line.className = cls;
  line.textContent = text;
  $('log').appendChild(line);
  $('log').scrollTop = $('log').scrollHeight;
}
function connect() {
  if (es) es.close();
  const channel = $('channel').value;
  const key = 'herald-cursor:' + channel;
  const since = localStorage.getItem(key);
  const url = '/sse?channel=' + encodeURIComponent(channel) + (since ? '&since=' + since : '');
  es = new EventSource(url);
  es.onopen = () => log('connected' + (since ? ' (resuming)' : ''), 'state');
  es.onerror = () => log('connection lost, the browser retries', 'state');
  es.onmessage = (e) => {
    localStorage.setItem(key, e.lastEventId);
    const m = JSON.parse(e.data);
    log('#' + m.offset + ' ' + JSON.stringify(m.data));
  };
  es.addEventListener('reset', (e) => {
    localStorage.setItem(key, e.lastEventId);
    log('history could not cover the gap: some messages were missed', 'reset');
  });
}
$('connect').onclick = connect;
$('send').onclick = async () => {
  const r = await fetch('/api/publish', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ channel: $('channel').value, data: { text: $('text').value } }) });
  if (!r.ok) log('publish failed: ' + (await r.text()), 'reset');
};
connect();
</script>
</body>
</html>
)HTML";
}

}  // namespace herald::api
