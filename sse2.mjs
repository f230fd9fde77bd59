import net from 'node:net';
for (const q of ['channel=c', 'channel=c&channel=d', 'channel=a&channel=d']) {
await new Promise((res) => { const s = net.connect(18556, '127.0.0.1'); let d=''; s.on('connect', () => s.write(`GET /sse?${q} HTTP/1.1\r\nHost: x\r\n\r\n`)); s.on('data', (c) => d += c); s.on('error', (e) => console.log(q, 'error', e.code)); s.on('close', () => { console.log(q, JSON.stringify(d.slice(0,200))); res(); }); setTimeout(()=>s.destroy(), 3000); });
}
