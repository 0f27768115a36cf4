#!/usr/bin/env bash
# Replay evaluation on the public traces: imports ../shared/data (Bitbrains cpu, mem
# and net; Azure cpu with 4 cores; NAB cpu with 2 cores), all shifted to start at
# 2024-03-04, keeps the first $DAYS days, places each set on a `fleet synth` fleet
# at $OVERCOMMIT, and replays every strategy over the days after the first two
# (15-minute intervals). CREDITS=frozen stops balances following usage (an ablation).
# Reports, plots and tables go to $OUT (default target/replay).
# Usage: bash benches/replay_eval.sh   (data from $CHAMELEON_DATA)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA="${CHAMELEON_DATA:-../shared/data}"
OUT="${OUT:-target/replay}"
DAYS="${DAYS:-4}"
OVERCOMMIT="${OVERCOMMIT:-1.3}"
CREDITS="${CREDITS:-usage}"
START=2024-03-04T00:00:00Z
BIN=target/release/chameleon
mkdir -p "$OUT"
cargo build --release --quiet

$BIN import bitbrains "$DATA"/bitbrains-rnd/2013-8/*.csv --start "$START" --out "$OUT/bitbrains-all.csv"
$BIN import azure "$DATA"/azure-vm-cpu-2017/vm_*.csv --cores 4 --start "$START" --out "$OUT/azure-all.csv"
$BIN import nab "$DATA"/nab-aws-cloudwatch/*/*cpu_utilization*.csv --cores 2 --start "$START" \
    --out "$OUT/nab-all.csv"

# The first $DAYS days (timestamps are RFC 3339 UTC, so they compare as text).
END=$(date -u -d "${START%Z} UTC + $DAYS days" +%Y-%m-%dT%H:%M:%SZ)
REPLAY_START=$(date -u -d "${START%Z} UTC + 2 days" +%Y-%m-%dT%H:%M:%SZ)
declare -A HOSTS=([bitbrains]=3 [azure]=6 [nab]=2)
for set in bitbrains azure nab; do
    awk -F, -v end="$END" 'NR == 1 || $1 < end' "$OUT/$set-all.csv" >"$OUT/$set.csv"
    $BIN fleet synth --telemetry "$OUT/$set.csv" --hosts "${HOSTS[$set]}" \
        --overcommit "$OVERCOMMIT" --seed 7 --out "$OUT/$set.fleet.toml"
    echo "== $set: ${HOSTS[$set]} hosts, overcommit $OVERCOMMIT, replay $REPLAY_START .. $END"
    $BIN replay --fleet "$OUT/$set.fleet.toml" --telemetry "$OUT/$set.csv" \
        --strategies static,reactive,vpa,greedy,mip,oracle --interval 15m \
        --start "$REPLAY_START" --end "$END" --credits "$CREDITS" \
        --report "$OUT/$set.json" --plot "$OUT/$set.svg" | tee "$OUT/$set.txt"
done
