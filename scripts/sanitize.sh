#!/usr/bin/env bash
# The sanitizer builds that `make test` runs after the normal suite (docs/fuzzing.md):
#   scripts/sanitize.sh asan   build-asan/ (clang, HERALD_SANITIZE=ON: ASan+UBSan, LeakSanitizer):
#                              herald, the unit tests and the fuzz replays, all run, and the
#                              integration suite against the instrumented herald binary;
#   scripts/sanitize.sh tsan   build-tsan/ (gcc, HERALD_TSAN=ON): the cross-thread unit tests (hub
#                              fan-out, memory broker contract) under ThreadSanitizer;
#   scripts/sanitize.sh        both.
# Any report fails the run. Every sanitizer stops at its first error (the code is built
# with -fno-sanitize-recover=all, the options below say halt_on_error) and writes its
# report to a file under <build dir>/sanitizer-logs/, which must stay empty: a herald
# started by an integration test reports to a stderr nobody reads, or while being
# stopped, so a failing exit status alone would not catch it.
# Environment: SANITIZE_JOBS (ninja -j, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${SANITIZE_JOBS:-2}
what=${1:-all}

# Prints every report under $1; fails when there is one.
check_logs() {
  local reports=0
  for f in "$1"/*; do
    [ -e "$f" ] || continue
    reports=$((reports + 1))
    echo "sanitize: report $f:" >&2
    cat "$f" >&2
  done
  [ "$reports" -eq 0 ]
}

# Debug (assertions on, Boost's included) at -O1 with line tables only: the sanitizers
# need no more, and it compiles in less than half the time of RelWithDebInfo.
configure() {  # build-dir cmake-flag...
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" "$@" >/dev/null
}

clang_cxx() {
  local c
  for c in clang++ clang++-14 clang++-15 clang++-16; do
    if command -v "$c" >/dev/null; then echo "$c"; return; fi
  done
  echo "sanitize: clang++ is needed for build-asan (scripts/setup.sh test installs it)" >&2
  exit 1
}

run_asan() {
  local dir=build-asan logs start=$SECONDS status=0
  logs=$PWD/$dir/sanitizer-logs
  # clang: its one runtime writes UBSan reports to log_path too; with gcc's separate
  # libasan and libubsan, UBSan reports ignore log_path and would go unseen.
  configure "$dir" -DCMAKE_CXX_COMPILER="$(clang_cxx)" -DHERALD_SANITIZE=ON
  ninja -C "$dir" -j "$jobs" herald herald_unit_tests fuzz_all
  local built=$SECONDS
  rm -rf "$logs" && mkdir -p "$logs"
  # detect_leaks: LeakSanitizer at exit (herald exits through its drain on SIGTERM).
  # An 8 MB quarantine of freed memory (256 by default), returned to the system within
  # 0.1 s, keeps the RSS of an instrumented herald within the bounds the hostile-client
  # suite checks after its attack.
  export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:quarantine_size_mb=8:thread_local_quarantine_size_kb=64:allocator_release_to_os_interval_ms=100:log_path=$logs/asan"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
  (cd "$dir" && ctest --output-on-failure --timeout 900) || status=$?
  check_logs "$logs" || status=1
  unset ASAN_OPTIONS UBSAN_OPTIONS
  echo "sanitize: asan+ubsan: build $((built - start)) s, tests $((SECONDS - built)) s, status $status"
  return "$status"
}

run_tsan() {
  local dir=build-tsan logs start=$SECONDS status=0
  logs=$PWD/$dir/sanitizer-logs
  configure "$dir" -DHERALD_TSAN=ON
  ninja -C "$dir" -j "$jobs" herald_tsan_tests
  local built=$SECONDS
  rm -rf "$logs" && mkdir -p "$logs"
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$logs/tsan" \
    "$dir/tests/herald_tsan_tests" --gtest_brief=1 || status=$?
  check_logs "$logs" || status=1
  echo "sanitize: tsan: build $((built - start)) s, tests $((SECONDS - built)) s, status $status"
  return "$status"
}

case "$what" in
  asan) run_asan ;;
  tsan) run_tsan ;;
  all)
    status=0
    run_tsan || status=$?
    run_asan || status=$?
    exit "$status"
    ;;
  *) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;;
esac
