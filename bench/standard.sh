#!/usr/bin/env bash
# The standard benchmark set (make bench): herald-bench against a herald it starts, for
# each transport; prints Markdown rows. Bounded: every run stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/tools/bench/herald-bench
S=build/src/herald
# History long enough that a fast burst never outruns a long-polling reader.
run() { timeout 120 "$B" --server "$S" --server-arg=--history-size=20000 "$@" || echo "| (run failed: $*) |"; }
echo "| server | scenario | transport | subscribers | connect | workload | delivery check | throughput | latency | wire bytes per message | server | tool |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for t in ws sse poll; do
  run --transport "$t" --subscribers 1000 --messages 500 --rate 100            # one message per write
  run --transport "$t" --subscribers 1000 --messages 2000 --window 64          # writes batch messages
  run --transport "$t" --subscribers 10000 --messages 50 --rate 10
  run --scenario channels --transport "$t" --subscribers 5000 --messages 5000 --window 16
  run --scenario idle --transport "$t" --subscribers 10000
done
run --scenario connect --transport ws --subscribers 10000
