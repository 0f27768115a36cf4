#!/usr/bin/env bash
# Wall time of a durable `chameleon apply` of the fixture plan (14 actions), with the sim
# backend and with the exec backend running `true` for every op, in a directory on disk
# and in /dev/shm. Each apply starts from a fresh fleet file and no ledger.
# Usage: cargo build --release && bash benches/apply.sh [RUNS]
set -euo pipefail
runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/target/release/chameleon
for base in "${TMPDIR:-/tmp}" /dev/shm; do
    [ -d "$base" ] || continue
    w=$(mktemp -d -p "$base")
    cp "$root/fixtures/fleet.toml" "$root/fixtures/telemetry.csv" "$w"
    cd "$w"
    plan=$("$bin" plan --fleet fleet.toml --telemetry telemetry.csv --now 2024-03-07T00:00:00Z --out-dir . 2>/dev/null)
    printf '[resize.cpu]\napply = "true"\n[resize.mem]\napply = "true"\n[resize.net]\napply = "true"\n[migrate]\napply = "true"\n' > exec.toml
    for backend in sim exec; do
        total=0
        for _ in $(seq "$runs"); do
            cp "$root/fixtures/fleet.toml" fleet.toml
            rm -f fleet.ledger.sqlite*
            start=$(date +%s%N)
            "$bin" apply "$plan" --fleet fleet.toml --now 2024-03-07T00:05:00Z \
                --backend "$backend" --exec-config exec.toml > /dev/null
            total=$((total + $(date +%s%N) - start))
        done
        echo "$base $backend: $((total / runs / 1000000)) ms per apply of 14 actions (mean of $runs)"
    done
    cd "$root"
    rm -rf "$w"
done
