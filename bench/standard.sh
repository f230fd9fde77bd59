#!/usr/bin/env bash
# The standard benchmark set (make bench), about 35 minutes on 2 cores: herald-bench against
# herald and its peers (nginx + Nchan, a node ws server, Pushpin), then the report.
#   1. fan-out, 1 channel, 1000 subscribers (opened at 500/s: Pushpin answers part of a
#      burst of 1000 with 502), 300 messages of 100 B at 150/s, for each transport: herald
#      (JSON and raw formats) and every peer that serves it, and the physical baseline
#      (herald-bench --peer baseline), in alternating rounds (ROUNDS, 3); then the same through ordinary Node
#      clients (bench/node-load.mjs), paced and closed-loop, herald, Nchan and the baseline
#   2. herald alone: batched writes, 10k-subscriber fan-out, idle memory per connection,
#      a WebSocket connect storm, long-poll deliveries over 5000 channels, a chat room
#      (50 WebSocket clients publishing 40 messages each), a resume storm per transport
#      (1000 subscribers leave at once, 100 messages are published, all come back)
#   3. streams and presence (ROUNDS rounds): 1000 answers x 200 tokens at 50 tokens/s, 2
#      readers each (SSE and WebSocket, one of them dropping and resuming every second),
#      through herald-bench and, for comparison, bench/stream_load.mjs (Node, SSE readers);
#      a presence room of 1000 members over two nodes on one Redis, 200 joins + leaves/s
#      for 5 s
#   4. bench/report.py: docs/benchmarks-latest.md, the tables in docs/benchmarks.md and
#      docs/img/benchmarks.png
# Every run is bounded (timeout); the results are one JSON line per run in
# docs/bench-results/latest.jsonl (RESULTS=FILE to write elsewhere).
set -uo pipefail
cd "$(dirname "$0")/.."
B=build/tools/bench/herald-bench
S=build/src/herald
ROUNDS=${ROUNDS:-3}
OUT=${RESULTS:-docs/bench-results/latest.jsonl}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
scripts/setup.sh bench  # the peers, node, matplotlib: installed when missing
start=$(date +%s)
# History long enough that a fast burst never outruns a long-polling reader.
run() {
  local label=$1; shift
  timeout 150 "$B" --server "$S" --server-arg=--history-size=20000 --json "$OUT" --label "$label" "$@" ||
    echo "(run failed or incomplete: $*)"
}
peers_for() { case $1 in ws) echo "herald nchan ws-node pushpin baseline" ;; sse) echo "herald nchan pushpin baseline" ;; *) echo "herald nchan pushpin" ;; esac; }
# The same workload through ordinary Node clients (npm ws, node:http), paced and closed-loop.
node_run() {
  timeout 150 node bench/node-load.mjs --json "$OUT" "$@" || echo "(node-load run failed or incomplete: $*)"
}

echo "== herald and its peers: 1000 subscribers, 300 messages at 150/s, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
  for t in ws sse poll; do
    for p in $(peers_for "$t"); do
      run "peers round $round" --peer "$p" --transport "$t" --subscribers 1000 --messages 300 --rate 150 \
        --connect-rate 500
    done
    # herald's raw formats: the payload and the cursor only (docs/protocol.md, "Raw formats")
    run "peers round $round" --peer herald --format raw --transport "$t" --subscribers 1000 --messages 300 \
      --rate 150 --connect-rate 500
  done
done

echo "== through ordinary Node clients (bench/node-load.mjs): 1000 subscribers in 2 processes, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
  for t in ws sse poll; do
    for p in herald nchan baseline; do
      [ "$p" = baseline ] && [ "$t" = poll ] && continue
      node_run --label "node round $round" --peer "$p" --transport "$t" --subscribers 1000 --procs 2 --messages 300 --rate 150
      node_run --label "node round $round" --peer "$p" --transport "$t" --subscribers 1000 --procs 2 --messages 300 --rate 0
    done
    node_run --label "node round $round" --peer herald --format raw --transport "$t" --subscribers 1000 --procs 2 \
      --messages 300 --rate 150
  done
done

echo "== herald alone"
run "batched" --transport ws --subscribers 1000 --messages 2000 --window 64
run "batched, 2 procs" --transport ws --subscribers 1000 --messages 2000 --window 64 --procs 2
for t in ws sse poll; do
  run "fanout 10k" --transport "$t" --subscribers 10000 --messages 50 --rate 10
  run "idle 10k" --scenario idle --transport "$t" --subscribers 10000
done
run "idle 10k, one channel" --scenario idle --transport ws --subscribers 10000 --shared-channel
run "connect storm" --scenario connect --transport ws --subscribers 10000
run "long-poll deliveries" --scenario channels --transport poll --subscribers 5000 --messages 5000 --window 16
# 20 publishes/s per client, far below --ws-commands-per-second (1000)
run "chat" --scenario chat --subscribers 50 --messages 40 --rate 1000
for t in ws sse poll; do
  run "resume storm" --scenario resume --transport "$t" --subscribers 1000 --messages 10 --missed 100 --window 16
done

echo "== streams and presence, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
  run "stream round $round" --scenario stream --streams 1000 --tokens 200 --token-rate 50
  timeout 150 node bench/stream_load.mjs --streams 1000 --tokens 200 --rate 50 --json | tail -1 >> "$OUT" ||
    echo "(stream_load run failed or incomplete)"
  run "presence round $round" --scenario presence --members 1000 --churn-rate 200 --churn-seconds 5
done

elapsed=$(( $(date +%s) - start ))
echo "== runs took ${elapsed} s; report"
# Debian's python3, where python3-matplotlib is (not a python3 earlier in PATH)
/usr/bin/python3 bench/report.py "$OUT" --elapsed "$elapsed"
