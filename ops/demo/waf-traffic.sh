#!/usr/bin/env bash
# Sample WAF audit records: ModSecurity v3 JSON (one record per request, 1-4 matched rules in
# `.transaction.messages[]`), keyed by tenant id, produced to the raw WAF topic through the
# internal listener, as the CDN's edges would. `outflow waf-split` turns them into one record
# per attack in c<N>_waf.
#
#   ops/demo/waf-traffic.sh TENANT [RECORDS_PER_SECOND] [RAW_TOPIC]
#
# Needs the exports of ops/kafka/broker.sh up. Runs until killed.
set -euo pipefail
tenant=${1:?usage: waf-traffic.sh TENANT [RECORDS_PER_SECOND] [RAW_TOPIC]}
rate=${2:-1}
topic=${3:-${OUTFLOW_WAF_RAW_TOPIC:-waf.audit.raw}}
python3 -u - "$tenant" "$rate" <<'PY' | kcat -b "$OUTFLOW_KAFKA_BOOTSTRAP" -X security.protocol=ssl \
  -X ssl.ca.location="$OUTFLOW_KAFKA_CA" -X ssl.certificate.location="$OUTFLOW_PRODUCER_CERT" \
  -X ssl.key.location="$OUTFLOW_PRODUCER_KEY" -X linger.ms=200 -K '|' -P -t "$topic"
import json, random, sys, time, uuid
tenant, rate = sys.argv[1], float(sys.argv[2])
rules = [
    ("942100", "SQL Injection Attack Detected via libinjection", "CRITICAL", "/search?q=1%27%20OR%201=1--"),
    ("941100", "XSS Attack Detected via libinjection", "CRITICAL", "/comment?text=%3Cscript%3Ealert(1)%3C/script%3E"),
    ("930120", "OS File Access Attempt", "CRITICAL", "/static/..%2f..%2fetc%2fpasswd"),
    ("920350", "Host header is a numeric IP address", "WARNING", "/"),
    ("913100", "Found User-Agent associated with security scanner", "CRITICAL", "/wp-login.php"),
    ("949110", "Inbound Anomaly Score Exceeded", "CRITICAL", "/admin"),
]
clients = ["203.0.113.7", "203.0.113.45", "198.51.100.23", "2001:db8::bad:1", "192.0.2.99"]
while True:
    picked = random.sample(rules, random.randint(1, 4))
    uri = picked[0][3]
    record = {"transaction": {
        "client_ip": random.choice(clients), "time_stamp": time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime()),
        "server_id": "edge-mad1", "client_port": random.randint(1024, 65535), "host_ip": "10.0.0.12", "host_port": 443,
        "unique_id": uuid.uuid4().hex,
        "request": {"method": "GET", "http_version": 1.1, "uri": uri,
                    "headers": {"Host": "www.example.com", "User-Agent": random.choice(["sqlmap/1.8", "Mozilla/5.0", "Nikto", "curl/8.5.0"]),
                                "Accept": "*/*"}},
        "response": {"http_code": 403, "headers": {"Content-Type": "text/html", "Server": "cdn"}},
        "producer": {"modsecurity": "ModSecurity v3.0.12 (Linux)", "connector": "ModSecurity-nginx v1.0.3",
                     "secrules_engine": "Enabled", "components": ["OWASP_CRS/4.7.0\""]},
        "messages": [{"message": msg, "details": {
            "match": "Matched \"Operator `Rx' with parameter ...\"", "reference": "o0,8v10,8", "ruleId": rid,
            "file": "/etc/modsecurity/crs/rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf", "lineNumber": "45",
            "data": "Matched Data: found within ARGS:q", "severity": "2" if sev == "CRITICAL" else "4",
            "ver": "OWASP_CRS/4.7.0", "rev": "", "tags": ["application-multi", "attack-generic", "paranoia-level/1"],
            "maturity": "0", "accuracy": "0"}} for rid, msg, sev, _ in picked],
    }}
    print(f"{tenant}|{json.dumps(record)}")
    time.sleep(1 / rate)
PY
