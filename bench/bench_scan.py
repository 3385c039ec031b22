"""Benchmark ``edge-cli library scan`` over the 4Q training clips; print JSON.

    python bench/bench_scan.py [--data ../shared/data/music/4q] [--repeats 3] [--workers 2]

Each repeat scans the 511 training-artist clips (``--split``) (symlinked into a temporary folder) into
an empty catalogue in a fresh process (``edge-cli library scan``), measuring wall time,
tracks/s and the process's peak RSS, and checks that no TensorFlow/Keras/SciPy module was
imported; then times a rescan of the unchanged folder (per 1,000 files).  On the last
catalogue it measures what the issue asks of ``recommend --policy match`` (n = 10): the
share of picks for each corner target whose 4Q label is the target's quadrant, and the
quadrant walk of the ``uplift`` and ``calm`` policies.  Medians over the repeats.
``stages_cpu``: the CPU time per stage (decode, features, model, tags) of ``--stages``
clips in this process, one after another.  ``OPENBLAS_NUM_THREADS=2 python
bench/bench_scan.py`` measures as edge-cli ran before it set one BLAS thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import edge.cli  # noqa: E402

edge.cli.one_blas_thread()  # edge-cli's process settings: one BLAS thread, before NumPy

CHILD = """
import json, resource, sys, time
from edge.cli import main
t0 = time.perf_counter()
rc = main(sys.argv[1:])
wall = time.perf_counter() - t0
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'scipy', 'sklearn'})
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({'rc': rc, 'wall_s': wall, 'peak_rss_mb': ru.ru_maxrss / 1024,
    'cpu_s': ru.ru_utime + ru.ru_stime, 'heavy_modules': heavy}), file=sys.stderr)
