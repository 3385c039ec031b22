"""Train the face-expression CNN on FER-2013 (7 classes), select on PublicTest.

    python -m training.face --data ../shared/data --out runs/face          # start
    python -m training.face --data ../shared/data --out runs/face --resume # go on

Crops go through edge.vision.faces (the device's preprocessing: grayscale, resize,
normalise, flip averaging); the validation numbers are what ``edge-cli predict
--face-crops`` does.  Targets mix the original FER label (label-smoothed) with the
FER+ crowd-vote distribution (``--ferplus-weight``; 0 = original labels only) and,
optionally, a trained teacher's probabilities on the (unaugmented) training crops
(``--teacher run/best.keras --teacher-weight w``: knowledge distillation into a fresh
net of the same size, "born-again"; the teacher never sees PublicTest or PrivateTest
labels, only the training crops).

Training is resumable and meant to run in the background on a few CPU cores: each
epoch writes ``checkpoint.keras`` (weights + optimiser state), ``state.json`` and
``train_meta.json``; ``best.keras`` is the epoch with the best PublicTest accuracy.
The learning rate is a function of the epoch number (warm-up, then cosine), so a
resumed run follows the same schedule as an uninterrupted one.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from edge.manifest import sha256_file
from edge.vision.faces import FaceParams, face_probs, import_cv2, normalise
from training.fer import LABELS, TEST, TRAIN, VAL, FerData, ferplus_majority, load_fer
from training.metrics import summary

log = logging.getLogger("training.face")


# ---------------------------------------------------------------- augmentation
def augment(pixels: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Random flips, rotations (±15°), zoom, shifts (±10 %), brightness/contrast/gamma and
    a cut-out patch on uint8 crops (n, S, S); returns uint8 of the same shape."""
    cv2 = import_cv2()
    n, s, _ = pixels.shape
    out = np.empty_like(pixels)
    c = (s - 1) / 2.0
    ang = rng.uniform(-15, 15, n) * strength
    zoom = 1.0 + rng.uniform(-0.12, 0.12, n) * strength
    shift = rng.uniform(-0.1, 0.1, (n, 2)) * s * strength
    flip = rng.random(n) < 0.5
    for i in range(n):
        m = cv2.getRotationMatrix2D((c, c), float(ang[i]), float(zoom[i]))
        m[:, 2] += shift[i]
        img = pixels[i, :, ::-1] if flip[i] else pixels[i]
        out[i] = cv2.warpAffine(np.ascontiguousarray(img), m, (s, s), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
    x = out.astype(np.float32)
    contrast = rng.uniform(0.7, 1.3, (n, 1, 1))
    bright = rng.uniform(-30, 30, (n, 1, 1)) * strength
    mean = x.mean(axis=(1, 2), keepdims=True)
    x = (x - mean) * contrast + mean + bright
    gamma = np.exp(rng.uniform(-0.3, 0.3, (n, 1, 1)) * strength)
    x = 255.0 * (np.clip(x, 0, 255) / 255.0) ** gamma
    cut = rng.random(n) < 0.5 * strength
    for i in np.flatnonzero(cut):
        w = int(rng.integers(s // 6, s // 3))
        y0, x0 = (int(v) for v in rng.integers(0, s - w, 2))
        x[i, y0 : y0 + w, x0 : x0 + w] = x[i].mean()
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def targets(data: FerData, ferplus_weight: float, smoothing: float) -> np.ndarray:
    """Soft targets (N, 7): (1-w)·smoothed one-hot FER label + w·FER+ vote shares
    (rows without usable FER+ votes keep the FER label alone)."""
    k = len(LABELS)
    onehot = np.eye(k, dtype=np.float32)[data.label]
    y = onehot * (1 - smoothing) + smoothing / k
    if ferplus_weight > 0 and data.ferplus is not None:
        ok = ~np.isnan(data.ferplus).any(axis=1)
        y[ok] = (1 - ferplus_weight) * y[ok] + ferplus_weight * data.ferplus[ok]
    return y


def mix_teacher(y: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """(1-w)·y + w·teacher, both (N, 7) rows that sum to 1."""
    if teacher.shape != y.shape:
        raise ValueError(f"teacher probabilities {teacher.shape} do not match targets {y.shape}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"--teacher-weight must be in [0, 1], got {weight}")
    return ((1.0 - weight) * y + weight * teacher).astype(np.float32)


# ---------------------------------------------------------------- evaluation
def probs_for(predict, pixels: np.ndarray, p: FaceParams, batch: int = 512) -> np.ndarray:
    """Device-identical probabilities for uint8 crops: preprocessing + flip averaging."""
    out = [face_probs(predict, normalise(pixels[i : i + batch], p), p)
           for i in range(0, len(pixels), batch)]
    return np.concatenate(out) if out else np.zeros((0, len(LABELS)), np.float32)


def evaluate(probs: np.ndarray, data: FerData) -> dict:
    """Metrics on the original FER labels and, where votes exist, on FER+ majority labels."""
    pred = probs.argmax(axis=1)
    out = {"fer": summary(data.label, pred, LABELS)}
    if data.ferplus is not None:
        maj = ferplus_majority(data.ferplus, data.votes)
        keep = maj >= 0
        m = summary(maj[keep], pred[keep], LABELS)
        m["note"] = ("FER+ majority label over the 7 classes; rows where contempt, unknown or "
                     "not-a-face won, ties and unpaired rows are left out")
        out["ferplus"] = m
    return out


def short(m: dict) -> dict:
    return {k: m[k] for k in ("n", "accuracy", "uar", "macro_f1")}


# ---------------------------------------------------------------- baselines
def hog_features(pixels: np.ndarray) -> np.ndarray:
    cv2 = import_cv2()
    s = pixels.shape[1]
    hog = cv2.HOGDescriptor((s, s), (16, 16), (8, 8), (8, 8), 9)
    return np.stack([hog.compute(np.ascontiguousarray(x)).ravel() for x in pixels])


def run_baselines(train: FerData, sets: dict[str, FerData], seed: int = 0) -> dict:
    """HOG + logistic regression and PCA(eigenfaces) + logistic regression, trained on
    Training, scored on each named set with the original FER labels."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    p = FaceParams(flip_average=False)

    def flat(d):
        return normalise(d.pixels, p).reshape(len(d), -1)

    models = {
        "hog_logistic_regression": (hog_features, make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=300, C=0.01))),
        "pca150_logistic_regression": (flat, make_pipeline(
            PCA(150, random_state=seed), StandardScaler(), LogisticRegression(max_iter=300, C=1.0))),
    }
    out = {}
    for name, (feat, model) in models.items():
        t = time.time()
        model.fit(feat(train.pixels if feat is hog_features else train), train.label)
        out[name] = {}
        for set_name, d in sets.items():
            x = feat(d.pixels if feat is hog_features else d)
            out[name][set_name] = short(summary(d.label, model.predict(x), LABELS))
        log.info("baseline %s: %s (%.0fs)", name, out[name], time.time() - t)
    return out


# ---------------------------------------------------------------- training
def lr_at(epoch: int, args) -> float:
    """Learning rate for 0-based ``epoch``: linear warm-up, then cosine to 1 % of the peak."""
    if epoch < args.warmup:
        return args.lr * (epoch + 1) / (args.warmup + 1)
    t = (epoch - args.warmup) / max(1, args.epochs - args.warmup)
    return args.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def subsample(data: FerData, per_split: int, seed: int) -> FerData:
    if not per_split:
        return data
    rng = np.random.default_rng(seed)
    idx = []
    for s in (TRAIN, VAL, TEST):
        ids = np.flatnonzero(data.split == s)
        idx.append(np.sort(rng.choice(ids, size=min(per_split, len(ids)), replace=False)))
    return data.subset(np.concatenate(idx))


def train(args: argparse.Namespace) -> Path:
    import keras

    from training.models import face_cnn
    from training.threads import set_threads

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    set_threads(args.threads)

    p = FaceParams(margin=args.margin, normalisation=args.normalisation,
                   flip_average=not args.no_flip_average)
    data = subsample(load_fer(Path(args.data)), args.max_images, args.seed)
    tr, val = data.part(TRAIN), data.part(VAL)
    log.info("images: %s from %s", data.counts(), data.source)
    y_train = targets(tr, args.ferplus_weight, args.label_smoothing)
    teacher_info = None
    if args.teacher:
        t0 = time.time()
        teacher = keras.models.load_model(args.teacher)
        t_probs = probs_for(lambda x: teacher.predict(x, batch_size=512, verbose=0), tr.pixels, p)
        y_train = mix_teacher(y_train, t_probs, args.teacher_weight)
        teacher_info = {"path": str(args.teacher), "weight": args.teacher_weight,
                        "sha256": sha256_file(Path(args.teacher)),
                        "train_accuracy": float((t_probs.argmax(1) == tr.label).mean()),
                        "mean_max_prob": float(t_probs.max(1).mean())}
        log.info("teacher %s (%.0fs)", teacher_info, time.time() - t0)
        del teacher

    state_file, ckpt = out / "state.json", out / "checkpoint.keras"
    state = {"epoch": 0, "best_acc": -1.0, "best_epoch": 0, "history": []}
    if args.resume and state_file.exists() and ckpt.exists():
        state = json.loads(state_file.read_text())
        model = keras.models.load_model(ckpt)
        log.info("resumed at epoch %d (best PublicTest accuracy %.4f at epoch %d)",
                 state["epoch"], state["best_acc"], state["best_epoch"])
    else:
        model = face_cnn(p.crop_size, len(LABELS), widths=tuple(args.widths),
                         blocks=tuple(args.blocks), stem=tuple(args.stem), dropout=args.dropout)
        model.compile(optimizer=keras.optimizers.AdamW(args.lr, weight_decay=args.weight_decay),
                      loss=keras.losses.CategoricalCrossentropy())
    log.info("model: %d parameters", model.count_params())
    # Each start or resume, with its arguments (a resume may change --epochs, which
    # re-times the cosine schedule from that epoch on).
    state.setdefault("segments", []).append({"from_epoch": state["epoch"], "argv": list(args.argv)})

    def predict(x):
        return model.predict(x, batch_size=512, verbose=0)

    def write_meta():
        meta = {
            "face": p.to_dict(),
            "labels": list(LABELS),
            "data": str(args.data),
            "source": data.source,
            "seed": args.seed,
            "argv": list(args.argv),
            "args": {k: v for k, v in vars(args).items() if k not in ("func", "argv")},
            "images": data.counts(),
            "parameters": int(model.count_params()),
            "teacher": teacher_info,
            "best_epoch": state["best_epoch"],
            "best_val_accuracy": state["best_acc"],
            "epochs_done": state["epoch"],
            "history": state["history"],
            "segments": state["segments"],
        }
        tmp = out / "train_meta.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, out / "train_meta.json")

    bad = 0
    for epoch in range(state["epoch"], args.epochs):
        te = time.time()
        rng = np.random.default_rng(args.seed * 1000 + epoch)  # same stream after a resume
        lr = lr_at(epoch, args)
        model.optimizer.learning_rate.assign(lr)
        x = normalise(augment(tr.pixels, rng, args.aug_strength), p)
        order = rng.permutation(len(x))
        h = model.fit(x[order], y_train[order], batch_size=args.batch, epochs=1, verbose=0,
                      shuffle=False)
        del x
        m = evaluate(probs_for(predict, val.pixels, p), val)["fer"]
        rec = {"epoch": epoch + 1, "lr": round(lr, 6), "loss": float(h.history["loss"][-1]),
               "val_accuracy": m["accuracy"], "val_uar": m["uar"], "val_macro_f1": m["macro_f1"],
               "seconds": round(time.time() - te, 1)}
        state["history"].append(rec)
        log.info("epoch %d %s", epoch + 1, rec)
        if m["accuracy"] > state["best_acc"]:
            state["best_acc"], state["best_epoch"] = m["accuracy"], epoch + 1
            model.save(str(out / "best.keras.tmp.keras"))
            os.replace(out / "best.keras.tmp.keras", out / "best.keras")
            bad = 0
        else:
            bad += 1
        state["epoch"] = epoch + 1
        model.save(str(out / "checkpoint.tmp.keras"))
        os.replace(out / "checkpoint.tmp.keras", ckpt)
        state_file.write_text(json.dumps(state, indent=1))
        write_meta()
        if bad >= args.patience:
            log.info("early stop: no PublicTest improvement for %d epochs", bad)
            break
        if args.stop_after and state["epoch"] >= args.stop_after:
            log.info("stopped after epoch %d of %d (--stop-after); --resume goes on",
                     state["epoch"], args.epochs)
            break
    write_meta()
    return out / "best.keras"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data",
                    help="data root with face/fer2013.npz, or fer2013.npz / fer2013.csv / a folder "
                         "with train/<label>/ and test/<label>/")
    ap.add_argument("--out", default="runs/face")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--stop-after", type=int, default=0, metavar="N",
                    help="stop after epoch N of the --epochs schedule (a session's share of "
                         "a long run); --resume goes on from there")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--patience", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--ferplus-weight", type=float, default=0.5,
                    help="share of the FER+ vote distribution in the target (0: FER labels only)")
    ap.add_argument("--teacher", default="", metavar="KERAS",
                    help="a trained face model (.keras) whose flip-averaged probabilities on the "
                         "training crops are mixed into the targets (distillation)")
    ap.add_argument("--teacher-weight", type=float, default=0.5,
                    help="share of the teacher's probabilities in the target")
    ap.add_argument("--aug-strength", type=float, default=1.0)
    ap.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--blocks", type=int, nargs="+", default=[1, 2, 2, 2])
    ap.add_argument("--stem", type=int, nargs="+", default=[32])
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--margin", type=float, default=FaceParams.margin)
    ap.add_argument("--normalisation", default=FaceParams.normalisation)
    ap.add_argument("--no-flip-average", action="store_true",
                    help="do not average each prediction with the mirrored crop's")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--max-images", type=int, default=0, help="smoke runs: images per split")
    ap.add_argument("--resume", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    args.argv = [a for a in argv if a != "--resume"]
    if "--stop-after" in args.argv:  # not part of the run's identity
        i = args.argv.index("--stop-after")
        del args.argv[i : i + 2]
    if len(args.widths) != len(args.blocks):
        raise SystemExit("--widths and --blocks need the same number of values")
    train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
