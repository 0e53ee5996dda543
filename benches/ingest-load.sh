#!/usr/bin/env bash
# Correlator ingest load bench: sustained alerts/s into ClickHouse and p50/p99 latency from
# POST to incident visible in ClickHouse. Starts its own clickhouse-server and correlator
# (release build), posts pre-generated zstd NDJSON bodies from several client threads.
# Usage: benches/ingest-load.sh [--alerts N] [--batch N] [--clients N] [--keys N]
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench ingest_load -- "$@"
