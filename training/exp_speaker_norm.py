"""Experiment (not part of the pipeline): speaker-level cepstral mean subtraction.

    python -m training.exp_speaker_norm --norm      # each speaker's mean subtracted
    python -m training.exp_speaker_norm             # the same script without it

The upper bound of speaker normalisation: every speaker's mean (c0rel-normalised) MFCC
vector over the voiced windows of all their clips, unlabelled, is subtracted from their
windows in training and in validation.  Otherwise the recipe of ``training.speech``
(TCN, 50 epochs, cosine, class weights, 6 augmented versions, 3 windows per clip per
epoch).  Result (docs/models/experiments.md): no validation gain.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from edge.audio import features as F
from edge.audio.vad import VadParams
from edge.labels import VOCABULARY
from training import models
from training.datasets import by_split, load_corpora
from training.speech import (
    class_weights,
    clip_probs,
    clip_windows,
    load_signals,
    make_bank,
    score_clips,
    spec_augment,
)

log = logging.getLogger("training.exp_speaker_norm")


def speaker_means(windows_by_clip, clips) -> dict[str, np.ndarray]:
    """Mean feature vector per speaker over the given (n, T, C) windows of each clip."""
    acc: dict[str, list[np.ndarray]] = {}
    for w, c in zip(windows_by_clip, clips):
        if len(w):
            acc.setdefault(f"{c.corpus}:{c.speaker}", []).append(w.reshape(-1, w.shape[-1]))
    return {k: np.concatenate(v).mean(axis=0) for k, v in acc.items()}


def main(argv: list[str] | None = None) -> int:
    import keras

    from training.threads import set_threads

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--norm", action="store_true", help="subtract each speaker's mean")
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    set_threads(2)
    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    p = F.FeatureParams(window_s=2.0, hop_s=0.5, numcep=40, nfilt=40, normalisation="c0rel")
    vad, labels, t = VadParams(), list(VOCABULARY), p.window_frames
    splits = by_split(load_corpora(Path(args.data), ["ravdess", "emodb"]))
    tr, va = splits["train"], splits["val"]
    banks = [make_bank(x, labels.index(c.label), p, vad, 6, rng)
             for x, c in zip(load_signals(tr, p.sample_rate), tr)]
    prepared = clip_windows(load_signals(va, p.sample_rate), p, vad)
    zero = np.zeros(p.numcep, np.float32)
    train_mean = speaker_means(
        [F.normalise(np.stack([b.feats[0][s : s + t] for s in b.starts[0]]), p) for b in banks], tr)
    val_mean = speaker_means([w[v] for w, v in prepared], va)

    def shift(means, c):
        return means[f"{c.corpus}:{c.speaker}"] if args.norm else zero

    def sample():
        xs, ys = [], []
        for b, c in zip(banks, tr):
            for _ in range(3):
                v = int(rng.integers(len(b.feats)))
                s = int(rng.choice(b.starts[v]))
                xs.append(F.normalise(b.feats[v][s : s + t], p) - shift(train_mean, c))
                ys.append(b.label)
        return spec_augment(np.stack(xs).astype(np.float32), rng), np.array(ys)

    model = models.speech_tcn(t, p.numcep, len(labels))
    steps = args.epochs * max(1, len(banks) * 3 // 64)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps)),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
    cw = class_weights(np.array([b.label for b in banks]), len(labels))
    shifted = [(w - shift(val_mean, c), v) for (w, v), c in zip(prepared, va)]
    history = []
    for epoch in range(args.epochs):
        x, y = sample()
        model.fit(x, keras.utils.to_categorical(y, len(labels)), batch_size=64, epochs=1,
                  verbose=0, class_weight=cw, shuffle=True)
        probs = clip_probs(lambda b: model.predict(b, batch_size=256, verbose=0), shifted,
                           len(labels))
        uar = {k: m["uar"] for k, m in score_clips(probs, va, labels).items()}
        history.append(float(np.mean(list(uar.values()))))
        log.info("epoch %d val UAR %s mean %.3f", epoch + 1,
                 {k: round(v, 3) for k, v in uar.items()}, history[-1])
    log.info("norm=%s best %.3f last %.3f mean of the last 10 %.3f", args.norm, max(history),
             history[-1], float(np.mean(history[-10:])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
