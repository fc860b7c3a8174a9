#!/usr/bin/env bash
# Sample CDN traffic: realistic access-log lines in the configured access-log format (what the
# bundle's Logstash grok parses) produced to a tenant topic through the internal listener, as the
# CDN's edges would. The lines come from access_log.py beside this script.
#
#   ops/demo/traffic.sh TOPIC [LINES_PER_SECOND]
#
# The format is $OUTFLOW_ACCESS_LOG_FORMAT (the server's setting), cdn when unset. The client id
# in cdn lines is TOPIC's tenant id (c83 -> 83).
# Needs the exports of ops/kafka/broker.sh up (OUTFLOW_KAFKA_BOOTSTRAP, OUTFLOW_KAFKA_CA,
# OUTFLOW_PRODUCER_CERT, OUTFLOW_PRODUCER_KEY). Runs until killed.
set -euo pipefail
topic=${1:?usage: traffic.sh TOPIC [LINES_PER_SECOND]}
rate=${2:-5}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
format=${OUTFLOW_ACCESS_LOG_FORMAT:-cdn}
# Refuse an unknown format before kcat starts waiting for input.
python3 "$here/access_log.py" --format "$format" --count 0
python3 -u "$here/access_log.py" --format "$format" --client-id "${topic#c}" --rate "$rate" \
  | kcat -b "$OUTFLOW_KAFKA_BOOTSTRAP" -X security.protocol=ssl \
    -X ssl.ca.location="$OUTFLOW_KAFKA_CA" -X ssl.certificate.location="$OUTFLOW_PRODUCER_CERT" \
    -X ssl.key.location="$OUTFLOW_PRODUCER_KEY" -X linger.ms=200 -P -t "$topic"
