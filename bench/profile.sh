#!/usr/bin/env bash
# Profiles herald the way docs/benchmarks.md ("Where the time and memory go") reports it,
# about 6 minutes on 2 cores; every step is bounded and stops what it started.
#   1. callgrind: short SSE and WebSocket fan-outs under valgrind (1000 subscribers, 200
#      messages at 20/s), and a connect storm of 3000 WebSockets
#   2. perf (cpu-clock: this VM has no hardware counters): the peers' fan-out workload at
#      full speed (1000 SSE subscribers, 300 messages at 150/s), self time per function
#   3. heaptrack: an idle hold of 3000 WebSocket connections, the peak by allocation site
# Output in build/profile/ (PROFILE_DIR=...): callgrind-NAME-{inclusive,self}.txt, perf-self.txt,
# heaptrack-peaks.txt, profile.jsonl (herald-bench's results of these runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh profile
B=build/tools/bench/herald-bench
S=build/src/herald
OUT=${PROFILE_DIR:-build/profile}
mkdir -p "$OUT"
: > "$OUT/profile.jsonl"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {  # bounded: 120 s (valgrind starts slowly)
  for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "profile: nothing listens on $1" >&2
  return 1
}
stop() {  # SIGINT (herald drains, heaptrack and callgrind write their files), then bounded wait
  kill -INT "$1" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$1" 2>/dev/null || true
}
# The herald process under a wrapper (valgrind execs it; heaptrack runs it as a child).
herald_pid() { pgrep -n -f "^$S --listen 127.0.0.1:$1" || pgrep -n -f "$S --listen 127.0.0.1:$1"; }

# callgrind NAME herald-bench-arguments...: herald under callgrind while the tool runs.
callgrind() {
  local name=$1; shift
  echo "== callgrind: $name ($*)"
  local P VPID
  P=$(free_port)
  valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind-$name.out" \
    "$S" --listen "127.0.0.1:$P" --history-size 20000 --drain-seconds 1 > "$OUT/callgrind-$name.log" 2>&1 &
  VPID=$!
  wait_port "$P"
  timeout -k 10 600 "$B" --connect "127.0.0.1:$P" --server-pid "$VPID" --json "$OUT/profile.jsonl" \
    --label "callgrind $name" "$@" || true
  stop "$VPID"
  callgrind_annotate --inclusive=yes "$OUT/callgrind-$name.out" > "$OUT/callgrind-$name-inclusive.txt" 2>/dev/null || true
  callgrind_annotate "$OUT/callgrind-$name.out" > "$OUT/callgrind-$name-self.txt" 2>/dev/null || true
}
callgrind sse --transport sse --subscribers 1000 --messages 200 --rate 20
callgrind ws --transport ws --subscribers 1000 --messages 200 --rate 20
callgrind connect --scenario connect --transport ws --subscribers 3000

echo "== perf (cpu-clock): SSE fan-out at full speed"
P=$(free_port)
"$S" --listen "127.0.0.1:$P" --history-size 20000 --drain-seconds 1 > /dev/null 2>&1 &
HPID=$!
wait_port "$P"
timeout -k 5 60 perf record -F 999 -o "$OUT/perf.data" -p "$HPID" > /dev/null 2>&1 &
PERF=$!
sleep 0.5
timeout -k 10 120 "$B" --connect "127.0.0.1:$P" --server-pid "$HPID" --transport sse --subscribers 1000 \
  --messages 300 --rate 150 --json "$OUT/profile.jsonl" --label perf || true
kill -INT "$PERF" 2>/dev/null || true
wait "$PERF" 2>/dev/null || true
stop "$HPID"
perf report -i "$OUT/perf.data" --stdio --no-children --sort symbol > "$OUT/perf-self.txt" 2>/dev/null || true

echo "== heaptrack: 3000 idle WebSocket connections"
P=$(free_port)
heaptrack -o "$OUT/heaptrack" "$S" --listen "127.0.0.1:$P" --drain-seconds 1 > "$OUT/heaptrack.log" 2>&1 &
TPID=$!
wait_port "$P"
HPID=$(herald_pid "$P")
timeout -k 10 120 "$B" --connect "127.0.0.1:$P" --server-pid "$HPID" --scenario idle --transport ws \
  --subscribers 3000 --json "$OUT/profile.jsonl" --label heaptrack || true
stop "$HPID"
wait "$TPID" 2>/dev/null || true
F=$(ls -t "$OUT"/heaptrack.* 2>/dev/null | grep -v '\.log$' | head -1)
heaptrack_print -f "$F" --print-peaks 1 --print-allocators 0 --print-temporary 0 --print-leaks 0 \
  --peak-limit 25 --sub-peak-limit 4 > "$OUT/heaptrack-peaks.txt" 2>/dev/null || true
echo "== done: $OUT"
