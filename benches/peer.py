"""Chameleon's forecasts against a peer library's on exactly the windows Chameleon scored.

Reads the windows that `chameleon forecast --evaluate --windows FILE` wrote (each window's
history on the regular grid before spike cleaning, what followed, and the selection's point
forecast), runs statsforecast's AutoETS, AutoTheta and SeasonalNaive (daily season) on the
same histories, and scores every forecaster against seasonal naive on the raw history: the
geometric mean of MAE ratios (`rel_geo`, with a 90% bootstrap interval over series), the same
with each log ratio clipped to +-2 (`rel_clip`), and the share of windows beating seasonal
naive. Run by benches/peer.sh; usage: python benches/peer.py [--every K] SET=FILE ...
"""

import argparse
import csv
import math
import random
import sys
import time
from multiprocessing import Pool

import numpy as np
from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive

PEERS = {
    "AutoETS": lambda s: AutoETS(season_length=s),
    "AutoTheta": lambda s: AutoTheta(season_length=s),
    "SeasonalNaive": lambda s: SeasonalNaive(season_length=s),
}


def read(path, every):
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if int(row["origin"]) % every:
                continue
            yield {
                "series": (row["instance"], row["resource"]),
                "season": 86400 // int(row["step_seconds"]),
                "history": np.array([float(v) for v in row["history"].split()]),
                "actual": np.array([float(v) for v in row["actual"].split()]),
                "chameleon": np.array([float(v) for v in row["selected"].split()]),
            }


def naive(history, season, h):
    """Seasonal naive on the raw history, as Chameleon's `rel_raw` yardstick computes it."""
    if season > 0 and len(history) >= season:
        start = len(history) - season
        return np.array([history[start + k % season] for k in range(h)])
    return np.full(h, history[-1])


def score(w):
    h = len(w["actual"])
    out = {"series": w["series"], "mae": {}, "seconds": {}}
    out["mae"]["naive"] = float(np.mean(np.abs(naive(w["history"], w["season"], h) - w["actual"])))
    out["mae"]["chameleon"] = float(np.mean(np.abs(w["chameleon"] - w["actual"])))
    for name, make in PEERS.items():
        clock = time.perf_counter()
        try:
            point = make(w["season"]).forecast(y=w["history"], h=h)["mean"]
        except Exception:  # a peer that fails on a window scores as seasonal naive
            point = naive(w["history"], w["season"], h)
        out["seconds"][name] = time.perf_counter() - clock
        out["mae"][name] = float(np.mean(np.abs(np.asarray(point) - w["actual"])))
    return out


def log_ratios(scores, name, clip):
    ratios = []
    for s in scores:
        r = math.log((s["mae"][name] + 1e-9) / (s["mae"]["naive"] + 1e-9))
        ratios.append(max(-2.0, min(2.0, r)) if clip else r)
    return ratios


def interval(scores, name, rounds=2000):
    by_series = {}
    for s, r in zip(scores, log_ratios(scores, name, False)):
        by_series.setdefault(s["series"], []).append(r)
    groups = list(by_series.values())
    rng = random.Random(7)
    means = []
    for _ in range(rounds):
        pick = [r for _ in groups for r in rng.choice(groups)]
        means.append(math.exp(sum(pick) / len(pick)))
    means.sort()
    return means[int(0.05 * rounds)], means[int(0.95 * rounds) - 1]


def table(label, scores):
    print(f"== {label}: {len(scores)} windows, {len({s['series'] for s in scores})} series")
    print(f"{'forecaster':<14} {'rel_geo':>8} {'90% interval':>16} {'rel_clip':>9} {'beats_sn':>9} {'s/window':>9}")
    for name in ["chameleon", *PEERS]:
        logs = log_ratios(scores, name, False)
        clipped = log_ratios(scores, name, True)
        lo, hi = interval(scores, name)
        beats = sum(r < 0 for r in logs) / len(logs)
        secs = np.mean([s["seconds"].get(name, float("nan")) for s in scores])
        print(
            f"{name:<14} {math.exp(np.mean(logs)):>8.3f} {f'[{lo:.3f}, {hi:.3f}]':>16}"
            f" {math.exp(np.mean(clipped)):>9.3f} {beats:>9.3f} {secs:>9.3f}"
        )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=1, help="keep origins 0, K, 2K, ...")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("sets", nargs="+", help="NAME=windows.csv")
    args = ap.parse_args()
    pooled = []
    with Pool(args.jobs) as pool:
        for spec in args.sets:
            name, path = spec.split("=", 1)
            scores = pool.map(score, list(read(path, args.every)), chunksize=1)
            table(name, scores)
            pooled.extend(scores)
    table("overall", pooled)


if __name__ == "__main__":
    main()
