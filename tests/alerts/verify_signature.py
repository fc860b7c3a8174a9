#!/usr/bin/env python3
"""Verifies a Standard Webhooks signature independently of outflow, with Python's hmac.

usage: verify_signature.py SECRET WEBHOOK_ID WEBHOOK_TIMESTAMP BODY_FILE SIGNATURE_HEADER
Exits 0 when one of the header's space-separated `v1,<base64>` signatures is the HMAC-SHA256,
keyed with the base64 after `whsec_`, of "id.timestamp.body"; 1 otherwise.
"""
import base64
import hashlib
import hmac
import sys

secret, msg_id, timestamp, body_file, header = sys.argv[1:6]
key = base64.b64decode(secret.removeprefix("whsec_"))
with open(body_file, "rb") as f:
    body = f.read()
signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
for signature in header.split(" "):
    version, _, value = signature.partition(",")
    if version == "v1" and hmac.compare_digest(value, expected):
        sys.exit(0)
print(f"no signature in {header!r} matches", file=sys.stderr)
sys.exit(1)
