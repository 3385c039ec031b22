"""Train the music-emotion model (Russell quadrants Q1..Q4) on 4Q, split by artist.

    python -m training.music --data ../shared/data/music/4q --out runs/music

Features are edge.music.features (the device's code): each clip's excerpt is decoded by
edge.audio.sources.decode_excerpt and cut into frame tables once (cached in ``OUT/frames.npz``, so a
second run resumes from there); training vectors are pooled over random crops of 10-20 s
of a clip, evaluation vectors over the whole excerpt, as the scanner does.

Model choice uses the training and validation artists only: ``--cv K`` scores each
candidate in K artist-grouped folds over train+val and on the fixed validation artists
(trained on train); the chosen one is then trained on train+val (``final.keras``).  The
test artists are not read here: ``convert.music`` scores them once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

from edge.audio.sources import decode_excerpt
from edge.music import features as M
from training.datasets import MusicClip, fourq_split, read_4q
from training.metrics import summary

log = logging.getLogger("training.music")

QUADRANTS = ("Q1", "Q2", "Q3", "Q4")
CANDIDATES: dict[str, dict] = {
    "mlp64": {"hidden": (64,), "dropout": 0.3, "l2": 1e-3},
    "mlp128x64": {"hidden": (128, 64), "dropout": 0.4, "l2": 1e-3},
    "mlp32": {"hidden": (32,), "dropout": 0.2, "l2": 3e-3},
}


def splits(root: Path) -> dict[str, list[MusicClip]]:
    out: dict[str, list[MusicClip]] = {"train": [], "val": [], "test": []}
    for c in read_4q(root):
        out[fourq_split(c.artist)].append(c)
    return out


def _frame_params(p: M.MusicFeatureParams) -> str:
    """What decides a clip's frame tables (the standardisation comes later)."""
    d = {k: v for k, v in dataclasses.asdict(p).items() if not k.startswith("column_")}
    return json.dumps(d, sort_keys=True)


def clip_frames(clips: list[MusicClip], p: M.MusicFeatureParams, cache: Path | None):
    """Frame tables of each clip, from the cache where it has them (a cache made with
    other feature parameters is not used, and is rewritten)."""
    have: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            made_with = str(z["params"]) if "params" in z.files else None
            if made_with != _frame_params(p):
                log.info("frames: %s was made with other feature parameters; made again", cache)
            for key in z.files if made_with == _frame_params(p) else ():
                if key.startswith("mf:"):
                    name = key[3:]
                    have[name] = (z[key], z["sp:" + name])
    todo = [c for c in clips if str(c.path) not in have]
    t0 = time.time()
    for i, c in enumerate(todo):
        x, _ = decode_excerpt(c.path, p.sample_rate, p.excerpt_s, p.min_s)
        have[str(c.path)] = M.frames(x, p)
        if (i + 1) % 100 == 0:
            log.info("frames: %d/%d (%.1f s)", i + 1, len(todo), time.time() - t0)
    if todo and cache is not None:
        tmp = cache.with_suffix(".tmp.npz")
        arrays = {}
        for k, (mf, sp) in have.items():
            arrays["mf:" + k], arrays["sp:" + k] = mf, sp
        np.savez(tmp, params=np.array(_frame_params(p)), **arrays)
        tmp.replace(cache)
    return [have[str(c.path)] for c in clips]


