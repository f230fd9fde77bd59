#!/usr/bin/env python3
"""Bytes on the wire per delivered message, herald (JSON and raw formats) beside Nchan.

Starts herald (and nginx with libnginx-mod-nchan when it is installed: scripts/setup.sh
bench) on loopback ports, subscribes over each transport with a plain socket, publishes
one message whose data is 100 bytes of JSON (a string of 98 characters), and counts what
the server wrote for it: the WebSocket frame, the SSE event, the long-poll reply (head
and body). TCP/IP headers are not counted. Only the processes started here are stopped.

    bench/wire_bytes.py [--herald build/src/herald]
"""
import argparse
import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time

DATA = '"' + 'x' * 98 + '"'
HOST = '127.0.0.1'


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def read_for(s, seconds):
    s.settimeout(seconds)
    out = b''
    end = time.time() + seconds
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        out += d
    return out


def http(port, method, path, body=b''):
    s = socket.create_connection((HOST, port))
    s.sendall(b'%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n' %
              (method.encode(), path.encode(), HOST.encode(), len(body)) + body)
    r = read_for(s, 0.5)
    s.close()
    return r


def measure(port, publish, sse_path, poll_path, ws_path=None, ws_subscribe=None):
    """Bytes written for one published message on each transport (None: not offered)."""
    out = {}
    # SSE: what arrives after the stream's start.
    s = socket.create_connection((HOST, port))
    s.sendall(b'GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n' % (sse_path.encode(), HOST.encode()))
    read_for(s, 0.4)
    publish()
    out['sse'] = len(read_for(s, 0.4))
    s.close()
    # Long polling: a held poll answered by the publication (head and body).
    s = socket.create_connection((HOST, port))
    s.sendall(b'GET %s HTTP/1.1\r\nHost: %s\r\n\r\n' % (poll_path.encode(), HOST.encode()))
    time.sleep(0.3)
    publish()
    out['poll'] = len(read_for(s, 0.5))
    s.close()
    if ws_path:
        s = socket.create_connection((HOST, port))
        key = base64.b64encode(os.urandom(16))
        s.sendall(b'GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                  b'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n' % (ws_path.encode(), HOST.encode(), key))
        read_for(s, 0.3)
        if ws_subscribe:
            cmd = ws_subscribe.encode()
            mask = os.urandom(4)
            s.sendall(bytes([0x81, 0x80 | len(cmd)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(cmd)))
            read_for(s, 0.3)
        # The second message: the first may bring a one-time channel frame (raw format).
        publish()
        read_for(s, 0.3)
        publish()
        out['ws'] = len(read_for(s, 0.4))
        s.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--herald', default='build/src/herald')
    args = ap.parse_args()
    rows = []
    port = free_port()
    h = subprocess.Popen([args.herald, '--listen', f'{HOST}:{port}'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        body = ('{"channel":"news","data":%s}' % DATA).encode()
        pub = lambda: http(port, 'POST', '/api/publish', body)
        pub()  # the channel exists: offsets 2.. below
        for fmt in ('json', 'raw'):
            q = '' if fmt == 'json' else '&format=raw'
            sub = '{"id":1,"method":"subscribe","channel":"news"%s}' % ('' if fmt == 'json' else ',"format":"raw"')
            rows.append((f'herald {fmt}', measure(port, pub, f'/sse?channel=news{q}', f'/poll?channel=news{q}', '/ws', sub)))
    finally:
        h.terminate()
        h.wait()
    module = '/usr/lib/nginx/modules/ngx_nchan_module.so'
    if shutil.which('nginx') and os.path.exists(module):
        prefix = tempfile.mkdtemp(prefix='wire-bytes-nchan-')
        nport = free_port()
        conf = open(os.path.join(os.path.dirname(__file__), 'peers', 'nchan.conf')).read()
        conf = conf.replace('@PORT@', str(nport)).replace('@PREFIX@', prefix)
        with open(os.path.join(prefix, 'nginx.conf'), 'w') as f:
            f.write(conf)
        n = subprocess.Popen(['nginx', '-c', os.path.join(prefix, 'nginx.conf'), '-p', prefix],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            npub = lambda: http(nport, 'POST', '/pub/news', DATA.encode())
            npub()
            rows.append(('nchan', measure(nport, npub, '/sub/news', '/sub/news', '/sub/news')))
        finally:
            n.terminate()
            n.wait()
            shutil.rmtree(prefix, ignore_errors=True)
    print(f'bytes per delivered message, data of {len(DATA)} bytes')
    print(f'{"server":14} {"websocket":>10} {"sse":>6} {"poll reply":>11}')
    for name, r in rows:
        print(f'{name:14} {str(r.get("ws", "-")):>10} {r["sse"]:>6} {r["poll"]:>11}')


if __name__ == '__main__':
    main()
