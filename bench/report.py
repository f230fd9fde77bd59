#!/usr/bin/python3
"""Report of a benchmark run from herald-bench's JSON results (one object per line).

usage: bench/report.py RESULTS.jsonl [--elapsed SECONDS] [--no-chart]

Writes docs/benchmarks-latest.md (every table), puts the same tables between the
<!-- bench-report:begin --> and <!-- bench-report:end --> markers of docs/benchmarks.md,
and draws docs/img/benchmarks.png (python3-matplotlib). Figures of repeated runs are
medians; ratios are herald / peer of those medians. Only python3's standard library and
matplotlib.
"""
import argparse
import json
import os
import platform
import re
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRANSPORTS = [("ws", "WebSocket"), ("sse", "SSE"), ("poll", "long polling")]
SERVERS = [("herald", "herald"), ("herald raw", "herald, raw format"), ("nchan", "Nchan"), ("ws-node", "node ws"), ("pushpin", "Pushpin"),
           ("baseline", "physical baseline")]
SERVER_NAME = dict(SERVERS)

# The qualitative columns of the classic comparison: fixed text, not measured.
QUALITATIVE = {
    "ws": ("full duplex", "client must (herald's browser client does, resuming from its cursor)",
           "needs HTTP/1.1 Upgrade passed through and long idle timeouts; some proxies drop it",
           "no (herald: any node resumes from the cursor)"),
    "sse": ("server → client", "browser built-in (EventSource, with Last-Event-ID)",
            "plain HTTP; a buffering proxy must be told not to buffer",
            "no (herald: Last-Event-ID is the cursor, any node)"),
    "poll": ("server → client", "per request (every poll is a new request)",
             "the most: short plain HTTP requests",
             "no with herald (the cursor travels in each request); servers keeping position per node need them"),
}


def load(path):
    runs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    return runs


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_num(v, digits=0):
    if v is None:
        return "–"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def fmt_rate(v):
    if v is None:
        return "–"
    return f"{v / 1000:.1f}k" if v >= 1000 else f"{v:.0f}"


def fmt_ms(us):
    if us is None:
        return "–"
    ms = us / 1000
    return f"{ms:.1f}" if ms < 10 else f"{ms:.0f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def fanout_groups(runs):
    """(server, transport) -> runs of the peers workload (label 'peers round N')."""
    groups = {}
    for r in runs:
        if r.get("scenario") == "fanout" and r.get("label", "").startswith("peers"):
            server = r["server"] + (" raw" if r.get("format") == "raw" else "")
            groups.setdefault((server, r["transport"]), []).append(r)
    return groups


def summary(rs):
    return {
        "n": len(rs),
        "msgs_per_s": med([r.get("msgs_per_s") for r in rs]),
        "p50_us": med([r.get("p50_us") for r in rs]),
        "p99_us": med([r.get("p99_us") for r in rs]),
        "cpu": med([r.get("server_cpu_us_per_msg") for r in rs]),
        "rss": med([r.get("server_rss_bytes") for r in rs]),
        "bytes_in": med([r.get("bytes_in_per_msg") for r in rs]),
        "bytes_out": med([r.get("bytes_out_per_msg") for r in rs]),
        "delivered": med([r["delivered"] / r["expected"] if r.get("expected") else None for r in rs]),
        "origin_cpu": med([r.get("origin_cpu_us_per_msg") for r in rs]),
        "bench_cpu": med([r.get("bench_cpu_pct") for r in rs]),
        "size": rs[0].get("size", 100),
        "rounds": [r.get("msgs_per_s") for r in rs],
        "cpus": [r.get("server_cpu_us_per_msg") for r in rs],
    }


