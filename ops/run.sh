#!/usr/bin/env bash
# The main job with embedded defaults: builds outflow, starts the server (SQLite and a generated
# CA under ./data, listening on 127.0.0.1:8080), creates an operator token and prints where to
# sign in. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/install-deps.sh
cargo build --release --locked --bin outflow
bin=target/release/outflow
export OUTFLOW_DATA_DIR="${OUTFLOW_DATA_DIR:-./data}"
token=$("$bin" token create --role operator --name "run-$(date +%s)" | tail -n 1)
"$bin" serve &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 50); do
  curl -fsS "http://${OUTFLOW_LISTEN:-127.0.0.1:8080}/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
cat <<MSG

outflow is running: http://${OUTFLOW_LISTEN:-127.0.0.1:8080}/
Sign in with this operator token (also valid for the API as a Bearer token):
  $token

MSG
wait $server
