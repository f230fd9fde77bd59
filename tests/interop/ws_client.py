#!/usr/bin/env python3
"""Interop check of herald's /ws with the Python `websockets` library (Debian's
python3-websockets; run it with /usr/bin/python3).

usage: ws_client.py PORT [--deflate]

Against herald on 127.0.0.1:PORT (started with --namespace chat:client_publish=true, and
--ws-deflate true for --deflate) it connects, subscribes, receives a message published
over HTTP (POST /api/publish) and one published over the WebSocket, runs the protocol
ping and a WebSocket ping, and closes normally (1000). With --deflate it offers
permessage-deflate and checks that it was negotiated and that a large, compressible
message makes the round trip. Prints one JSON line of results; exit status 0 when every
check passed, 1 otherwise (the reason on stderr).
"""
import asyncio
import json
import os
import sys
import time
import urllib.request

import websockets

TIMEOUT = 5.0


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def http_publish(port, channel, data):
    body = json.dumps({"channel": channel, "data": data}).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/publish", data=body, method="POST",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
        return json.loads(r.read())


class Client:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 1
        self.pushes = []
        self.frames = 0

    async def recv_json(self):
        raw = await asyncio.wait_for(self.ws.recv(), TIMEOUT)
        check(isinstance(raw, str), f"expected a text frame, got {type(raw).__name__}")
        self.frames += 1
        return json.loads(raw)  # every text frame must be JSON

    async def request(self, cmd):
        cmd = dict(cmd, id=self.next_id)
        self.next_id += 1
        await self.ws.send(json.dumps(cmd))
        while True:
            msg = await self.recv_json()
            if "push" in msg:
                self.pushes.append(msg["push"])
                continue
            check(msg.get("id") == cmd["id"], f"reply id {msg.get('id')} for command {cmd['id']}: {msg}")
            return msg

    async def push(self):
        if self.pushes:
            return self.pushes.pop(0)
        while True:
            msg = await self.recv_json()
            if "push" in msg:
                return msg["push"]
            raise Failure(f"unexpected frame while waiting for a push: {msg}")


async def run(port, deflate):
    results = {"library": f"websockets {websockets.__version__}", "deflate": deflate}
    channel = f"chat:py{os.getpid()}{int(time.time() * 1000) % 100000}"
    uri = f"ws://127.0.0.1:{port}/ws"
    async with websockets.connect(uri, compression="deflate" if deflate else None,
                                  open_timeout=TIMEOUT, close_timeout=TIMEOUT,
                                  ping_interval=None, max_size=2 ** 20) as ws:
        names = [type(e).__name__ for e in ws.extensions]
        results["extensions"] = names
        results["response_extensions"] = ws.response_headers.get("Sec-WebSocket-Extensions")
        if deflate:
            check(names == ["PerMessageDeflate"], f"permessage-deflate not negotiated: {names} "
                  f"({results['response_extensions']})")
        else:
            check(names == [], f"unexpected extensions: {names}")
        c = Client(ws)

        r = await c.request({"method": "subscribe", "channel": channel})
        check("result" in r and r["result"]["channel"] == channel, f"subscribe: {r}")
        check(isinstance(r["result"]["cursor"], str), f"subscribe cursor: {r}")

        loop = asyncio.get_running_loop()
        pub = await loop.run_in_executor(None, http_publish, port, channel, {"via": "http", "text": "κόσμε 😀"})
        p = await c.push()
        check(p["channel"] == channel and p["offset"] == pub["offset"] == 1, f"push {p} / publish {pub}")
        check(p["data"] == {"via": "http", "text": "κόσμε 😀"}, f"push data {p['data']}")
        check(p["cursor"] == pub["cursor"], "the push cursor is the publish cursor")

        r = await c.request({"method": "publish", "channel": channel, "data": {"via": "ws"}, "event": "py"})
        check("result" in r and r["result"]["offset"] == 2, f"ws publish: {r}")
        p = await c.push()
        check(p["offset"] == 2 and p["data"] == {"via": "ws"} and p.get("event") == "py", f"push {p}")

        big = {"via": "ws", "blob": "herald " * 3000}
        r = await c.request({"method": "publish", "channel": channel, "data": big})
        check("result" in r and r["result"]["offset"] == 3, f"big publish: {r}")
        p = await c.push()
        check(p["offset"] == 3 and p["data"] == big, "big push differs")

        r = await c.request({"method": "history", "channel": channel, "limit": 10})
        check([m["offset"] for m in r["result"]["messages"]] == [1, 2, 3], f"history: {r}")

        r = await c.request({"method": "ping"})
        check(r == {"id": r["id"], "result": {}}, f"ping: {r}")
        waiter = await ws.ping(b"py-ping")
        await asyncio.wait_for(waiter, TIMEOUT)
        results["ws_ping"] = "pong received"

        await ws.close(code=1000, reason="bye")
        results["close_code"] = ws.close_code
        results["close_reason"] = ws.close_reason
        check(ws.close_code == 1000, f"close code {ws.close_code} {ws.close_reason!r}")
        results["frames"] = c.frames
    return results


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    port = int(sys.argv[1])
    deflate = "--deflate" in sys.argv[2:]
    try:
        results = asyncio.run(asyncio.wait_for(run(port, deflate), 30))
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # connection errors, timeouts, protocol errors
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    results["ok"] = True
    print(json.dumps(results, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
