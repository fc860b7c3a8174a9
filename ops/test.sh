#!/usr/bin/env bash
# Runs the whole test suite: unit, in-process API/dashboard/store, and end-to-end tests that drive
# the real binary with openssl, keytool, confluent-kafka and schemathesis (SQLite, the embedded
# default); then the in-process suites again on PostgreSQL, in a throwaway cluster that
# pg_virtualenv (Debian's postgresql-common) creates and removes. Installs missing tools first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/install-deps.sh
cargo test --workspace --locked "$@"
pg_virtualenv env OUTFLOW_TEST_DATABASE=postgres \
  cargo test --locked -p outflow --test store --test api --test dashboard --test access_matrix \
  --test allowlist_api --test alert_rules --test alert_delivery --test secrets_at_rest --test replicas --test failover \
  --test cluster "$@"
