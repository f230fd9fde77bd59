#!/usr/bin/env bash
# `make run`: herald on 127.0.0.1:8080 serving the demo (web/), with the demo's backend
# (scripts/demo-producer.mjs on 127.0.0.1:8081: answers streamed into herald, and tokens
# so that presence names the chat's users). Extra arguments go to herald. Ctrl-C stops
# both (a second Ctrl-C skips herald's graceful drain).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
secret="$build/demo-token-secret"
if [ ! -s "$secret" ]; then
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$secret")
fi
# The producer follows herald's --listen and --api-key when they are among the arguments.
herald_url=http://127.0.0.1:8080
api_key=""
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --listen) herald_url="http://${args[i + 1]}" ;;
    --api-key) api_key="${args[i + 1]}" ;;
  esac
done
producer=""
if command -v node >/dev/null; then
  HERALD_API_KEY="$api_key" node scripts/demo-producer.mjs --token-secret-file "$secret" --herald "$herald_url" &
  producer=$!
fi
trap '[ -n "$producer" ] && kill "$producer" 2>/dev/null; true' EXIT
trap ':' INT TERM  # herald gets the signal too and drains; this script then cleans up
"$build/src/herald" --web-root web --token-key "hs256:@$secret" \
  --namespace demo:client_publish=true,presence=true,join_leave=true,history_size=1000 "$@"
