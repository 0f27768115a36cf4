#!/usr/bin/env bash
# Wall time and peak memory of a durable `chameleon apply` (sim backend) of a large plan:
# a synthetic fleet of N instances (N/20 hosts, 2 days of telemetry), planned with the
# shipped model file allowing N/2 changes and N/100 migrations, applied from a fresh fleet
# file and no ledger, in DIR (default $TMPDIR or /tmp; /dev/shm leaves out the disk).
# Usage: cargo build --release && bash benches/apply_scale.sh [N] [DIR]
set -euo pipefail
n=${1:-2000}
base=${2:-${TMPDIR:-/tmp}}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/target/release/chameleon
w=$(mktemp -d -p "$base")
trap 'rm -rf "$w"' EXIT
cd "$w"
"$bin" scenario --instances "$n" --hosts $((n / 20)) --cells $(((n + 1999) / 2000)) \
    --days 2 --seed 3 --out-dir . > /dev/null 2>&1
sed "s/^max_changes = .*/max_changes = $((n / 2))/; s/^max_migrations = .*/max_migrations = $((n / 100))/" \
    "$root/models/default.toml" > model.toml
plan=$("$bin" plan --fleet fleet.toml --telemetry telemetry.csv --model model.toml \
    --now 2024-01-03T00:00:00Z --out-dir . 2> /dev/null)
actions=$(grep -c '^\[\[action' "$plan")
/usr/bin/time -f "%e s wall, %M KB peak RSS" "$bin" apply "$plan" --fleet fleet.toml \
    --now 2024-01-03T00:05:00Z --backend sim 2>&1 > /dev/null | tail -1 |
    sed "s|^|$n instances, $actions actions, in $base: |"
