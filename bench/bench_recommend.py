"""Benchmark the recommender on a synthetic catalogue; prints JSON.

Stages (median milliseconds over ``--repeats`` runs):

- ``import_csv``: parse + validate + insert the CSV into a fresh SQLite file (one-off);
- ``snapshot_cold``: open the catalogue and load A/V arrays (after start-up, import
  or feedback; cached otherwise);
- ``feedback_bias``: spread the stored feedback over the catalogue (cached likewise);
- ``recent_plays``: read the no-repeat window from SQLite (every call);
- ``rank_<policy>``: the pure, vectorised choice of ``--n`` tracks;
- ``recommend_<policy>``: a warm ``Recommender.recommend`` call (what the daemon
  pays per request): recent plays + ranking, arrays cached.  The target is ≤ 5 ms.

    python bench/bench_recommend.py [--tracks 10000] [--n 5] [--repeats 200]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from edge.music.catalog import Catalog
from edge.music.recommend import (
    Policy,
    Recommender,
    RecommenderParams,
    feedback_bias,
    recommend,
)


def median_ms(fn: Callable[..., object], repeats: int, moods: list | None = None) -> float:
    """Median wall time of ``fn()`` (or ``fn(mood)``, cycling through ``moods``), in ms."""
    times = []
    for r in range(repeats):
        arg = () if moods is None else (moods[r % len(moods)],)
        t0 = time.perf_counter()
        fn(*arg)
        times.append((time.perf_counter() - t0) * 1e3)
    return round(statistics.median(times), 4)


def write_catalogue(path: Path, tracks: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    va = rng.uniform(-1.0, 1.0, size=(tracks, 2))
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["uri", "title", "artist", "valence", "arousal", "duration", "genre"])
        for i, (v, a) in enumerate(va):
            w.writerow([f"file:///music/{i:06d}.flac", f"Track {i}", f"Artist {i % (tracks // 5)}",
                        f"{v:.4f}", f"{a:.4f}", 180 + i % 120, "test"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=10_000)
    ap.add_argument("--n", type=int, default=5, help="tracks per recommendation")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    stages: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "tracks.csv"
        write_catalogue(csv_path, args.tracks, args.seed)

        def fresh_import() -> None:
            db = Path(tmp) / f"import-{time.perf_counter_ns()}.sqlite"
            with Catalog(db) as c:
                c.import_csv(csv_path)

        stages["import_csv"] = median_ms(fresh_import, 3)

        db = Path(tmp) / "catalogue.sqlite"
        params = RecommenderParams()
        with Catalog(db) as cat:
            cat.import_csv(csv_path)
            snap = cat.snapshot()
            rng = np.random.default_rng(args.seed + 1)
            for i in rng.choice(len(snap), size=60, replace=False):
                cat.record_play(snap.tracks[i].uri)
            for i, kind in zip(rng.choice(len(snap), size=40, replace=False),
                               ["like", "skip", "dislike", "like"] * 10, strict=True):
                cat.record_feedback(snap.tracks[i].uri, kind)

        def cold_snapshot() -> None:
            with Catalog(db) as c:
                c.snapshot()

        stages["snapshot_cold"] = median_ms(cold_snapshot, max(5, args.repeats // 20))

        with Catalog(db) as cat:
            rec = Recommender(cat, params)
            snap = cat.snapshot()
            stages["feedback_bias"] = median_ms(lambda: feedback_bias(snap, params),
                                                max(5, args.repeats // 10))
            bias = feedback_bias(snap, params)
            stages["recent_plays"] = median_ms(lambda: cat.recent_plays(params.repeat_window),
                                               args.repeats)
            recent = cat.recent_plays(params.repeat_window)
            moods = [tuple(m) for m in
                     np.random.default_rng(args.seed + 2).uniform(-1, 1, size=(args.repeats, 2))]
            for policy in Policy:
                target = (0.0, -0.8) if policy is Policy.TARGET else None
                rec.recommend((0.0, 0.0), policy, args.n, target=target)  # warm the cache
                pure = partial(recommend, snap, policy=policy, n=args.n, target=target,
                               recent=recent, params=params, bias=bias)
                warm = partial(rec.recommend, policy=policy, n=args.n, target=target)
                stages[f"rank_{policy.value}"] = median_ms(pure, args.repeats, moods)
                stages[f"recommend_{policy.value}"] = median_ms(warm, args.repeats, moods)

    worst = max(v for k, v in stages.items() if k.startswith("recommend_"))
    print(json.dumps({
        "benchmark": "recommend",
        "tracks": args.tracks,
        "n": args.n,
        "repeats": args.repeats,
        "plays": 60,
        "feedback_events": 40,
        "median_ms": stages,
        "recommend_worst_policy_ms": worst,
        "budget_ms": 5.0,
        "within_budget": worst <= 5.0,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or None,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
