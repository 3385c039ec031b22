"""Train the speech-emotion CNN on MFCC windows, speaker-independent.

    python -m training.speech --data ../shared/data --corpora ravdess emodb --out runs/speech

Features come from edge.audio.features (the device's code). Evaluation cuts each clip
into windows, gates them with the device's VAD and averages the voiced windows'
probabilities: the numbers reported are what ``edge-cli predict`` does.

Training is resumable: each epoch writes ``checkpoint.weights.h5`` and ``state.json``;
run the same command again with ``--resume`` to go on.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.audio import features as F
from edge.audio.sources import load_audio
from edge.audio.speech import aggregate, prepare_clip
from edge.audio.vad import VadParams, is_voiced
from edge.labels import VOCABULARY
from training.datasets import (
    RAVDESS_VAL,
    Clip,
    by_split,
    check_val_actors,
    first_ravdess_actors,
    load_corpora,
)
from training.metrics import summary
from training.swa import WeightAverage, refresh_batchnorm

log = logging.getLogger("training.speech")

# Speed/pitch factors of the augmented copies unless --speed-range says otherwise.
SPEED_RANGE = (0.9, 1.1)


@dataclass
class Bank:
    """Augmented MFCC versions of one clip, with the window starts that are voiced."""

    feats: list[np.ndarray]
    starts: list[np.ndarray]
    label: int


# ---------------------------------------------------------------- augmentation
def speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Speed/pitch perturbation by resampling (factor > 1: faster, higher)."""
    n = int(round(len(x) / factor))
    return np.interp(np.arange(n) * factor, np.arange(len(x)), x).astype(np.float32)


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(len(x)).astype(np.float32)
    if rng.random() < 0.5:  # pink-ish: integrate white noise a little
        noise = np.convolve(noise, np.ones(8, np.float32) / 8, mode="same")
    ps = float(np.mean(x**2)) + 1e-10
    pn = float(np.mean(noise**2)) + 1e-10
    return x + noise * np.sqrt(ps / pn / 10 ** (snr_db / 10))


def augment(x: np.ndarray, rng: np.random.Generator,
            speed_range: tuple[float, float] = SPEED_RANGE) -> np.ndarray:
    y = speed(x, rng.uniform(*speed_range))
    y = y * 10 ** (rng.uniform(-6, 6) / 20)
    if rng.random() < 0.7:
        y = add_noise(y, rng.uniform(10, 40), rng)
    shift = int(rng.integers(0, 1600))  # time shift up to 0.1 s
    y = np.roll(y, shift)
    return np.clip(y, -1, 1).astype(np.float32)


def make_bank(x: np.ndarray, label: int, p: F.FeatureParams, vad: VadParams,
              versions: int, rng: np.random.Generator,
              speed_range: tuple[float, float] = SPEED_RANGE) -> Bank:
    feats, starts = [], []
    for v in range(versions):
        y = x if v == 0 else augment(x, rng, speed_range)
        f = F.mfcc(y, p)
        if f.shape[0] < p.window_frames:
            f = np.resize(f, (p.window_frames, f.shape[1]))
        lv = F.frame_levels_db(f, p)
        cand = np.arange(0, f.shape[0] - p.window_frames + 1, 5)
        ok = np.array([is_voiced(lv[s : s + p.window_frames], vad) for s in cand], dtype=bool)
        feats.append(f)
        starts.append(cand[ok] if ok.any() else cand)
    return Bank(feats, starts, label)


