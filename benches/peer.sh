#!/usr/bin/env bash
# Chameleon's forecasts against statsforecast's AutoETS, AutoTheta and SeasonalNaive on the
# very windows benches/forecast_accuracy.sh scores (same series, origins, 7-day histories and
# 1-hour horizons). Run forecast_accuracy.sh first: this reads its imported CSVs in $OUT
# (default target/accuracy), writes each set's windows there, and runs benches/peer.py in a
# virtualenv ($VENV, default target/peer-venv; statsforecast from PyPI).
# $EVERY keeps origins 0, EVERY, 2·EVERY, … (default 4: 6 of the 24 origins, 28 h apart, so
# every fourth hour of the day): AutoETS with a daily season takes seconds per window.
# Usage: bash benches/peer.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-target/accuracy}"
VENV="${VENV:-target/peer-venv}"
ORIGINS="${ORIGINS:-24}"
SPACING="${SPACING:-7h}"
EVERY="${EVERY:-4}"
BIN=target/release/chameleon
cargo build --release --quiet
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet statsforecast==2.1.1

sets=()
for set in bitbrains faststorage azure nab; do
    [ -f "$OUT/$set.csv" ] || { echo "$OUT/$set.csv missing: run benches/forecast_accuracy.sh first" >&2; exit 1; }
    $BIN forecast --telemetry "$OUT/$set.csv" --evaluate --origins "$ORIGINS" \
        --origin-spacing "$SPACING" --horizon 1h --windows "$OUT/$set.windows.csv" >/dev/null
    sets+=("$set=$OUT/$set.windows.csv")
done
"$VENV/bin/python" benches/peer.py --every "$EVERY" "${sets[@]}"
