#!/usr/bin/env bash
# The main job with embedded defaults: a local real Kafka broker, the outflow server (SQLite and
# its CA under ./data, http://127.0.0.1:8080), a demo tenant 83 with streaming active, and sample
# access-log traffic into c83, and ModSecurity audit records split into c83_waf by the WAF
# splitter. Prints where to sign in. Ctrl-C stops everything. OUTFLOW_ACCESS_LOG_FORMAT (cdn by
# default; combined_extended) chooses the line format of both the server's bundles and the traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/install-deps.sh
cargo build --release --locked --bin outflow
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/outflow"
export OUTFLOW_DATA_DIR="${OUTFLOW_DATA_DIR:-$PWD/data}"
listen="${OUTFLOW_LISTEN:-127.0.0.1:8080}"
mkdir -p "$OUTFLOW_DATA_DIR"

eval "$(OUTFLOW_BIN="$bin" bash ops/kafka/broker.sh up "$OUTFLOW_DATA_DIR/kafka")"
token=$("$bin" token create --role operator --name "run-$(date +%s)" | tail -n 1)
"$bin" serve --listen "$listen" &
server=$!
traffic=""
waf_traffic=""
splitter=""
cleanup() {
  for pid in $traffic $waf_traffic; do
    pkill -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
  done
  # Each step may fail (the process already gone); none may stop the broker from being stopped.
  if [[ -n "$splitter" ]]; then kill "$splitter" 2>/dev/null && wait "$splitter" 2>/dev/null || true; fi
  kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  bash ops/kafka/broker.sh down "$OUTFLOW_DATA_DIR/kafka"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 100); do
  curl -fsS "http://$listen/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

api() { curl -fsS -o /dev/null -H "Authorization: Bearer $token" -H 'content-type: application/json' "$@" || true; }
api -d '{"id": 83, "name": "Demo Customer"}' "http://$listen/api/v1/tenants"
api -X PUT "http://$listen/api/v1/tenants/83/streaming"
bash ops/demo/traffic.sh c83 5 &
traffic=$!
# The WAF splitter turns raw audit records (one per request) into one record per attack in c83_waf.
"$bin" waf-split --create-topics 2 --instance-id demo-splitter 2> "$OUTFLOW_DATA_DIR/waf-split.log" &
splitter=$!
bash ops/demo/waf-traffic.sh 83 1 &
waf_traffic=$!

cat <<MSG

outflow is running: http://$listen/   (Kafka: public $OUTFLOW_BROKERS, internal $OUTFLOW_KAFKA_BOOTSTRAP)
Sign in with this operator token (also valid for the API as a Bearer token):
  $token
Tenant 83 ("Demo Customer") is active and receives sample access logs in c83 (format
${OUTFLOW_ACCESS_LOG_FORMAT:-cdn}) and WAF events (split per attack by outflow waf-split) in
c83_waf. Its Streaming tab shows throughput, the newest records and the top WAF rules; download
its zip and run consumer.py to see a consumer group and its lag appear.

MSG
wait "$server"
