#!/usr/bin/env bash
# Builds the Debian package (make deb, docs/operations.md): herald configured with
# HERALD_PACKAGE=ON in its own build directory, then CPack's DEB generator. Prints the
# path of the .deb on its last line.
# Environment:
#   DEB_BUILD_DIR   build directory (default build-release, the `release` preset's)
#   DEB_BUILD_TYPE  CMake build type (default Release)
#   DEB_JOBS        ninja -j (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${DEB_BUILD_DIR:-build-release}
type=${DEB_BUILD_TYPE:-Release}
jobs=${DEB_JOBS:-2}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}

cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" -DBUILD_TESTING=OFF \
  -DHERALD_BUILD_BENCH=OFF -DHERALD_PACKAGE=ON >/dev/null
ninja -C "$dir" -j "$jobs"
rm -rf "$dir/package"
(cd "$dir" && cpack -G DEB >/dev/null) || {
  echo "package: cpack failed; details in $dir/package/_CPack_Packages/Linux/DEB/*.log" >&2
  exit 1
}
deb=$(ls "$dir"/package/herald_*.deb)
echo "package: $deb"
echo "$deb"
