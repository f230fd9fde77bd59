#!/usr/bin/env bash
# Installs what herald needs on a fresh Debian 12 machine, and nothing already there.
#   scripts/setup.sh build   compiler, CMake, Ninja, ccache and the libraries
#   scripts/setup.sh test    the above, plus what the test suite drives (curl, node packages),
#                            clang for the sanitizer build, the deb packages below and what
#                            the package test checks with (systemd-analyze, man, promtool)
#   scripts/setup.sh fuzz    the build packages, plus clang with libFuzzer (make fuzz)
#   scripts/setup.sh bench   the build packages, plus the benchmark peers (nginx +
#                            libnginx-mod-nchan, Pushpin), Node.js and the `ws` package for the
#                            node peer, matplotlib for the report, redis-server for the
#                            presence scenario (make bench)
#   scripts/setup.sh profile the bench packages, plus valgrind and heaptrack (bench/profile.sh)
#   scripts/setup.sh deb     the build packages, plus help2man and python3 (the man page), dpkg-dev
#                            and file (CPack's dependency detection: dpkg-shlibdeps) (make deb)
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-build}
build_pkgs=(g++ cmake ninja-build ccache pkg-config libboost1.81-dev libboost-json1.81-dev
  libboost-url1.81-dev libboost-program-options1.81-dev libhiredis-dev libssl-dev libnghttp2-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev)
# clang: the sanitizer build (scripts/sanitize.sh) and libFuzzer (make fuzz).
test_pkgs=(curl nodejs npm python3 python3-websockets chromium redis-server nginx haproxy clang libclang-rt-dev)
# The package: make deb builds it; tests/package/ installs and checks it (systemd for
# systemd-analyze, man-db for man -l, prometheus for promtool; nothing is started).
deb_pkgs=(help2man python3 dpkg-dev file)
package_test_pkgs=(systemd man-db prometheus)
fuzz_pkgs=(clang libclang-rt-dev)
bench_pkgs=(nginx libnginx-mod-nchan pushpin nodejs npm python3 python3-matplotlib redis-server)
profile_pkgs=(valgrind heaptrack)

pkgs=("${build_pkgs[@]}")
case "$what" in
  test) pkgs+=("${test_pkgs[@]}" "${deb_pkgs[@]}" "${package_test_pkgs[@]}") ;;
  deb) pkgs+=("${deb_pkgs[@]}") ;;
  fuzz) pkgs+=("${fuzz_pkgs[@]}") ;;
  bench) pkgs+=("${bench_pkgs[@]}") ;;
  profile) pkgs+=("${bench_pkgs[@]}" "${profile_pkgs[@]}") ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  # nodejs may come from another source than Debian (it then provides npm itself).
  if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
  if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
  if [ "$p" = python3 ] && command -v python3 >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  # One by one if apt's resolver refuses the whole set at once (seen with pushpin and
  # python3-matplotlib together).
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null ||
    for p in "${missing[@]}"; do
      DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$p" >/dev/null
    done
fi

# The test suite's node packages (also the node `ws` benchmark peer's).
if [ "$what" != build ] && [ "$what" != fuzz ] && [ "$what" != deb ]; then
  if [ ! -d tests/integration/node_modules ] || [ tests/integration/package-lock.json -nt tests/integration/node_modules ]; then
    echo "setup: installing the test suite's node packages"
    (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
