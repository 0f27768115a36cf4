#!/usr/bin/env bash
# The whole loop on the shipped fixtures: install build deps, build, plan, review, apply.
# Works on a fresh Debian/Ubuntu machine (run as root, or with sudo available).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
cargo build --release --quiet
bin=target/release/chameleon

work=$(mktemp -d)
cp fixtures/fleet.toml "$work/fleet.toml"
echo "== plan (fixtures: 12 real instances on 3 hosts, 3 days of telemetry)"
plan=$($bin plan --fleet "$work/fleet.toml" --telemetry fixtures/telemetry.csv \
    --now 2024-03-07T00:00:00Z --out-dir plans)
echo "$plan"
echo "== show"
$bin show "$plan"
echo "== compare"
$bin compare --fleet "$work/fleet.toml" --telemetry fixtures/telemetry.csv --now 2024-03-07T00:00:00Z
echo "== apply (to a copy of the fleet in $work)"
$bin apply "$plan" --fleet "$work/fleet.toml" --now 2024-03-07T00:05:00Z
diff -u fixtures/fleet.toml "$work/fleet.toml" | head -40 || true
echo "== ledger (credit transfers)"
$bin ledger --fleet "$work/fleet.toml" | grep -v " seed " || true
