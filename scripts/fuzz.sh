#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets of tests/fuzz in build-fuzz/ (clang, libFuzzer
# + ASan + UBSan) and runs each for FUZZ_SECONDS (default 60) over a scratch copy of its
# committed corpus and regressions, then prints the executions per target. A crash
# leaves its input in build-fuzz/fuzz-work/<target>/ and fails the run.
#
#   scripts/fuzz.sh                 build and run every target
#   scripts/fuzz.sh merge           fold what the last run found into tests/fuzz/corpus
#                                   (libFuzzer -merge=1: only inputs that add coverage;
#                                   then at most 200 files: scripts/fuzz-cap-corpus.py)
# Environment: FUZZ_SECONDS, FUZZ_TARGETS (space-separated), FUZZ_BUILD (build dir),
# FUZZ_CXX (compiler, default clang++), FUZZ_JOBS (ninja -j, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD:-build-fuzz}
jobs=${FUZZ_JOBS:-2}
cxx=${FUZZ_CXX:-}
if [ -z "$cxx" ]; then
  for c in clang++ clang++-14 clang++-15 clang++-16; do
    if command -v "$c" >/dev/null; then cxx=$c; break; fi
  done
fi
[ -n "$cxx" ] || { echo "fuzz: clang++ is needed (apt-get install clang)" >&2; exit 1; }

all_targets="http_request http_session ws_frames ws_command cursor config ingest"
[ -f tests/fuzz/token.cpp ] && all_targets+=" token"
targets=${FUZZ_TARGETS:-$all_targets}
work=$build/fuzz-work

if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER="$cxx" -DHERALD_FUZZ=ON >/dev/null
fi
ninja -C "$build" -j "$jobs" $(for t in $targets; do printf 'fuzz_%s ' "$t"; done)

if [ "${1:-}" = merge ]; then
  for t in $targets; do
    [ -d "$work/$t/corpus" ] || continue
    before=$(ls tests/fuzz/corpus/$t | wc -l)
    # http_session runs over real sockets: its hit counts vary from run to run, so its
    # merge keeps inputs for new edges only (docs/fuzzing.md).
    flags=()
    [ "$t" = http_session ] && flags=(-use_counters=0)
    "$build/tests/fuzz/fuzz_$t" -merge=1 "${flags[@]}" "tests/fuzz/corpus/$t" "$work/$t/corpus" 2>"$work/$t/merge.log"
    # At most 200 files a corpus: the seeds and the found inputs adding the most edges.
    python3 scripts/fuzz-cap-corpus.py "$build/tests/fuzz/fuzz_$t" "tests/fuzz/corpus/$t" 200
    echo "$t: corpus $before -> $(ls tests/fuzz/corpus/$t | wc -l) files"
  done
  exit 0
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=()
results=()
for t in $targets; do
  rm -rf "${work:?}/$t"
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  cp tests/fuzz/corpus/$t/* "$work/$t/corpus/"
  [ -d tests/fuzz/regressions/$t ] && cp tests/fuzz/regressions/$t/* "$work/$t/corpus/"
  dict=()
  [ -f tests/fuzz/dict/$t.dict ] && dict=(-dict=tests/fuzz/dict/$t.dict)
  echo "fuzz: $t for ${seconds}s"
  status=0
  "$build/tests/fuzz/fuzz_$t" "$work/$t/corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/$t/artifacts/" >"$work/$t/log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t/log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t/log" | tail -1)
  corpus=$(ls "$work/$t/corpus" | wc -l)
  crashes=$(ls "$work/$t/artifacts" | wc -l)
  results+=("$(printf '%-14s %12s %10s %8s %8s' "$t" "${execs:-?}" "${rate:-?}" "$corpus" "$crashes")")
  if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed+=("$t")
    echo "fuzz: $t FAILED (status $status); log: $work/$t/log, inputs: $work/$t/artifacts/" >&2
    grep -m1 -A12 -E '^==[0-9]+==ERROR|runtime error|property violated|deadly signal' "$work/$t/log" >&2 || true
  fi
done

echo
printf '%-14s %12s %10s %8s %8s\n' target executions exec/s corpus crashes
printf '%s\n' "${results[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failures in ${failed[*]}" >&2
  exit 1
fi