"""
CORNERS = {"Q1": (0.6, 0.5), "Q2": (-0.6, 0.5), "Q3": (-0.6, -0.5), "Q4": (0.6, -0.5)}


def quadrant_of(v: float, a: float) -> str:
    return ("Q1" if v >= 0 else "Q2") if a >= 0 else ("Q4" if v >= 0 else "Q3")


def run_scan(folder: Path, db: Path, workers: int) -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, "library", "scan", str(folder), "--db",
                          str(db), "--workers", str(workers)], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    stats = json.loads(res.stderr.strip().splitlines()[-1])
    stats["summary"] = res.stdout.strip().splitlines()[0] if res.stdout.strip() else ""
    return stats


def recommend_checks(db: Path, label_of: dict[str, str]) -> dict:
    from edge.music.catalog import Catalog
    from edge.music.recommend import Recommender

    out: dict = {"match_in_quadrant": {}, "walks": {}}
    with Catalog(db) as cat:
        rec = Recommender(cat)
        uri_label = {Path(t.uri.removeprefix("file://")).name: t for t in cat.tracks()}
        assert len(uri_label) == len(cat)

        def label(t) -> str:
            return label_of[Path(t.uri.removeprefix("file://")).name]

        for q, target in CORNERS.items():
            picks = rec.recommend(target, "match", 10)
            labels = [label(r.track) for r in picks]
            out["match_in_quadrant"][f"{q} {target}"] = {
                "share": sum(x == q for x in labels) / len(labels), "labels": labels}
        for policy, start in (("uplift", (-0.6, -0.5)), ("calm", (-0.6, 0.6))):
            picks = rec.recommend(start, policy, 10)
            out["walks"][f"{policy} from {start}"] = {
                "labels": [label(r.track) for r in picks],
                "model_quadrants": [quadrant_of(r.track.valence, r.track.arousal) for r in picks],
                "waypoints": [r.reason["waypoint"] for r in picks]}
    return out


def rescan_in_process(db: Path, folder: Path, n: int, repeats: int = 5) -> dict:
    """The rescan itself (walk, stat, compare), without interpreter start and imports."""
    from edge.music.catalog import Catalog
    from edge.music.library import scan

    times = []
    for _ in range(repeats):
        with Catalog(db) as cat:
            t0 = time.perf_counter()
            s = scan(cat, [folder])
            times.append(time.perf_counter() - t0)
        assert s.skipped == n and s.scanned == 0
    return {"s_median": statistics.median(times),
            "s_per_1000_files": 1000 * statistics.median(times) / n}


def stage_times(clips, n: int) -> dict:
    """Per-stage CPU time (median over ``n`` clips, one thread, in this process): decode
    of the excerpt, features (frame tables and pooling), the model, the tags."""
    import numpy as np

    from edge.audio.sources import decode_excerpt
    from edge.music import features as M
    from edge.music.emotion import MusicEmotion
    from edge.music.library import read_tags

    model = MusicEmotion()
    p = model.params
    times: dict[str, list[float]] = {"decode": [], "features": [], "model": [], "tags": []}
    for c in clips[:n]:
        t0 = time.process_time()
        x, _ = decode_excerpt(c.path, p.sample_rate, p.excerpt_s, p.min_s)
        t1 = time.process_time()
        vec = M.clip_vector(x, p)
        t2 = time.process_time()
        model.predict_vectors(vec[None])
        t3 = time.process_time()
        read_tags(c.path)
        t4 = time.process_time()
        for k, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            times[k].append(dt)
    return {"clips": min(n, len(clips)),
            **{f"{k}_ms_median": round(1000 * float(np.median(v)), 1) for k, v in times.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "music" / "4q")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--split", choices=("train", "val", "test"), default="train",
                    help="which artists' clips to scan (the issue's figures: train; test shows "
                         "the match check on clips the model never saw)")
    ap.add_argument("--stages", type=int, default=40,
                    help="clips for the per-stage CPU times (in this process, one thread)")
    args = ap.parse_args()
    from training.datasets import fourq_split, read_4q

    clips = [c for c in read_4q(args.data) if fourq_split(c.artist) == args.split]
    label_of = {c.path.name: c.quadrant for c in clips}
    load_start = os.getloadavg()[0]
    runs, rescans = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / args.split
        folder.mkdir()
        for c in clips:
            (folder / c.path.name).symlink_to(c.path)
        for i in range(args.repeats):
            db = Path(tmp) / f"c{i}.sqlite"
            runs.append(run_scan(folder, db, args.workers))
            t0 = time.perf_counter()
            again = run_scan(folder, db, args.workers)
            rescans.append({"wall_s": again["wall_s"], "process_s": time.perf_counter() - t0,
                            "summary": again["summary"]})
        checks = recommend_checks(db, label_of)
        checks["rescan_in_process"] = rescan_in_process(db, folder, len(clips))
    stages = stage_times(clips, args.stages) if args.stages else None
    walls = [r["wall_s"] for r in runs]
    print(json.dumps({
        "split": args.split, "clips": len(clips), "workers": args.workers, "repeats": args.repeats,
        "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS"),
        "load_average_1min_at_start": load_start,
        "stages_cpu": stages,
        "scan": {"wall_s_median": statistics.median(walls),
                 "tracks_per_s_median": len(clips) / statistics.median(walls),
                 "cpu_s_per_track_median": statistics.median(r["cpu_s"] for r in runs) / len(clips),
                 "load_average_1min_at_end": os.getloadavg()[0],
                 "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in runs),
                 "peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs),
                 "heavy_modules": sorted({m for r in runs for m in r["heavy_modules"]}),
                 "summary": runs[-1]["summary"]},
        "rescan": {"wall_s_median": statistics.median(r["wall_s"] for r in rescans),
                   "s_per_1000_files": 1000 * statistics.median(r["wall_s"] for r in rescans)
                   / len(clips),
                   "process_s_median": statistics.median(r["process_s"] for r in rescans),
                   "summary": rescans[-1]["summary"]},
        **checks,
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
