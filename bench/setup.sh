#!/usr/bin/env bash
# Installs what the benchmarks need on Debian 12, and nothing already there (the same
# way as scripts/setup.sh; make bench runs it through bench/standard.sh):
#   bench/setup.sh           the peers (nginx + libnginx-mod-nchan, Pushpin), Node.js and
#                            the `ws` package for the node peer, matplotlib for the report
#   bench/setup.sh profile   the above, plus valgrind and heaptrack (docs/benchmarks.md)
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-bench}
pkgs=(nginx libnginx-mod-nchan pushpin nodejs npm python3 python3-matplotlib)
[ "$what" = profile ] && pkgs+=(valgrind heaptrack)

missing=()
for p in "${pkgs[@]}"; do
  # nodejs may come from another source than Debian (it then provides npm itself).
  if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
  if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
  if [ "$p" = python3 ] && command -v python3 >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  # One by one if apt's resolver refuses the whole set at once (seen here with pushpin
  # and python3-matplotlib together).
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null ||
    for p in "${missing[@]}"; do
      DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$p" >/dev/null
    done
fi

# The node ws peer uses the `ws` package of the integration tests.
if [ ! -d tests/integration/node_modules/ws ]; then
  echo "bench setup: installing the test suite's node packages (for the ws peer)"
  (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
fi