def sample_epoch(banks: list[Bank], p: F.FeatureParams, rng: np.random.Generator,
                 per_clip: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``per_clip`` random voiced windows of a random version of each bank, bank by bank
    (window i comes from bank i // per_clip), normalised and spec-augmented."""
    t = p.window_frames
    xs, ys = [], []
    for b in banks:
        for _ in range(per_clip):
            v = int(rng.integers(len(b.feats)))
            s = int(rng.choice(b.starts[v]))
            xs.append(b.feats[v][s : s + t])
            ys.append(b.label)
    x = F.normalise(np.stack(xs), p)
    return spec_augment(x, rng), np.asarray(ys)


def spec_augment(x: np.ndarray, rng: np.random.Generator, p_mask: float = 0.5) -> np.ndarray:
    """Time and cepstral masks, filled with the window's own mean so no value is new."""
    x = x.copy()
    n, t, c = x.shape
    for i in range(n):
        if rng.random() < p_mask:
            mean = x[i].mean(axis=0)
            for _ in range(2):
                w = int(rng.integers(0, t // 10))
                s = int(rng.integers(0, t - w + 1))
                x[i, s : s + w] = mean
            w = int(rng.integers(0, c // 8))
            s = int(rng.integers(1, c - w + 1))
            x[i, :, s : s + w] = mean[s : s + w]
    return x


def mixup(x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mix each window with a random partner: x, one-hot y and sample weights w alike."""
    lam = rng.beta(alpha, alpha, len(x)).astype(np.float32)
    lam = np.maximum(lam, 1 - lam)  # the window keeps most of itself
    j = rng.permutation(len(x))

    def mix(a: np.ndarray) -> np.ndarray:
        k = lam.reshape(-1, *[1] * (a.ndim - 1))
        return (k * a + (1 - k) * a[j]).astype(np.float32)

    return mix(x), mix(y), mix(w)


# ---------------------------------------------------------------- evaluation
def clip_windows(signals: list[np.ndarray], p: F.FeatureParams, vad: VadParams):
    """Device-identical windows for each clip: list of (windows, voiced)."""
    return [prepare_clip(x, p, vad) for x in signals]


def clip_probs(predict, prepared, n_classes: int) -> list[np.ndarray | None]:
    """Clip probabilities via the device's aggregate(); predict: (n,T,C) -> (n,K)."""
    sizes = [w.shape[0] for w, _ in prepared]
    allw = np.concatenate([w for w, _ in prepared])
    probs = predict(allw)
    out, i = [], 0
    for (_, voiced), k in zip(prepared, sizes):
        out.append(aggregate(probs[i : i + k], voiced))
        i += k
    return out


def predictions(probs: list[np.ndarray | None], allowed: list[int] | None = None) -> np.ndarray:
    preds = []
    for pr in probs:
        if pr is None:
            preds.append(-1)
        elif allowed is not None:
            preds.append(int(allowed[int(np.argmax(pr[allowed]))]))
        else:
            preds.append(int(np.argmax(pr)))
    return np.asarray(preds)


def evaluate(predict, clips: list[Clip], signals, p, vad, labels) -> dict:
    """Metrics per corpus; EmoDB is scored over its own 6 labels."""
    prepared = clip_windows(signals, p, vad)
    return score_clips(clip_probs(predict, prepared, len(labels)), clips, labels)


def score_clips(probs: list[np.ndarray | None], clips: list[Clip], labels) -> dict:
    """Metrics per corpus from clip probabilities; EmoDB over its own 6 labels."""
    out = {}
    for corpus in sorted({c.corpus for c in clips}):
        idx = [i for i, c in enumerate(clips) if c.corpus == corpus]
        present = sorted({labels.index(clips[i].label) for i in idx})
        allowed = present if corpus == "emodb" else None
        y = [labels.index(clips[i].label) for i in idx]
        yhat = predictions([probs[i] for i in idx], allowed)
        m = summary(y, yhat, labels)
        if corpus == "emodb":
            m["note"] = "argmax over EmoDB's 6 labels (no calm, no surprised)"
        out[corpus] = m
    return out


# ---------------------------------------------------------------- training
def adversary_strength(epoch: int, epochs: int, top: float) -> float:
    """Gradient-reversal strength at ``epoch`` (0-based): Ganin & Lempitsky's ramp
    2/(1+exp(−10·progress)) − 1 from 0 towards ``top``, so the speaker head learns first."""
    progress = epoch / max(1, epochs)
    return float(top * (2.0 / (1.0 + np.exp(-10.0 * progress)) - 1.0))


def speaker_ids(clips: list[Clip]) -> np.ndarray:
    """An index per clip for each distinct (corpus, speaker)."""
    names = sorted({(c.corpus, c.speaker) for c in clips})
    return np.array([names.index((c.corpus, c.speaker)) for c in clips], np.int64)


def class_weights(y: np.ndarray, n: int) -> dict[int, float]:
    counts = np.bincount(y, minlength=n).astype(float)
    w = counts.sum() / (n * np.maximum(counts, 1))
    return {i: float(w[i]) for i in range(n)}


def optimizer(schedule, weight_decay: float = 0.0):
    """Adam, or AdamW with decoupled ``weight_decay`` when it is above 0."""
    import keras

    if weight_decay > 0:
        return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)
    return keras.optimizers.Adam(schedule)


def load_signals(clips: list[Clip], sr: int) -> list[np.ndarray]:
    return [load_audio(c.path, sr) for c in clips]


def train(args: argparse.Namespace) -> Path:
    import keras

    from training import models
    from training.threads import set_threads

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    keras.utils.set_random_seed(args.seed)
    set_threads(args.threads)

    p = F.FeatureParams(window_s=args.window_s, hop_s=args.hop_s, numcep=args.numcep,
                        nfilt=max(args.numcep, 40), normalisation=args.normalisation,
                        pitch=args.pitch)
    vad = VadParams()
    labels = list(VOCABULARY)
    clips = load_corpora(Path(args.data), args.corpora)
    val_actors = check_val_actors(args.val_actors) if args.val_actors else RAVDESS_VAL
    splits = by_split(clips, val_actors)
    if args.train_actors:
        try:
            splits["train"] = first_ravdess_actors(splits["train"], args.train_actors)
        except ValueError as e:
            raise SystemExit(f"training.speech: --train-actors: {e}") from None
    if args.max_clips:
        for k in splits:
            splits[k] = splits[k][:: max(1, len(splits[k]) // args.max_clips)][: args.max_clips]
    log.info("clips: %s", {k: len(v) for k, v in splits.items()})

    t0 = time.time()
    fit_clips = splits["train"] + (splits["val"] if args.final else [])
    train_sig = load_signals(fit_clips, p.sample_rate)
    val_sig = [] if args.final else load_signals(splits["val"], p.sample_rate)
    banks = [
        make_bank(x, labels.index(c.label), p, vad, args.versions, rng, tuple(args.speed_range))
        for x, c in zip(train_sig, fit_clips)
    ]
    log.info("feature banks ready in %.1fs", time.time() - t0)
    y_all = np.array([b.label for b in banks])
    cw = class_weights(y_all, len(labels))

    build = {"tcn": models.speech_tcn, "cnn2d": models.speech_cnn}[args.arch]
    model = build(p.window_frames, p.n_features, len(labels), widths=tuple(args.widths))
    sched = keras.optimizers.schedules.CosineDecay(args.lr, args.epochs * max(
        1, (len(banks) * args.per_clip) // args.batch))
    emotion_loss = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)
    trainer, reversal, spk, loss = model, None, None, emotion_loss
    if args.speaker_adversary > 0:
        spk = speaker_ids(fit_clips)
        trainer, reversal = models.with_speaker_adversary(model, int(spk.max()) + 1)
        loss = [emotion_loss, keras.losses.SparseCategoricalCrossentropy()]
        log.info("speaker adversary: %d speakers, strength up to %g", spk.max() + 1,
                 args.speaker_adversary)
    trainer.compile(optimizer=optimizer(sched, args.weight_decay), loss=loss)
    state_file, ckpt = out / "state.json", out / "checkpoint.weights.h5"
    state = {"epoch": 0, "best_uar": -1.0, "best_epoch": 0, "history": []}
    if args.resume and state_file.exists() and ckpt.exists():
        state = json.loads(state_file.read_text())
        model.build((None, p.window_frames, p.n_features))
        trainer.load_weights(str(ckpt))
        rng = np.random.default_rng(args.seed + state["epoch"])
        log.info("resumed at epoch %d (best val UAR %.3f)", state["epoch"], state["best_uar"])

    def predict(x):
        return model.predict(x, batch_size=256, verbose=0)

    swa_after = int(round(args.epochs * args.swa_start)) if args.swa_start > 0 else args.epochs
    swa = WeightAverage()
    bad = 0
    for epoch in range(state["epoch"], args.epochs):
        te = time.time()
        x, y = sample_epoch(banks, p, rng, args.per_clip)
        yo = keras.utils.to_categorical(y, len(labels))
        weights = {"class_weight": cw}
        if args.mixup > 0:  # mixed windows carry mixed class weights
            sw = np.array([cw[int(c)] for c in y], np.float32)
            x, yo, sw = mixup(x, yo, sw, args.mixup, rng)
            weights = {"sample_weight": sw}
        if reversal is None:
            h = model.fit(x, yo, batch_size=args.batch, epochs=1, verbose=0, shuffle=True,
                          **weights)
        else:  # two outputs: class weights as sample weights of the emotion loss
            reversal.strength.assign(adversary_strength(epoch, args.epochs, args.speaker_adversary))
            sw = np.array([cw[int(c)] for c in y], np.float32)  # no mixup with the adversary
            h = trainer.fit(x, [yo, np.repeat(spk, args.per_clip)], batch_size=args.batch,
                            epochs=1, verbose=0, shuffle=True,
                            sample_weight=[sw, np.ones(len(x), np.float32)])
        if epoch + 1 > swa_after:  # the epochs after that fraction of the run
            swa.add(model.get_weights())
        rec = {"epoch": epoch + 1, "loss": float(h.history["loss"][-1])}
        if reversal is not None:
            rec.update({"adversary_strength": round(float(reversal.strength.numpy()), 4),
                        "speaker_loss": float(h.history["speaker_loss"][-1])})
        if args.final:  # no held-out speakers: the last epoch is the model
            uar = float(epoch + 1)
        else:
            val = evaluate(predict, splits["val"], val_sig, p, vad, labels)
            uar = float(np.mean([m["uar"] for m in val.values()]))
            rec.update({"val_uar": uar, **{f"val_uar_{k}": v["uar"] for k, v in val.items()}})
        rec["seconds"] = round(time.time() - te, 1)
        state["history"].append(rec)
        log.info("epoch %d %s", epoch + 1, rec)
        if uar > state["best_uar"]:
            state["best_uar"], state["best_epoch"] = uar, epoch + 1
            model.save(str(out / "best.keras"))
            bad = 0
        else:
            bad += 1
        state["epoch"] = epoch + 1
        trainer.save_weights(str(ckpt))
        state_file.write_text(json.dumps(state, indent=1))
        if bad >= args.patience:
            log.info("early stop: no val improvement for %d epochs", bad)
            break
    swa_val = None
    if swa.count:
        model.set_weights(swa.weights())
        refresh_batchnorm(model, sample_epoch(banks, p, np.random.default_rng(args.seed), 2)[0])
        log.info("weights averaged over the last %d epochs", swa.count)
        if args.final:
            model.save(str(out / "best.keras"))
        else:
            val = evaluate(predict, splits["val"], val_sig, p, vad, labels)
            swa_val = {"val_uar": float(np.mean([m["uar"] for m in val.values()])),
                       **{f"val_uar_{k}": v["uar"] for k, v in val.items()}}
            log.info("averaged weights: %s", swa_val)
            model.save(str(out / "swa.keras"))
    meta = {
        "features": p.to_dict(),
        "vad": vars(vad) if hasattr(vad, "__dict__") else {},
        "labels": labels,
        "corpora": args.corpora,
        "seed": args.seed,
        "args": {k: v for k, v in vars(args).items() if k not in ("func", "argv")},
        "argv": getattr(args, "argv", []),
        "splits": {k: len(v) for k, v in splits.items()},
        "best_epoch": state["best_epoch"],
        "best_val_uar": None if args.final else state["best_uar"],
        "ravdess_val_actors": sorted(val_actors),
        "selection": ("final: trained on train+val speakers for a fixed number of epochs "
                      "chosen on a validation run" if args.final else
                      f"best mean validation UAR (RAVDESS actors {sorted(val_actors)}, "
                      "EmoDB 12 and 14)"),
        "history": state["history"],
        "weight_average": {"epochs": swa.count, "val": swa_val} if swa.count else None,
    }
    (out / "train_meta.json").write_text(json.dumps(meta, indent=1))
    return out / "best.keras"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data", help="folder with speech/ravdess, speech/emodb")
    ap.add_argument("--corpora", nargs="+", default=["ravdess", "emodb"],
                    help="ravdess, emodb, or a folder of <label>/*.wav")
    ap.add_argument("--out", default="runs/speech")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--patience", type=int, default=15)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=0.0,
                    help="decoupled weight decay (AdamW); 0: plain Adam, as the shipped model")
    ap.add_argument("--speed-range", type=float, nargs=2, default=list(SPEED_RANGE), metavar=("LO", "HI"),
                    help="speed/pitch perturbation factors of the augmented copies")
    ap.add_argument("--per-clip", type=int, default=3, help="random windows per clip per epoch")
    ap.add_argument("--versions", type=int, default=6, help="augmented copies per clip")
    ap.add_argument("--arch", choices=["tcn", "cnn2d"], default="tcn")
    ap.add_argument("--widths", type=int, nargs="+", default=[64, 96, 128, 128])
    ap.add_argument("--normalisation", choices=["c0rel", "cmvn", "none"], default="c0rel")
    ap.add_argument("--window-s", type=float, default=2.0)
    ap.add_argument("--hop-s", type=float, default=0.5)
    ap.add_argument("--numcep", type=int, default=40)
    ap.add_argument("--pitch", action="store_true",
                    help="append voicing and pitch columns to the cepstra")
    ap.add_argument("--mixup", type=float, default=0.0,
                    help="mixup Beta(alpha, alpha) between windows (0: off)")
    ap.add_argument("--swa-start", type=float, default=0.0,
                    help="average the weights of the epochs after this fraction of the run "
                         "(0: off; a --resume starts the average afresh); with --final the "
                         "average is the model")
    ap.add_argument("--speaker-adversary", type=float, default=0.0,
                    help="domain-adversarial training: a speaker head behind a gradient "
                         "reversal whose strength ramps up to this value (0: off); the "
                         "saved model has no such head")
    ap.add_argument("--val-actors", type=int, nargs="+", default=None, metavar="A",
                    help="RAVDESS validation actors among 1-18 (default 15-18): a fold of a "
                         "k-fold comparison; the others of 1-18 train")
    ap.add_argument("--train-actors", type=int, default=0, metavar="N",
                    help="train on only the N lowest-numbered RAVDESS training actors "
                         "(a learning curve over speakers); 0: all")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--max-clips", type=int, default=0, help="smoke runs: clips per split")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--final", action="store_true",
                    help="train on train+val speakers for exactly --epochs epochs (choose the "
                         "number on a validation run first); the last epoch is the model")
    return ap


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.val_actors:
        try:
            check_val_actors(args.val_actors)
        except ValueError as e:
            print(f"training.speech: --val-actors: {e}", file=sys.stderr)
            return 2
    lo, hi = args.speed_range
    if not 0.5 <= lo <= hi <= 2.0:
        print(f"training.speech: --speed-range: expected 0.5 <= LO <= HI <= 2, got {lo} {hi}",
              file=sys.stderr)
        return 2
    if args.train_actors < 0:
        print(f"training.speech: --train-actors: expected >= 0, got {args.train_actors}",
              file=sys.stderr)
        return 2
    if args.speaker_adversary > 0 and args.mixup > 0:
        print("training.speech: --speaker-adversary and --mixup: a mixed window has no one "
              "speaker; use one or the other", file=sys.stderr)
        return 2
    if args.speaker_adversary < 0:
        print(f"training.speech: --speaker-adversary: expected >= 0, got {args.speaker_adversary}",
              file=sys.stderr)
        return 2
    train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
