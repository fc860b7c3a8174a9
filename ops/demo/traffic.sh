#!/usr/bin/env bash
# Sample CDN traffic: realistic access-log lines (the format the bundle's Logstash grok expects)
# produced to a tenant topic through the internal listener, as the CDN's edges would.
#
#   ops/demo/traffic.sh TOPIC [LINES_PER_SECOND]
#
# Needs the exports of ops/kafka/broker.sh up (OUTFLOW_KAFKA_BOOTSTRAP, OUTFLOW_KAFKA_CA,
# OUTFLOW_PRODUCER_CERT, OUTFLOW_PRODUCER_KEY). Runs until killed.
set -euo pipefail
topic=${1:?usage: traffic.sh TOPIC [LINES_PER_SECOND]}
rate=${2:-5}
python3 -u - "$rate" <<'PY' | kcat -b "$OUTFLOW_KAFKA_BOOTSTRAP" -X security.protocol=ssl \
  -X ssl.ca.location="$OUTFLOW_KAFKA_CA" -X ssl.certificate.location="$OUTFLOW_PRODUCER_CERT" \
  -X ssl.key.location="$OUTFLOW_PRODUCER_KEY" -X linger.ms=200 -P -t "$topic"
import random, sys, time
rate = float(sys.argv[1])
paths = ["/", "/index.html", "/img/logo.png", "/css/site.css", "/js/app.js", "/api/v1/items?page=2",
         "/video/seg-0042.ts", "/favicon.ico", "/fonts/inter.woff2", "/search?q=caf%C3%A9"]
agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
          "curl/8.5.0", "Googlebot/2.1 (+http://www.google.com/bot.html)"]
pops = ["mad1", "bcn1", "lis1", "par2", "fra1"]
while True:
    now = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    status = random.choices([200, 206, 304, 404, 500], [80, 5, 10, 4, 1])[0]
    size = 0 if status == 304 else random.randint(200, 2_000_000)
    print(f'198.51.100.{random.randint(1, 254)} - - [{now}] "GET {random.choice(paths)} HTTP/{random.choice(["1.1", "2.0"])}" '
          f'{status} {size} "https://www.example.com/" "{random.choice(agents)}" www.example.com '
          f'{random.choice(["HIT", "MISS", "EXPIRED"])} {random.random() / 10:.3f} {random.choice(pops)}')
    time.sleep(1 / rate)
PY