def crop_vectors(fr, p: M.MusicFeatureParams, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` pooled vectors over random crops of 10 s to the whole excerpt."""
    mf, sp = fr
    r = (p.stft_hop / p.sample_rate) / p.mfcc_winstep  # mfcc frames per stft frame
    out = []
    for _ in range(n):
        frac = rng.uniform(0.5, 1.0)
        k = max(16, int(len(sp) * frac))
        s = int(rng.integers(0, len(sp) - k + 1))
        out.append(M.pool(mf[int(s * r) : int((s + k) * r) + 1], sp[s : s + k], p))
    return np.stack(out)


def full_vectors(frs, p: M.MusicFeatureParams) -> np.ndarray:
    return np.stack([M.pool(mf, sp, p) for mf, sp in frs])


def build_mlp(n_in: int, hidden: tuple[int, ...], dropout: float, l2: float, seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    reg = keras.regularizers.l2(l2)
    x = inp = keras.Input((n_in,), name="features")
    for i, h in enumerate(hidden):
        x = keras.layers.Dense(h, activation="relu", kernel_regularizer=reg, name=f"dense{i}")(x)
        x = keras.layers.Dropout(dropout)(x)
    out = keras.layers.Dense(len(QUADRANTS), activation="softmax", name="quadrant")(x)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) with x*scale + offset of zero mean and unit variance per column."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    return 1.0 / std, -mean / std


def fit(cfg: dict, frs, y, p, epochs: int, seed: int, crops: int, eval_sets=()):
    """Train an MLP on crop vectors; returns (model, scale, offset, history)."""
    rng = np.random.default_rng(seed)
    bank = np.stack([crop_vectors(f, p, crops, rng) for f in frs])  # (n, crops, d)
    scale, offset = standardiser(bank.reshape(-1, bank.shape[-1]))
    xb = (bank * scale + offset).astype(np.float32)
    model = build_mlp(xb.shape[-1], cfg["hidden"], cfg["dropout"], cfg["l2"], seed)
    history = []
    for ep in range(1, epochs + 1):
        pick = rng.integers(0, crops, size=len(xb))
        xe = xb[np.arange(len(xb)), pick]
        h = model.fit(xe, y, batch_size=32, epochs=1, verbose=0, shuffle=True)
        row = {"epoch": ep, "loss": float(h.history["loss"][0])}
        for name, (xv, yv) in eval_sets:
            pred = model.predict((xv * scale + offset).astype(np.float32), verbose=0).argmax(1)
            row[f"val_acc_{name}"] = float(np.mean(pred == yv))
        history.append(row)
    return model, scale, offset, history


def artist_folds(clips: list[MusicClip], k: int) -> np.ndarray:
    """Fold index per clip: artists in order of a stable hash, dealt round-robin."""
    import hashlib

    artists = sorted({c.artist.strip().lower() for c in clips},
                     key=lambda a: hashlib.sha1(("fold:" + a).encode()).hexdigest())
    fold = {a: i % k for i, a in enumerate(artists)}
    return np.array([fold[c.artist.strip().lower()] for c in clips])


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/music/4q")
    ap.add_argument("--out", default="runs/music")
    ap.add_argument("--epochs", type=int, default=120)
    ap.add_argument("--crops", type=int, default=16, help="crop vectors per training clip")
    ap.add_argument("--cv", type=int, default=5, help="artist-grouped folds over train+val")
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from training.threads import set_threads

    set_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    p = M.MusicFeatureParams()
    sp = splits(Path(args.data))
    dev = sp["train"] + sp["val"]
    frs = clip_frames(dev, p, out / "frames.npz")
    y = np.array([QUADRANTS.index(c.quadrant) for c in dev])
    is_val = np.array([i >= len(sp["train"]) for i in range(len(dev))])
    folds = artist_folds(dev, args.cv)
    results: dict[str, dict] = {}
    for name in args.candidates:
        cfg = CANDIDATES[name]
        curves = []
        for k in range(args.cv):
            tr, te = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
            xv = full_vectors([frs[i] for i in te], p)
            _, _, _, hist = fit(cfg, [frs[i] for i in tr], y[tr], p, args.epochs, args.seed + k,
                                args.crops, [("fold", (xv, y[te]))])
            curves.append([h["val_acc_fold"] for h in hist])
        cv_curve = np.mean(curves, axis=0)
        tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)
        xv = full_vectors([frs[i] for i in va], p)
        _, _, _, hist = fit(cfg, [frs[i] for i in tr], y[tr], p, args.epochs, args.seed, args.crops,
                            [("val", (xv, y[va]))])
        val_curve = np.array([h["val_acc_val"] for h in hist])
        # epochs: the best of the cross-validated curve smoothed over 11 epochs
        smooth = np.convolve(cv_curve, np.ones(11) / 11, mode="same")
        best = int(np.argmax(smooth[5:-5])) + 6
        results[name] = {"cfg": cfg, "cv_acc_at_best": float(smooth[best - 1]), "best_epochs": best,
                         "val_acc_at_best": float(val_curve[best - 1]),
                         "cv_curve": cv_curve.round(4).tolist(), "val_curve": val_curve.round(4).tolist()}
        log.info("%s: cv %.3f at %d epochs, val %.3f", name, smooth[best - 1], best, val_curve[best - 1])
    baselines = dev_baselines(frs, y, folds, is_val, p, args.cv)
    chosen = max(results, key=lambda n: results[n]["cv_acc_at_best"])
    cfg, epochs = CANDIDATES[chosen], results[chosen]["best_epochs"]
    log.info("chosen %s, %d epochs; training on train+val", chosen, epochs)
    model, scale, offset, hist = fit(cfg, frs, y, p, epochs, args.seed, args.crops)
    model.save(out / "final.keras")
    meta = {"features": p.to_dict(), "labels": list(QUADRANTS), "chosen": chosen, "config": cfg,
            "epochs": epochs, "seed": args.seed, "crops": args.crops, "cv": args.cv,
            "column_scale": scale.tolist(), "column_offset": offset.tolist(),
            "clips": {k: len(v) for k, v in sp.items()}, "candidates": results,
            "dev_baselines": baselines, "history": hist, "args": vars(args),
            "selection": f"{args.cv}-fold artist-grouped CV over train+val (val artists also "
                         "scored alone); final fit on train+val; test artists not read"}
    (out / "train_meta.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps({k: {m: v[m] for m in ("cv_acc_at_best", "best_epochs", "val_acc_at_best")}
                      for k, v in results.items()} | {"baselines": baselines, "chosen": chosen}))
    return 0


BASELINE_FEATURES = {"mfcc": "mfcc", "all": ""}


def baseline_models():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return {
        "logistic_regression": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=3000, C=0.1)),
        "svm_rbf": lambda: make_pipeline(StandardScaler(), SVC(C=1.0)),
    }


def feature_columns(p: M.MusicFeatureParams, which: str) -> np.ndarray:
    names = M.feature_names(p)
    return np.array([i for i, n in enumerate(names) if n.startswith(which)])


def dev_baselines(frs, y, folds, is_val, p, k: int) -> dict:
    """LR / SVM on whole-clip pooled statistics: MFCC only, and MFCC+spectral+chroma+rhythm."""
    x = full_vectors(frs, p)
    out = {}
    for mname, make in baseline_models().items():
        for fname, prefix in BASELINE_FEATURES.items():
            cols = feature_columns(p, prefix)
            accs = []
            for f in range(k):
                m = make().fit(x[folds != f][:, cols], y[folds != f])
                accs.append(float(np.mean(m.predict(x[folds == f][:, cols]) == y[folds == f])))
            m = make().fit(x[~is_val][:, cols], y[~is_val])
            val = summary(y[is_val], m.predict(x[is_val][:, cols]), QUADRANTS)["accuracy"]
            out[f"{mname}:{fname}"] = {"cv_acc": float(np.mean(accs)), "val_acc": float(val)}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