def transport_table(groups):
    out = ["| transport | bytes on the wire per delivered message (in + out) | of which beyond the "
           "100 B payload | latency p50 / p99 | direction | auto-reconnect | proxy friendliness | "
           "sticky sessions needed |",
           "|---|---|---|---|---|---|---|---|"]
    for t, tname in TRANSPORTS:
        for server, suffix in (("herald", ""), ("herald raw", ", raw format")):
            rs = groups.get((server, t))
            if not rs:
                continue
            s = summary(rs)
            total = (s["bytes_in"] or 0) + (s["bytes_out"] or 0)
            d, rc, px, st = QUALITATIVE[t]
            out.append(f"| {tname}{suffix} | {total:.0f} ({s['bytes_in']:.0f} + {s['bytes_out']:.0f}) | "
                       f"{total - s['size']:.0f} | {fmt_ms(s['p50_us'])} / {fmt_ms(s['p99_us'])} ms | "
                       f"{d} | {rc} | {px} | {st} |")
    return out


def peers_table(groups):
    out = ["| transport | server | delivered | msgs/s | p50 / p99 latency | server CPU per msg | "
           "server RSS | bytes per msg (in + out) | herald/peer: CPU per msg | RSS | msgs/s |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for t, tname in TRANSPORTS:
        h = groups.get(("herald", t))
        hs = summary(h) if h else None
        for server, sname in SERVERS:
            rs = groups.get((server, t))
            if not rs:
                continue
            s = summary(rs)
            ratios = "– | – | –"
            if not server.startswith("herald") and hs:
                ratios = (f"{ratio(hs['cpu'], s['cpu'])} | {ratio(hs['rss'], s['rss'])} | "
                          f"{ratio(hs['msgs_per_s'], s['msgs_per_s'])}")
            out.append(f"| {tname} | {sname} | {100 * (s['delivered'] or 0):.1f} % | {fmt_rate(s['msgs_per_s'])} | "
                       f"{fmt_ms(s['p50_us'])} / {fmt_ms(s['p99_us'])} ms | {fmt_num(s['cpu'], 2)} µs | "
                       f"{fmt_num((s['rss'] or 0) / 1048576, 1)} MiB | {s['bytes_in']:.0f} + {s['bytes_out']:.0f} | "
                       f"{ratios} |")
            if s["origin_cpu"] is not None and s["origin_cpu"] >= 0.05:
                notes.append(f"{sname} {tname}: its GRIP origin (node, not counted above) used "
                             f"{s['origin_cpu']:.2f} µs CPU per delivered message")
    return out, notes


def node_load_table(runs):
    """bench/node-load.mjs rows: medians per (transport, publisher mode, server)."""
    groups = {}
    for r in runs:
        if r.get("tool") == "node-load":
            mode = f"paced {r['rate']:.0f}/s" if r.get("rate") else "closed loop"
            peer = r["peer"] + (" raw" if r.get("format") == "raw" else "")
            peer += f" {r['server_args']}" if r.get("server_args") else ""
            groups.setdefault((r["transport"], mode, peer), []).append(r)
    if not groups:
        return []
    out = ["| transport | publisher | server | delivered | msgs/s | p50 / p99 latency | publish reply p50 / p99 | "
           "server CPU per msg | TCP segments per msg | herald/Nchan CPU | herald/baseline CPU |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    m = lambda rs, k: med([r.get(k) for r in rs])
    for t, tname in TRANSPORTS:
        for mode in sorted({k[1] for k in groups if k[0] == t}, reverse=True):
            h = groups.get((t, mode, "herald"))
            others = sorted(k[2] for k in groups if k[0] == t and k[1] == mode and k[2].startswith("herald "))
            for peer in ["herald", *others, "nchan", "baseline"]:
                rs = groups.get((t, mode, peer))
                if not rs:
                    continue
                cpu = m(rs, "server_cpu_us_per_msg")
                vs = ["–", "–"]
                if peer.startswith("herald"):
                    n, b = groups.get((t, mode, "nchan")), groups.get((t, mode, "baseline"))
                    vs = [ratio(cpu, m(n, "server_cpu_us_per_msg")) if n else "–",
                          ratio(cpu, m(b, "server_cpu_us_per_msg")) if b else "–"]
                delivered = med([r["delivered"] / r["expected"] if r.get("expected") else None for r in rs])
                out.append(f"| {tname} | {mode} | {SERVER_NAME.get(peer, peer)} | {100 * (delivered or 0):.1f} % | "
                           f"{fmt_rate(m(rs, 'msgs_per_s'))} | {fmt_num(m(rs, 'latency_p50_ms'), 1)} / "
                           f"{fmt_num(m(rs, 'latency_p99_ms'), 1)} ms | {fmt_num(m(rs, 'reply_p50_ms'), 1)} / "
                           f"{fmt_num(m(rs, 'reply_p99_ms'), 1)} ms | {fmt_num(cpu, 2)} µs | "
                           f"{fmt_num(m(rs, 'segments_per_msg'), 2)} | {vs[0]} | {vs[1]} |")
    return out


def herald_alone_table(runs):
    out = ["| figure | measured | workload | tool CPU |", "|---|---|---|---|"]
    for r in runs:
        label = r.get("label", "")
        if label.startswith("peers") or r.get("tool") in ("node-load", "stream_load"):
            continue
        if r["scenario"] in ("stream", "presence"):
            continue  # streams_presence_table
        sc, t = r["scenario"], r["transport"]
        n = r["subscribers"]
        procs = f", {r['procs']} tool processes" if r.get("procs", 1) > 1 else ""
        if sc == "idle":
            figure = f"memory per idle connection, {TNAME[t]}"
            measured = f"{r['rss_per_conn_bytes']:,.0f} B per connection (server RSS {r['server_rss_bytes'] / 1048576:.1f} MiB)"
            workload = f"{n:,} idle subscribers, " + ("all on one channel" if r.get("shared_channel") else "one channel each")
            tool = "–"
        elif sc == "connect":
            figure = f"{TNAME[t]} connect storm"
            measured = f"{r['connections_per_s']:,.0f} handshakes+subscribes/s ({r['connected']:,.0f}/{n:,})"
            if "server_cpu_us_per_connection" in r:
                measured += f", {r['server_cpu_us_per_connection']:.0f} µs server CPU per connection"
            workload = f"{n:,} connections opened at once"
            tool = f"{r['bench_cpu_pct']:.0f} %" if "bench_cpu_pct" in r else "–"
        elif sc == "chat":
            figure = f"chat room: {n:,} WebSocket clients publishing, each receiving all"
            bad = "" if r.get("ok") else (f" (delivered {r['delivered']:,.0f}/{r['expected']:,.0f}, lost {r['lost']:,.0f}, "
                                          f"dup {r['duplicated']:,.0f}, order {r.get('reordered', 0):,.0f})")
            measured = (f"{r['msgs_per_s']:,.0f} msgs/s{bad}, p50 {fmt_ms(r['p50_us'])} / p99 {fmt_ms(r['p99_us'])} ms, "
                        f"{r['server_cpu_us_per_msg']:.2f} µs CPU/msg, {r['publish_failed']:,.0f} publish errors, "
                        f"{r['bytes_in_per_msg']:.0f} + {r['bytes_out_per_msg']:.0f} B per msg")
            rate = f" at {r['rate']:,.0f}/s in all" if r.get("rate") else f", {r['window']:.0f} publishes in flight each"
            workload = f"{n:,} clients{procs} × {r['messages']:,.0f} messages of {r['size']:.0f} B{rate}"
            tool = f"{r['bench_cpu_pct']:.0f} %"
        elif sc == "resume":
            figure = f"resume storm: {TNAME[t]}"
            bad = "" if r.get("ok") else (f" (delivered {r['delivered']:,.0f}/{r['expected']:,.0f}, lost {r['lost']:,.0f}, "
                                          f"dup {r['duplicated']:,.0f})")
            measured = (f"{r['caught_up']:,.0f}/{n:,} back and caught up in {r['storm_s'] * 1000:,.0f} ms{bad}, "
                        f"{r['replayed_per_s']:,.0f} replayed msgs/s, {r['resets']:,.0f} resets, "
                        f"{r['server_cpu_us_per_resume']:.0f} µs server CPU per resume "
                        f"({r['server_cpu_us_per_replayed']:.2f} per replayed msg)")
            workload = (f"{n:,} subscribers{procs} leave at once, {r['missed']:,.0f} messages published meanwhile, "
                        "all back at once from their cursors")
            tool = "–"
        else:
            kind = {"fanout": "fan-out", "channels": "one channel per subscriber"}[sc]
            figure = f"{label}: {TNAME[t]}, {kind}"
            ok = "" if r.get("ok") else f" (delivered {r['delivered']:,.0f}/{r['expected']:,.0f})"
            measured = (f"{r['msgs_per_s']:,.0f} msgs/s{ok}, p50 {fmt_ms(r['p50_us'])} / p99 {fmt_ms(r['p99_us'])} ms, "
                        f"{r['server_cpu_us_per_msg']:.2f} µs CPU/msg, RSS {r['server_rss_bytes'] / 1048576:.1f} MiB")
            rate = f" at {r['rate']:.0f}/s" if r.get("rate") else f", {r['window']:.0f} publishes in flight"
            workload = f"{n:,} subscribers{procs}, {r['messages']:,.0f} messages{rate}"
            tool = f"{r['bench_cpu_pct']:.0f} %"
        out.append(f"| {figure} | {measured} | {workload} | {tool} |")
    return out


TNAME = dict(TRANSPORTS)


def streams_presence_table(runs):
    """herald-bench's stream and presence runs and bench/stream_load.mjs's, medians per workload."""
    groups = {}
    for r in runs:
        if r.get("scenario") == "stream":
            key = ("stream", r.get("tool", "herald-bench"), r["streams"], r.get("tokens", r.get("tokens_per_stream")),
                   r.get("token_rate", r.get("rate")))
        elif r.get("scenario") == "presence":
            key = ("presence", "herald-bench", r["members"], r["churn_rate"], 0)
        else:
            continue
        groups.setdefault(key, []).append(r)
    out = ["| figure | measured (medians) | workload | tool CPU |", "|---|---|---|---|"]
    for (sc, tool, a, b, c), rs in groups.items():
        n = len(rs)
        m = lambda f: med([f(r) for r in rs])
        fx = lambda v, spec, div=1: "–" if v is None else format(v / div, spec + "f")
        oks = sum(1 for r in rs if r.get("ok", True))
        if sc == "stream" and tool == "stream_load":
            exact = "; ".join(sorted({r["readers_exact"] for r in rs}))
            measured = (f"{fmt_num(m(lambda r: r['tokens_per_s']))} tokens/s, token p50 "
                        f"{fx(m(lambda r: r['token_latency_ms']['p50']), '.1')} / p99 {fx(m(lambda r: r['token_latency_ms']['p99']), '.1')} ms, "
                        f"first token p50 {fx(m(lambda r: r['first_token_latency_ms']['p50']), '.1')} ms, resume p50 "
                        f"{fx(m(lambda r: r['resume_ms']['p50']), '.1')} ms, {fx(m(lambda r: r['herald_cpu_us_per_token']), '.1')} µs CPU/token, "
                        f"{fx(m(lambda r: r['herald_cpu_us_per_delivered_message']), '.1')} µs CPU/delivered msg, readers exact {exact}")
            figure = "stream, Node driver (bench/stream_load.mjs, SSE readers)"
            tool_cpu = "–"
        elif sc == "stream":
            measured = (f"{fmt_num(m(lambda r: r['tokens_per_s']))} tokens/s, token p50 {fx(m(lambda r: r['token_p50_ms']), '.1')} / "
                        f"p99 {fx(m(lambda r: r['token_p99_ms']), '.1')} ms (never-dropped readers p99 "
                        f"{fx(m(lambda r: r.get('steady_token_p99_ms')), '.1')}), first token p50 "
                        f"{fx(m(lambda r: r['first_token_p50_ms']), '.1')} / p99 {fx(m(lambda r: r['first_token_p99_ms']), '.1')} ms, "
                        f"resume p50 {fx(m(lambda r: r['resume_p50_ms']), '.1')} / p99 {fx(m(lambda r: r['resume_p99_ms']), '.1')} ms, "
                        f"{fx(m(lambda r: r['server_cpu_us_per_token']), '.1')} µs CPU/token, "
                        f"{fx(m(lambda r: r['server_cpu_us_per_msg']), '.1')} µs CPU/delivered msg, "
                        f"{fx(m(lambda r: r['rss_per_stream_bytes']), '.0', 1024)} KiB RSS/stream, "
                        f"{fx(m(lambda r: r['messages_per_stream']), '.0')} msgs/stream; exact and complete in {oks}/{n} runs")
            figure = f"stream, herald-bench ({rs[0]['transport']} readers)"
            tool_cpu = f"{fx(m(lambda r: r['bench_cpu_pct']), '.0')} %"
        else:
            measured = (f"join p50 {fx(m(lambda r: r['join_p50_ms']), '.1')} / p99 {fx(m(lambda r: r['join_p99_ms']), '.1')} ms, leave p50 "
                        f"{fx(m(lambda r: r['leave_p50_ms']), '.1')} / p99 {fx(m(lambda r: r['leave_p99_ms']), '.1')} ms, "
                        f"{fx(m(lambda r: r['server_cpu_us_per_event']), ',.0')} µs CPU/event (both nodes; Redis "
                        f"{fx(m(lambda r: r['redis_cpu_us_per_event']), ',.0')}), GET /api/presence p50 "
                        f"{fx(m(lambda r: r['query_p50_ms']), '.2')} / p99 {fx(m(lambda r: r['query_p99_ms']), '.2')} ms; "
                        f"every event seen on both nodes in {oks}/{n} runs")
            figure = "presence: two nodes on one Redis, an observer on each"
            tool_cpu = f"{fx(m(lambda r: r['bench_cpu_pct']), '.0')} %"
        if sc == "stream" and tool == "stream_load":
            workload = (f"{a:,} streams × {b:,} tokens at {c:.0f}/s, {rs[0]['readers_per_stream']} SSE readers each, "
                        "the first of each dropping every second")
        elif sc == "stream":
            r0 = rs[0]
            workload = (f"{a:,} streams × {b:,} tokens at {c:.0f}/s, {r0['readers']:.0f} readers each, "
                        f"{r0['dropping_readers']:,.0f} of them dropping every {r0['drop_every_ms']:,.0f} ms")
        else:
            workload = f"{a:,} members (WebSocket), {b:.0f} joins + leaves/s for {rs[0]['churn_s']:.0f} s"
        load = m(lambda r: r.get("load1_after"))
        if load is not None:
            workload += f"; load average {load:.1f}"  # other work on the machine meanwhile
        out.append(f"| {figure} | {measured} | {workload}{'' if n == 1 else f' ({n} runs)'} | {tool_cpu} |")
    return out if len(out) > 2 else []


def chart(groups, path, workload, asked):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100)
    servers = [s for s, _ in SERVERS if any((s, t) in groups for t, _ in TRANSPORTS)]
    width = 0.8 / max(1, len(servers))
    colors = {"herald": "#2b6cb0", "herald raw": "#90cdf4", "nchan": "#dd6b20", "ws-node": "#718096", "pushpin": "#38a169"}
    for ax, key, title, log in ((axes[0], "cpu", "server CPU per delivered message (µs, log)", True),
                                (axes[1], "msgs_per_s", f"delivered messages/s ({asked} asked)", False)):
        for i, s in enumerate(servers):
            xs, ys = [], []
            for j, (t, _) in enumerate(TRANSPORTS):
                rs = groups.get((s, t))
                if rs:
                    xs.append(j + (i - (len(servers) - 1) / 2) * width)
                    ys.append(summary(rs)[key] or 0)
            ax.bar(xs, ys, width, label=SERVER_NAME[s], color=colors.get(s))
        ax.set_xticks(range(len(TRANSPORTS)))
        ax.set_xticklabels([n for _, n in TRANSPORTS])
        ax.set_title(title, fontsize=10)
        if log:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{workload} (medians of the rounds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--elapsed", type=float)
    ap.add_argument("--no-chart", action="store_true")
    a = ap.parse_args()
    runs = load(a.results)
    if not runs:
        sys.exit("report: no results in " + a.results)
    groups = fanout_groups(runs)
    date = runs[0]["time"][:10]
    rounds = max((s["n"] for s in (summary(v) for v in groups.values())), default=0)

    body = []
    body.append(f"Measured {date} by `make bench` (bench/standard.sh, {len(runs)} runs"
                + (f", {a.elapsed / 60:.1f} min of runs" if a.elapsed else "") + f") on {os.cpu_count()} cores, "
                "the tool and the servers on the same machine. Medians of "
                f"{rounds} alternating rounds; ratios are herald / peer.")
    body.append("")
    ref = next((v[0] for k, v in groups.items() if k[0] == "herald"), runs[0])
    workload = (f"1 channel, {ref['subscribers']:,} subscribers, {ref.get('messages', 0):,.0f} messages of "
                f"{ref.get('size', 0):.0f} B at {ref.get('rate', 0):.0f}/s")
    body.append(f"### The transports, measured (herald; {workload})")
    body.append("")
    body += transport_table(groups)
    body.append("")
    body.append(f"### herald against its peers (same workload, same run: {workload})")
    body.append("")
    table, notes = peers_table(groups)
    body += table
    body.append("")
    for n in notes:
        body.append(f"- {n}.")
    if notes:
        body.append("")
    body.append("![server CPU per delivered message and delivered msgs/s per server and transport]"
                "(img/benchmarks.png)")
    body.append("")
    node = node_load_table(runs)
    if node:
        body.append("### The same workload through ordinary Node clients (bench/node-load.mjs)")
        body.append("")
        body.append("Subscribers are npm `ws` WebSockets, `node:http` SSE streams and long polls in two "
                    "processes; the publisher `node:http`, paced or posting the next message when the "
                    "previous reply comes. TCP segments are the machine's (`/proc/net/snmp` OutSegs: data "
                    "and acknowledgements, both ways) per delivered message.")
        body.append("")
        body += node
        body.append("")
    body.append("### herald alone")
    body.append("")
    body += herald_alone_table(runs)
    body.append("")
    sp = streams_presence_table(runs)
    if sp:
        body.append("### Streams and presence, measured")
        body.append("")
        body += sp
        body.append("")
    block = "\n".join(body)

    latest = os.path.join(ROOT, "docs", "benchmarks-latest.md")
    with open(latest, "w") as f:
        f.write("# Latest benchmark report\n\n"
                "Generated by `bench/report.py` from `docs/bench-results/latest.jsonl` (`make bench`); "
                "how to read it: [benchmarks.md](benchmarks.md).\n\n" + block)
    doc = os.path.join(ROOT, "docs", "benchmarks.md")
    if os.path.exists(doc):
        text = open(doc).read()
        pat = re.compile(r"(<!-- bench-report:begin -->\n).*?(<!-- bench-report:end -->)", re.S)
        if pat.search(text):
            text = pat.sub(lambda m: m.group(1) + block + m.group(2), text)
            with open(doc, "w") as f:
                f.write(text)
    if not a.no_chart:
        os.makedirs(os.path.join(ROOT, "docs", "img"), exist_ok=True)
        asked = fmt_rate(ref["subscribers"] * ref.get("rate", 0))
        chart(groups, os.path.join(ROOT, "docs", "img", "benchmarks.png"), workload, asked)
    print(block)


if __name__ == "__main__":
    main()
