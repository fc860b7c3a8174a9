#!/usr/bin/env bash
# Runs the whole test suite: unit, in-process API/dashboard, and end-to-end tests that drive the
# real binary with openssl, keytool, confluent-kafka and schemathesis. Installs missing tools first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/install-deps.sh
cargo test --workspace --locked "$@"
