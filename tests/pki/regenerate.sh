#!/usr/bin/env bash
# Regenerates the committed test PKI in this directory (CA, agent server certificate, companion
# client certificates per cluster identity, and the bad ones the mTLS tests use).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run --quiet -p bgplb-tests --bin bgplb-testpki -- tests/pki
