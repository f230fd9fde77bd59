#!/usr/bin/env bash
# Builds the browser client (clients/js) and copies its bundle into web/ (served by
# herald --web-root web as /herald.js and /herald.min.js). Installs the client's npm
# devDependencies with `npm ci` when missing. Idempotent; does nothing when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
js=clients/js
if ! command -v npm >/dev/null; then
  echo "build-web: installing nodejs and npm"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d "$js/node_modules" ] || [ "$js/package-lock.json" -nt "$js/node_modules" ]; then
  echo "build-web: installing the client's build tools (npm ci)"
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$js/node_modules"
fi
stale=0
[ -f "$js/dist/herald.min.js" ] || stale=1
if [ $stale = 0 ] && [ -n "$(find "$js/src" "$js/package.json" "$js/tsconfig.json" -newer "$js/dist/herald.min.js" -print -quit)" ]; then stale=1; fi
if [ $stale = 1 ]; then
  echo "build-web: building clients/js"
  (cd "$js" && npm run --silent build)
fi
for f in herald.js herald.min.js; do
  cmp -s "$js/dist/$f" "web/$f" || cp "$js/dist/$f" "web/$f"
done
