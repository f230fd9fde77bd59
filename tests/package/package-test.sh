#!/usr/bin/env bash
# The Debian package, installed for real (CTest `package`, docs/operations.md):
#   1. builds it with scripts/package.sh (or takes PACKAGE_TEST_DEB, e.g. what `make deb` built);
#   2. installs it with dpkg -i, checks the files (binary, conffile, unit, man page, docs),
#      the `herald` system user and `systemd-analyze verify` of the unit;
#   3. starts the installed binary with the installed configuration as the `herald` user
#      (systemd is not PID 1 in CI containers: the unit's command line, run directly, on a
#      free port) and checks /healthz, /readyz, /metrics and a SIGTERM drain;
#   4. reinstalls it over a changed conffile (kept), then purges it and checks that its
#      files are gone.
# The package is purged on the way out whatever happens, and the `herald` user removed if
# this test created it. Root only (exit 77: skipped otherwise), and skipped when a herald
# package is already installed: a real installation is left alone.
# Environment: PACKAGE_TEST_DEB (a .deb to test), else PACKAGE_TEST_BUILD_TYPE (default Release) and
# PACKAGE_TEST_BUILD_DIR (default build-package) for scripts/package.sh.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
cd "$src"

skip() { echo "package test: skipped: $*"; exit 77; }
fail() { echo "package test: FAIL: $*" >&2; exit 1; }
step() { echo "package test: $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i)"
for c in dpkg dpkg-deb systemd-analyze man curl setpriv; do
  command -v "$c" >/dev/null || skip "$c not found"
done
if dpkg-query -W -f='${Status}' herald 2>/dev/null | grep -q 'ok installed'; then
  skip "a herald package is installed on this machine; not touching it"
fi
[ ! -e /usr/bin/herald ] || skip "/usr/bin/herald exists and belongs to no package"

start=$SECONDS
tmp=$(mktemp -d)
installed=0
pid=
user_existed=0
getent passwd herald >/dev/null && user_existed=1

cleanup() {
  local status=$?
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  if [ "$installed" = 1 ]; then
    dpkg --purge herald >/dev/null 2>&1 || echo "package test: cleanup: dpkg --purge herald failed" >&2
  fi
  if [ "$user_existed" = 0 ] && getent passwd herald >/dev/null; then
    deluser --system --quiet herald >/dev/null 2>&1 || userdel herald 2>/dev/null || true
    getent group herald >/dev/null && { delgroup --system --quiet herald >/dev/null 2>&1 || groupdel herald 2>/dev/null || true; }
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local limit=$1 i
  shift
  for ((i = 0; i < limit * 10; i++)); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  return 1
}

# --- 1. the package --------------------------------------------------------------------
deb=${PACKAGE_TEST_DEB:-}
if [ -z "$deb" ]; then
  step "building the package (scripts/package.sh, ${PACKAGE_TEST_BUILD_TYPE:-Release})"
  deb=$(DEB_BUILD_TYPE=${PACKAGE_TEST_BUILD_TYPE:-Release} DEB_BUILD_DIR=${PACKAGE_TEST_BUILD_DIR:-build-package} \
    scripts/package.sh | tail -n 1)
fi
[ -f "$deb" ] || fail "no package at '$deb'"
step "package $deb ($((SECONDS - start)) s)"
[ "$(dpkg-deb -f "$deb" Package)" = herald ] || fail "the package is not named herald"
depends=$(dpkg-deb -f "$deb" Depends)
for d in adduser libboost-json1.81.0 libboost-url1.81.0 libboost-program-options1.81.0 libhiredis0.14 libssl3 zlib1g; do
  grep -q "$d" <<<"$depends" || fail "Depends lacks $d: $depends"
done

# --- 2. installed files ----------------------------------------------------------------
step "dpkg -i"
installed=1
if ! dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1; then
  step "dpkg -i left dependencies to install: apt-get install -f"
  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -f -y -qq >>"$tmp/dpkg.log" 2>&1 ||
    { cat "$tmp/dpkg.log" >&2; fail "the package did not install"; }
fi
dpkg-query -W -f='${Status}' herald | grep -q 'install ok installed' || fail "herald is not installed"

[ -x /usr/bin/herald ] || fail "/usr/bin/herald is not an executable"
[ "$(/usr/bin/herald --version)" = "herald $(dpkg-deb -f "$deb" Version | sed 's/-[^-]*$//')" ] ||
  fail "herald --version: $(/usr/bin/herald --version)"
[ -f /etc/herald/herald.conf ] || fail "no /etc/herald/herald.conf"
dpkg-query -W -f='${Conffiles}\n' herald | grep -q '^ /etc/herald/herald.conf ' ||
  fail "/etc/herald/herald.conf is not a conffile"
# The packaged configuration documents every option of the example, with the same value.
grep -E '^#? ?[a-z-]+ =( |$)' config/herald.conf.example | sort >"$tmp/example-keys"
grep -E '^#? ?[a-z-]+ =( |$)' /etc/herald/herald.conf | sort >"$tmp/packaged-keys"
diff -u "$tmp/example-keys" "$tmp/packaged-keys" >&2 ||
  fail "/etc/herald/herald.conf and config/herald.conf.example list different options"
[ "$(stat -c '%U:%G %a' /etc/herald/herald.conf)" = "root:herald 640" ] ||
  fail "/etc/herald/herald.conf is $(stat -c '%U:%G %a' /etc/herald/herald.conf), not root:herald 640"
grep -qx 'listen = 127.0.0.1:8080' /etc/herald/herald.conf || fail "the packaged listen is not 127.0.0.1:8080"
grep -qx 'broker = memory' /etc/herald/herald.conf || fail "the packaged broker is not memory"

unit=/lib/systemd/system/herald.service
[ -f "$unit" ] || fail "no $unit"
grep -qx 'ExecStart=/usr/bin/herald --config /etc/herald/herald.conf' "$unit" || fail "unexpected ExecStart in $unit"
for key in User=herald NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
  PrivateDevices=yes Restart=on-failure LimitNOFILE=65536 KillSignal=SIGTERM 'CapabilityBoundingSet='; do
  grep -qx "$key" "$unit" || fail "$unit lacks $key"
done
# The stop timeout leaves the default drain its window and grace period (5 + 2 s).
stop_timeout=$(sed -n 's/^TimeoutStopSec=//p' "$unit")
drain=$(sed -n 's/^drain-seconds = //p' /etc/herald/herald.conf)
awk -v t="$stop_timeout" -v d="$drain" 'BEGIN { exit !(t > d + 2) }' ||
  fail "TimeoutStopSec=$stop_timeout is not above drain-seconds ($drain) + 2 s"
step "systemd-analyze verify $unit"
verify_status=0
systemd-analyze verify "$unit" >"$tmp/verify.log" 2>&1 || verify_status=$?
cat "$tmp/verify.log"
[ "$verify_status" -eq 0 ] || fail "systemd-analyze verify: exit $verify_status"
! grep -q 'herald' "$tmp/verify.log" || fail "systemd-analyze verify complains about herald.service"

man=/usr/share/man/man1/herald.1.gz
[ -f "$man" ] || fail "no $man"
# man-db writes plain text (no overstriking) when its output is not a terminal; the C
# locale keeps the hyphens ASCII.
LC_ALL=C MANWIDTH=200 man -l "$man" >"$tmp/man.txt" 2>"$tmp/man.err" || fail "man -l $man: $(cat "$tmp/man.err")"
grep -q '^OPTIONS' "$tmp/man.txt" || fail "the man page has no OPTIONS section"
# Every option of herald --help, with its default, is in the man page.
/usr/bin/herald --help | grep -oE '^  (-h \[ )?--[a-z-]+( arg)?( \(=[^)]*\))?' | sed 's/^  //' >"$tmp/options"
[ "$(wc -l <"$tmp/options")" -gt 40 ] || fail "herald --help lists only $(wc -l <"$tmp/options") options"
while read -r opt; do
  grep -qF -- "$opt" "$tmp/man.txt" || fail "the man page lacks '$opt'"
done <"$tmp/options"
for f in /usr/share/doc/herald/operations.md /usr/share/doc/herald/config.md /usr/share/doc/herald/prometheus/herald-alerts.yml; do
  [ -s "$f" ] || fail "no $f"
done

entry=$(getent passwd herald) || fail "postinst created no herald user"
uid=$(cut -d: -f3 <<<"$entry")
[ "$uid" -lt 1000 ] || fail "the herald user is not a system user (uid $uid)"
case "$(cut -d: -f7 <<<"$entry")" in */nologin | */false) ;; *) fail "the herald user has a login shell: $entry" ;; esac

