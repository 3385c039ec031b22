"""K-fold comparison of speech-training configurations over RAVDESS actors 1-18.

    python -m training.kfold run --out runs/kfold --name pitch -- --pitch
    python -m training.kfold run --out runs/kfold --name base
    python -m training.kfold summary --out runs/kfold --names base pitch

``run`` trains ``training.speech`` once per fold (``--val-actors``: 1-6, 7-12, 13-18 by
default; 50 epochs, no early stopping, one thread), each into ``OUT/NAME_aF`` (F = the
fold's first actor), and skips folds that already finished; arguments after ``--`` go
to ``training.speech``.  ``summary`` prints one JSON object: per configuration and fold,
the RAVDESS and EmoDB validation UAR averaged over the last ``--last`` epochs (what a
fixed-length ``--final`` run ends at, rather than the best epoch, which picks noise),
and the mean over the folds.  The test actors 19-24 are never used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

FOLDS = ((1, 2, 3, 4, 5, 6), (7, 8, 9, 10, 11, 12), (13, 14, 15, 16, 17, 18))
DEFAULTS = ["--epochs", "50", "--patience", "100", "--lr", "2e-3", "--threads", "1"]


def fold_dir(out: Path, name: str, fold: tuple[int, ...]) -> Path:
    return out / f"{name}_a{fold[0]}"


def run(out: Path, name: str, extra: list[str], folds=FOLDS) -> None:
    from training.speech import main as train_main

    for fold in folds:
        d = fold_dir(out, name, fold)
        if (d / "train_meta.json").exists():
            continue
        argv = [*DEFAULTS, *extra, "--out", str(d), "--val-actors", *map(str, fold)]
        if train_main(argv) != 0:
            raise SystemExit(f"training.kfold: fold {fold} of {name} failed")
        import keras

        keras.backend.clear_session()


def fold_score(meta: dict, last: int) -> dict:
    """Validation UAR per corpus averaged over the run's last ``last`` epochs."""
    hist = meta["history"][-last:]
    keys = [k for k in hist[0] if k.startswith("val_uar_")]
    return {k[len("val_uar_"):]: round(float(np.mean([h[k] for h in hist])), 4) for k in keys} | {
        "epochs": [hist[0]["epoch"], hist[-1]["epoch"]]}


def summary(out: Path, names: list[str], last: int = 5, folds=FOLDS) -> dict:
    res: dict = {"last_epochs_averaged": last, "configs": {}}
    for name in names:
        per_fold = {}
        for fold in folds:
            f = fold_dir(out, name, fold) / "train_meta.json"
            if f.exists():
                per_fold[f"actors_{fold[0]}-{fold[-1]}"] = fold_score(json.loads(f.read_text()), last)
        corpora = sorted({k for s in per_fold.values() for k in s if k != "epochs"})
        mean = {c: round(float(np.mean([s[c] for s in per_fold.values()])), 4) for c in corpora}
        res["configs"][name] = {"folds": per_fold, "mean": mean,
                                "complete": len(per_fold) == len(folds)}
    return res


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", type=Path, default=Path("runs/kfold"))
    r.add_argument("--name", required=True)
    s = sub.add_parser("summary")
    s.add_argument("--out", type=Path, default=Path("runs/kfold"))
    s.add_argument("--names", nargs="+", required=True)
    s.add_argument("--last", type=int, default=5)
    args = ap.parse_args(argv)
    if args.cmd == "run":
        run(args.out, args.name, extra)
    else:
        print(json.dumps(summary(args.out, args.names, args.last), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
