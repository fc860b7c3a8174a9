#!/usr/bin/env bash
# Installs what building and testing outflow needs on a fresh Debian machine. Idempotent and
# quick when everything is present: apt and pip run only for what is missing.
set -euo pipefail

need_apt=()
command -v cc >/dev/null || need_apt+=(build-essential)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v kcat >/dev/null || need_apt+=(kcat)
command -v nft >/dev/null || need_apt+=(nftables)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v keytool >/dev/null || need_apt+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need_apt+=(maven)
command -v unzip >/dev/null || need_apt+=(unzip)
# Headless browser for browser_e2e (driven by playwright-core; no browser download).
command -v chromium >/dev/null || need_apt+=(chromium)
command -v node >/dev/null || need_apt+=(nodejs npm)
# A real Alertmanager for the operator alert test (run by the test on loopback only).
command -v prometheus-alertmanager >/dev/null || need_apt+=(prometheus-alertmanager)
# Headers for the vendored librdkafka build (rdkafka with cmake-build,ssl); PostgreSQL for the
# store's second backend (the tests start their own server with initdb + pg_ctl).
for pkg in libssl-dev zlib1g-dev libcurl4-openssl-dev postgresql; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  echo "install-deps: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! python3 -c 'import confluent_kafka' 2>/dev/null; then
  echo "install-deps: pip install confluent-kafka"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore confluent-kafka
fi

# The OpenAPI conformance test: schemathesis fuzzes the served document, openapi-spec-validator
# checks it is valid OpenAPI. Pinned: the test's expectations follow their checks.
if ! schemathesis --version 2>/dev/null | grep -q 'version 4.32.5$' || ! command -v openapi-spec-validator >/dev/null; then
  echo "install-deps: pip install schemathesis openapi-spec-validator"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
    'schemathesis==4.32.5' 'openapi-spec-validator==0.9.0'
fi

# The access-log formats test applies the bundle's Logstash grok with pygrok. Pinned: the patterns
# it ships (grok-patterns) are what the test resolves the template's %{...} names with.
if ! python3 -c 'import importlib.metadata as m; assert m.version("pygrok") == "1.0.0"' 2>/dev/null; then
  echo "install-deps: pip install pygrok"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore 'pygrok==1.0.0'
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ ! -d "$here/tests/browser/node_modules/playwright-core" ]]; then
  echo "install-deps: npm ci (playwright-core for the browser test)"
  npm ci --prefix "$here/tests/browser" --no-audit --no-fund --silent
fi

command -v cargo >/dev/null || { echo "install-deps: cargo (Rust >= 1.94) is required" >&2; exit 1; }