# --- 3. the installed binary with the installed configuration, as herald ---------------
step "starting /usr/bin/herald --config /etc/herald/herald.conf as herald (on a free port)"
# The unit's command line, with the port overridden (flags win over the file) and the
# unit's open-files limit.
(
  ulimit -n 65536 2>/dev/null || true
  exec setpriv --reuid=herald --regid=herald --init-groups --no-new-privs \
    /usr/bin/herald --config /etc/herald/herald.conf --listen 127.0.0.1:0 --drain-seconds 1
) >"$tmp/herald.out" 2>"$tmp/herald.err" &
pid=$!
wait_for 15 grep -q 'listening on' "$tmp/herald.out" ||
  { cat "$tmp/herald.out" "$tmp/herald.err" >&2; fail "herald did not start within 15 s"; }
url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$tmp/herald.out" | head -n 1)
[ -n "$url" ] || fail "no address in: $(cat "$tmp/herald.out")"
[ "$(ps -o user= -p "$pid")" = herald ] || fail "herald runs as $(ps -o user= -p "$pid"), not herald"
[ "$(curl -s --max-time 5 "$url/healthz")" = '{"status":"ok"}' ] || fail "/healthz at $url"
[ "$(curl -s --max-time 5 "$url/readyz")" = '{"status":"ready"}' ] || fail "/readyz at $url"
curl -s --max-time 5 -X POST "$url/api/publish" -d '{"channel":"package","data":"installed"}' | grep -q '"offset":1' ||
  fail "POST /api/publish at $url"
