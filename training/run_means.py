"""A run's validation figures averaged over its last epochs, and an arm's over its runs.

The adoption rules (docs/models/experiments.md) read a run's figure as the mean of its
``state.json`` validation records over epochs 56–60 (what a fixed-length final run ends
at), and an arm's as the mean of its runs' figures; ``clean_mean`` is the mean clean UAR
over the corpora the run validated on. Validation speakers only; it chooses nothing::

    python -m training.run_means --runs runs/speech_sep288_s3 runs/speech_sep288_s4 --epochs 56 60
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

CLEAN_PREFIX = "val_uar_"


def run_means(history: list[dict], first: int, last: int) -> dict:
    """Mean of every ``val_*`` figure over epochs ``first``…``last`` (1-based, inclusive),
    plus ``clean_mean``: the mean over corpora of the clean UARs (``val_uar_<corpus>``)."""
    recs = [r for r in history if first <= r["epoch"] <= last]
    if len(recs) != last - first + 1:
        have = sorted(r["epoch"] for r in recs)
        raise ValueError(f"epochs {first}-{last} wanted, the run has {have or 'none'} of them")
    keys = sorted({k for r in recs for k in r if k.startswith("val_")})
    out = {k: float(np.mean([r[k] for r in recs])) for k in keys}
    clean = [k for k in keys if k.startswith(CLEAN_PREFIX) and k.count("_") == 2]
    if clean:
        out["clean_mean"] = float(np.mean([out[k] for k in clean]))
    return out


def arm_means(per_run: dict[str, dict]) -> dict:
    """The mean over runs of each figure every run has."""
    common = set.intersection(*(set(v) for v in per_run.values()))
    return {k: float(np.mean([v[k] for v in per_run.values()])) for k in sorted(common)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", required=True, help="run folders (each with state.json)")
    ap.add_argument("--epochs", type=int, nargs=2, default=[56, 60], metavar=("FIRST", "LAST"))
    args = ap.parse_args(argv)
    per_run = {}
    for r in args.runs:
        state = Path(r) / "state.json"
        try:
            per_run[r] = run_means(json.loads(state.read_text())["history"], *args.epochs)
        except (OSError, KeyError, ValueError) as exc:
            print(f"training.run_means: {state}: {exc}", file=sys.stderr)
            return 2
    out = {"epochs": args.epochs, "runs": per_run, "arm": arm_means(per_run)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
