#!/usr/bin/env bash
# Forecast accuracy on the public traces: imports ../shared/data (Bitbrains Rnd and
# fastStorage CPU and memory, Azure CPU with 4 cores, NAB CPU files with 2 cores), then
# evaluates every method and the selection per data set and overall: 7-day history,
# 1-hour horizon, $ORIGINS origins $SPACING apart back from each series' end (default 24
# origins 7h apart: a week, every hour of the day once). Reports go to $OUT (default
# target/accuracy) as JSON.
# Usage: bash benches/forecast_accuracy.sh   (data from $CHAMELEON_DATA)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA="${CHAMELEON_DATA:-../shared/data}"
OUT="${OUT:-target/accuracy}"
ORIGINS="${ORIGINS:-24}"
SPACING="${SPACING:-7h}"
BIN=target/release/chameleon
mkdir -p "$OUT"
cargo build --release --quiet

$BIN import bitbrains "$DATA"/bitbrains-rnd/2013-8/*.csv --out "$OUT/bitbrains-all.csv"
grep -v ',net,' "$OUT/bitbrains-all.csv" >"$OUT/bitbrains.csv"
$BIN import bitbrains "$DATA"/bitbrains-faststorage/2013-8/*.csv --out "$OUT/faststorage-all.csv"
grep -v ',net,' "$OUT/faststorage-all.csv" | sed 's/^\([^,]*\),/\1,fast-/; 1s/.*/timestamp,instance,resource,value/' \
    >"$OUT/faststorage.csv"
$BIN import azure "$DATA"/azure-vm-cpu-2017/vm_*.csv --cores 4 --out "$OUT/azure.csv"
$BIN import nab "$DATA"/nab-aws-cloudwatch/*/*cpu_utilization*.csv \
    "$DATA"/nab-aws-cloudwatch/realAWSCloudwatch/grok_asg_anomaly.csv --cores 2 --out "$OUT/nab.csv"
{
    head -n 1 "$OUT/azure.csv"
    for set in bitbrains faststorage azure nab; do tail -n +2 "$OUT/$set.csv"; done
} >"$OUT/overall.csv"

for set in bitbrains faststorage azure nab overall; do
    echo "== $set"
    $BIN forecast --telemetry "$OUT/$set.csv" --evaluate --origins "$ORIGINS" \
        --origin-spacing "$SPACING" --horizon 1h --report "$OUT/$set.json"
done