curl -s --max-time 5 "$url/metrics" | grep -qx 'herald_publishes_total 1' || fail "/metrics at $url"
grep -q 'event=start' "$tmp/herald.err" || fail "no start line in the log: $(cat "$tmp/herald.err")"
step "SIGTERM: herald drains and exits 0"
kill -TERM "$pid"
(sleep 10 && kill -KILL "$pid" 2>/dev/null) &
watchdog=$!
herald_status=0
wait "$pid" || herald_status=$?
kill "$watchdog" 2>/dev/null || true
pid=
[ "$herald_status" -ne 137 ] || fail "herald still ran 10 s after SIGTERM (killed)"
[ "$herald_status" -eq 0 ] || fail "herald exited with $herald_status after SIGTERM: $(cat "$tmp/herald.err")"
grep -q 'event=drain_end reason=drained' "$tmp/herald.err" || fail "no drain_end in the log: $(cat "$tmp/herald.err")"

# --- 4. an upgrade keeps a changed conffile; purge removes everything ------------------
step "dpkg -i again over a changed /etc/herald/herald.conf"
echo '# changed by the package test' >>/etc/herald/herald.conf
dpkg -i --force-confold "$deb" >"$tmp/dpkg2.log" 2>&1 || { cat "$tmp/dpkg2.log" >&2; fail "reinstall failed"; }
tail -n 1 /etc/herald/herald.conf | grep -q 'changed by the package test' || fail "the reinstall replaced a changed conffile"
[ "$(stat -c '%U:%G %a' /etc/herald/herald.conf)" = "root:herald 640" ] || fail "the reinstall changed the conffile's owner or mode"

step "dpkg --purge herald"
dpkg --purge herald >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log" >&2; fail "dpkg --purge herald failed"; }
installed=0
! dpkg-query -W -f='${Status}' herald 2>/dev/null | grep -q 'ok installed' || fail "herald still installed"
for f in /usr/bin/herald /etc/herald "$unit" "$man" /usr/share/doc/herald; do
  [ ! -e "$f" ] || fail "$f is still there after the purge"
done
step "passed in $((SECONDS - start)) s"
