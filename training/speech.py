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
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edge.audio import features as F
from edge.audio.sources import load_audio
from edge.audio.speech import NO_SPEECH, NO_SPEECH_THRESHOLD, aggregate, gate, prepare_clip
from edge.audio.vad import VadParams, is_voiced
from edge.labels import VOCABULARY
from edge.manifest import sha256_file
from training.datasets import (
    RAVDESS_VAL,
    Clip,
    by_split,
    check_val_actors,
    first_ravdess_actors,
    fourq_split,
    load_corpora,
    read_4q,
)
from training.metrics import summary
from training.swa import WeightAverage, refresh_batchnorm

log = logging.getLogger("training.speech")

# Speed/pitch factors of the augmented copies unless --speed-range says otherwise.
SPEED_RANGE = (0.9, 1.1)


@dataclass
class Bank:
    """Augmented MFCC versions of one clip, with the window starts that are voiced.

    ``allowed``: the output classes this clip's corpus supervises (the masked loss only
    compares those); ``corpus`` decides how many windows an epoch draws from it."""

    feats: list[np.ndarray]
    starts: list[np.ndarray]
    label: int
    allowed: np.ndarray | None = None
    corpus: str = ""
    speaker: int = -1
    arousal: int = -1  # an arousal level of its own (BAVED, training.arousal), else -1


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


def _fit(f: np.ndarray, p: F.FeatureParams) -> np.ndarray:
    return np.resize(f, (p.window_frames, f.shape[1])) if f.shape[0] < p.window_frames else f


def voiced_starts(f: np.ndarray, p: F.FeatureParams, vad: VadParams) -> np.ndarray:
    """Window starts (every 5 frames) whose frames the energy gate calls speech; all
    starts when none is.  Only the log-energy column of ``f`` is read."""
    lv = F.frame_levels_db(f, p)
    cand = np.arange(0, f.shape[0] - p.window_frames + 1, 5)
    ok = np.array([is_voiced(lv[s : s + p.window_frames], vad) for s in cand], dtype=bool)
    return cand[ok] if ok.any() else cand


def make_bank(x: np.ndarray, label: int, p: F.FeatureParams, vad: VadParams,
              versions: int, rng: np.random.Generator,
              speed_range: tuple[float, float] = SPEED_RANGE, scenes=None) -> Bank:
    """Version 0 is the clip itself; the others are augmented.  With ``scenes`` (a
    callable rng -> rooms.Scene) each augmented copy is sped up or slowed down, its
    speech windows found on that clean copy, and then heard through its own room, noise
    and music (the room's direct path keeps the windows aligned)."""
    feats, starts = [], []
    for v in range(versions):
        if v == 0 or scenes is None:
            y = x if v == 0 else augment(x, rng, speed_range)
            f = _fit(F.mfcc(y, p), p)
            st = voiced_starts(f, p, vad)
        else:
            y = speed(x, rng.uniform(*speed_range))
            cheap = replace(p, pitch=False)  # the levels need no pitch columns
            st = voiced_starts(_fit(F.mfcc(y, cheap), cheap), cheap, vad)
            f = _fit(F.mfcc(scenes(rng).render(y, rng), p), p)
        feats.append(f)
        starts.append(st)
    return Bank(feats, starts, label)


def make_nonspeech_bank(x: np.ndarray, label: int, p: F.FeatureParams, versions: int,
                        rng: np.random.Generator, scenes) -> Bank:
    """Music or noise with no talker: every window is a 'no speech' example (those of
    digital silence left out)."""
    feats, starts = [], []
    for v in range(versions):
        y = x if v == 0 else scenes(rng).render(x, rng)
        f = _fit(F.mfcc(y, p), p)
        lv = F.frame_levels_db(f, p)
        cand = np.arange(0, f.shape[0] - p.window_frames + 1, 10)
        ok = np.array([np.mean(lv[s : s + p.window_frames] > -90) > 0.5 for s in cand], dtype=bool)
        feats.append(f)
        starts.append(cand[ok] if ok.any() else cand)
    return Bank(feats, starts, label)


def draws_per_clip(banks: list[Bank], per_clip: int, corpus_windows: int = 0) -> list[int]:
    """Windows an epoch draws from each bank: ``per_clip``, or with ``corpus_windows``
    about that many per corpus (at least 1 and at most ``per_clip`` per clip), so a large
    corpus does not drown the others."""
    if corpus_windows <= 0:
        return [per_clip] * len(banks)
    sizes: dict[str, int] = {}
    for b in banks:
        sizes[b.corpus] = sizes.get(b.corpus, 0) + 1
    k = {c: int(min(per_clip, max(1, round(corpus_windows / n)))) for c, n in sizes.items()}
    return [k[b.corpus] for b in banks]


def sample_epoch(banks: list[Bank], p: F.FeatureParams, rng: np.random.Generator,
                 per_clip: int = 2, draws: list[int] | None = None,
                 vtlp_range: tuple[float, float] | None = None, vtlp_share: float = 1.0,
                 pitch_shift: float = 0.0):
    """``per_clip`` (or ``draws[i]``) random voiced windows of a random version of each
    bank, bank by bank, (with ``vtlp_range``: each, or a ``vtlp_share`` of them, warped by a
    random vocal tract length; with ``pitch_shift``: each one's pitch moved by up to that
    many semitones, :mod:`training.vtlp`) normalised and spec-augmented:
    (x, labels, bank index)."""
    t = p.window_frames
    xs, ys, idx = [], [], []
    for i, b in enumerate(banks):
        for _ in range(per_clip if draws is None else draws[i]):
            v = int(rng.integers(len(b.feats)))
            s = int(rng.choice(b.starts[v]))
            xs.append(b.feats[v][s : s + t])
            ys.append(b.label)
            idx.append(i)
    x = np.stack(xs)
    if vtlp_range is not None:
        from training.vtlp import vtlp

        x = vtlp(x, p, rng, vtlp_range, vtlp_share)
    if pitch_shift > 0:
        from training.vtlp import shift_pitch

        x = shift_pitch(x, p, rng, pitch_shift)
    x = F.normalise(x, p)
    return spec_augment(x, rng), np.asarray(ys), np.asarray(idx)


def masked_targets(y: np.ndarray, masks: np.ndarray, smoothing: float = 0.1) -> np.ndarray:
    """(n, 2K) targets for :func:`masked_crossentropy`: the label smoothed over the
    clip's allowed classes, then the mask of those classes."""
    k = masks.shape[1]
    onehot = np.eye(k, dtype=np.float32)[y]
    # a clip that supervises no class (BAVED: arousal only) gets an all-zero row
    soft = (1 - smoothing) * onehot + smoothing * masks / np.maximum(masks.sum(axis=1, keepdims=True), 1)
    soft *= masks.sum(axis=1, keepdims=True) > 0
    return np.concatenate([soft, masks], axis=1).astype(np.float32)


def mix_teachers(yt: np.ndarray, teacher_probs: np.ndarray, weight: float) -> np.ndarray:
    """:func:`masked_targets` rows (n, 2K) with their target half moved toward the
    teachers' mean probabilities (n, K), renormalised over each row's allowed classes:
    (1 − weight)·target + weight·teacher. Rows that supervise no class (BAVED) stay zero."""
    k = teacher_probs.shape[1]
    if yt.shape != (len(teacher_probs), 2 * k):
        raise ValueError(f"teacher probabilities {teacher_probs.shape} do not match targets {yt.shape}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"--teacher-weight must be in [0, 1], got {weight}")
    target, mask = yt[:, :k], yt[:, k:]
    t = teacher_probs * mask
    t = t / np.maximum(t.sum(axis=1, keepdims=True), 1e-12)
    mixed = np.where(mask.sum(axis=1, keepdims=True) > 0, (1.0 - weight) * target + weight * t, target)
    return np.concatenate([mixed, mask], axis=1).astype(np.float32)


def load_teachers(runs: list[str], outputs: list[str], p: F.FeatureParams) -> list:
    """The teachers' emotion networks at their last epoch (``checkpoint.weights.h5``: a
    validation run's best epoch was chosen on the validation speakers, which would leak into
    a student judged on them), refused by name unless each was trained on the same outputs
    and features as this run."""
    from training.room_seeds import last_epoch_model

    teachers = []
    for run in map(Path, runs):
        try:
            meta = json.loads((run / "train_meta.json").read_text())
        except (OSError, ValueError) as e:
            raise SystemExit(f"training.speech: --teachers {run}: "
                             f"no readable train_meta.json ({e})") from None
        if meta.get("outputs") != outputs:
            raise SystemExit(f"training.speech: --teachers {run}: outputs {meta.get('outputs')}, "
                             f"this run's are {outputs}")
        if meta.get("features") != json.loads(json.dumps(p.to_dict())):
            raise SystemExit(f"training.speech: --teachers {run}: trained on other features")
        try:
            teachers.append(last_epoch_model(run)[0])
        except (OSError, KeyError, ValueError) as e:
            raise SystemExit(f"training.speech: --teachers {run}: cannot load its last epoch ({e})") from None
    return teachers


def masked_crossentropy(y_true, y_pred):
    """Cross-entropy over the classes a clip's corpus has: the softmax renormalised over
    the allowed outputs (a corpus without 'calm' neither teaches nor punishes it)."""
    from keras import ops

    k = y_pred.shape[-1]
    target, mask = y_true[:, :k], y_true[:, k:]
    p = y_pred * mask
    p = p / ops.maximum(ops.sum(p, axis=-1, keepdims=True), 1e-7)
    return -ops.sum(target * ops.log(ops.maximum(p, 1e-7)), axis=-1)


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


def window_outputs(predict, prepared) -> list[np.ndarray]:
    """The model's outputs for every window of every prepared clip, clip by clip."""
    sizes = [w.shape[0] for w, _ in prepared]
    probs = predict(np.concatenate([w for w, _ in prepared]))
    return list(np.split(probs, np.cumsum(sizes)[:-1]))


def clip_probs(predict, prepared, n_classes: int, no_speech_threshold: float = NO_SPEECH_THRESHOLD,
               hangover: int = 0) -> list[np.ndarray | None]:
    """Clip probabilities via the device's gate() and aggregate(); predict: (n,T,C) ->
    (n,K) with K = n_classes, or n_classes + 1 for a model with a no-speech output."""
    return probs_of(prepared, window_outputs(predict, prepared), n_classes, no_speech_threshold, hangover)


def probs_of(prepared, outputs: list[np.ndarray], n_classes: int,
             no_speech_threshold: float = NO_SPEECH_THRESHOLD, hangover: int = 0) -> list[np.ndarray | None]:
    """Clip probabilities from the model's ``outputs`` for the ``prepared`` clips
    (:func:`window_outputs`), through the device's gate() and aggregate()."""
    out = []
    for (_, voiced), probs in zip(prepared, outputs):
        emo, kept = gate(probs, voiced, n_classes, no_speech_threshold, hangover)
        out.append(aggregate(emo, kept))
    return out


def gate_rates(predict, prepared, n_classes: int,
               no_speech_threshold: float = NO_SPEECH_THRESHOLD, hangover: int = 0) -> dict:
    """Share of windows the device's gate passes to the emotion model, and of those the
    energy gate alone would pass."""
    kept = energy = total = 0
    for (_, voiced), probs in zip(prepared, window_outputs(predict, prepared)):
        _, k = gate(probs, voiced, n_classes, no_speech_threshold, hangover)
        kept, energy, total = kept + int(k.sum()), energy + int(voiced.sum()), total + len(voiced)
    return {"windows": total, "passed": kept / max(total, 1), "energy_gate_passed": energy / max(total, 1)}


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


def evaluate(predict, clips: list[Clip], signals, p, vad, labels,
             no_speech_threshold: float = NO_SPEECH_THRESHOLD, hangover: int = 0) -> dict:
    """Metrics per corpus, each scored over its own labels."""
    prepared = clip_windows(signals, p, vad)
    return score_clips(clip_probs(predict, prepared, len(labels), no_speech_threshold, hangover),
                       clips, labels)


def score_clips(probs: list[np.ndarray | None], clips: list[Clip], labels) -> dict:
    """Metrics per corpus from clip probabilities; a corpus with fewer labels than the
    model (EmoDB, ASED, nEMO) is scored by the argmax over its own labels."""
    out = {}
    for corpus in sorted({c.corpus for c in clips}):
        idx = [i for i, c in enumerate(clips) if c.corpus == corpus]
        present = sorted({labels.index(clips[i].label) for i in idx})
        allowed = present if len(present) < len(labels) else None
        y = [labels.index(clips[i].label) for i in idx]
        yhat = predictions([probs[i] for i in idx], allowed)
        m = summary(y, yhat, labels)
        if allowed is not None:
            m["note"] = f"argmax over the corpus' {len(present)} labels"
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


def load_music(data: Path, sr: int, args) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Decoded 4Q clips of the training and validation artists ([] when not needed)."""
    if not (args.rooms or args.no_speech):
        return [], []
    clips = read_4q(data / "music" / "4q")
    split = {k: [c for c in clips if fourq_split(c.artist) == k] for k in ("train", "val")}
    if args.max_clips:  # smoke runs: a few of each
        split = {k: v[: max(2, args.max_clips // 4)] for k, v in split.items()}
    by = {k: [load_audio(c.path, sr) for c in v] for k, v in split.items()}
    log.info("music clips: %d train, %d val artists' clips", len(by["train"]), len(by["val"]))
    return by["train"], by["val"]


def corpus_masks(clips: list[Clip], outputs: list[str]) -> dict[str, np.ndarray]:
    """Per corpus, the outputs its clips supervise: the labels it has, and 'no speech'
    (a talker is never 'nobody') when the model has that output."""
    masks = {}
    for corpus in sorted({c.corpus for c in clips}):
        m = np.zeros(len(outputs), np.float32)
        for c in clips:
            if c.corpus == corpus:
                m[outputs.index(c.label)] = 1.0
        if NO_SPEECH in outputs:
            m[outputs.index(NO_SPEECH)] = 1.0
        masks[corpus] = m
    return masks


def no_speech_banks(music: list[np.ndarray], p: F.FeatureParams, rng: np.random.Generator,
                    outputs: list[str], args) -> list[Bank]:
    """'No speech' examples: the training artists' songs and room noises, each in rooms."""
    from training.rooms import NOISE_KINDS, noise, random_scene

    def scenes(r):  # a song or a noise, in a room, maybe with another noise under it
        return random_scene(r, [], [], p_music=0.0)

    label = outputs.index(NO_SPEECH)
    noises = [noise(NOISE_KINDS[i % len(NOISE_KINDS)], 4 * p.sample_rate, rng)
              * 10 ** (rng.uniform(-40, -10) / 20) for i in range(args.noise_clips)]
    items = [(m, "music") for m in music] + [(z, "noise") for z in noises]
    banks = build_in_parallel(
        lambda i: make_nonspeech_bank(items[i][0].astype(np.float32), label, p, args.music_versions,
                                      np.random.default_rng([args.seed, 10**6 + i]), scenes),
        len(items), args.bank_workers)
    for b, (_, corpus) in zip(banks, items):
        b.allowed, b.corpus = np.ones(len(outputs), np.float32), corpus
    return banks


_JOB = None


def _run_job(i: int):
    return _JOB(i)


def build_in_parallel(job, n: int, workers: int) -> list:
    """``[job(i) for i in range(n)]`` over ``workers`` forked processes (each job seeds
    its own generator, so the result does not depend on the number of workers)."""
    global _JOB
    if workers <= 1 or n < 2:
        return [job(i) for i in range(n)]
    import multiprocessing as mp

    _JOB = job
    try:
        with mp.get_context("fork").Pool(workers) as pool:
            return pool.map(_run_job, range(n), chunksize=16)
    finally:
        _JOB = None


@dataclass
class ValSet:
    name: str
    clips: list[Clip]
    prepared: list
    kind: str  # "emotion" (scored by UAR) or "gate" (share of windows passed)


def validation_sets(clips: list[Clip], signals: list[np.ndarray], music_val: list[np.ndarray],
                    p: F.FeatureParams, vad: VadParams, args) -> list[ValSet]:
    """Validation speakers clean, RAVDESS validation actors in the evaluation rooms (with
    validation artists' music), and those songs alone in rooms."""
    if not clips:
        return []
    from training import room_eval

    sets = [ValSet("clean", clips, clip_windows(signals, p, vad), "emotion")]
    if args.rooms:
        rav = [i for i, c in enumerate(clips) if c.corpus == "ravdess"]
        for cond in room_eval.CONDITIONS:
            sim = room_eval.simulate(cond, [signals[i] for i in rav], room_eval.VAL_SEED, music_val)
            sets.append(ValSet(cond, [clips[i] for i in rav], clip_windows(sim.signals, p, vad), "emotion"))
    if music_val and args.no_speech:
        sim = room_eval.simulate("music_only", music_val, room_eval.VAL_SEED, music_val)
        sets.append(ValSet("music_only", [], clip_windows(sim.signals, p, vad), "gate"))
    return sets


def validate(predict, sets: list[ValSet], labels: list[str]) -> dict:
    """Validation figures and the selection score (docs/models/experiments.md): the mean
    clean UAR over the corpora, averaged with the mean RAVDESS UAR over the room
    conditions when there are any."""
    out: dict = {}
    clean, room = [], []
    for vs in sets:
        if vs.kind == "gate":
            out[f"val_passed_{vs.name}"] = round(gate_rates(predict, vs.prepared, len(labels))["passed"], 4)
            continue
        res = score_clips(clip_probs(predict, vs.prepared, len(labels)), vs.clips, labels)
        for corpus, m in res.items():
            key = f"val_uar_{corpus}" if vs.name == "clean" else f"val_uar_{corpus}_{vs.name}"
            out[key] = m["uar"]
            (clean if vs.name == "clean" else room).append(m["uar"])
        if vs.name == "clean":
            out["val_kept_clean"] = round(gate_rates(predict, vs.prepared, len(labels))["passed"], 4)
    out["score"] = float(np.mean(clean)) if not room else float((np.mean(clean) + np.mean(room)) / 2)
    return out


def read_banks(path: Path, corpora: list[str] | None = None) -> list[Bank]:
    """Feature banks pickled by a ``--resume`` run. With ``corpora``, only those corpora's
    banks and the no-speech ones ("music", "noise"): a leave-one-corpus-out run reuses the
    full run's banks without the left-out corpus."""
    import pickle

    try:
        with path.open("rb") as fh:
            banks = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError) as e:
        raise SystemExit(f"training.speech: cannot read feature banks {path}: {e}") from None
    if corpora is not None:
        have = {b.corpus for b in banks}
        missing = sorted(set(corpora) - have)
        if missing:
            raise SystemExit(f"training.speech: {path} has no banks of {missing} (it has {sorted(have)})")
        banks = [b for b in banks if b.corpus in set(corpora) | {"music", "noise"}]
    log.info("feature banks read from %s: %d banks", path, len(banks))
    return banks


def write_banks(path: Path, banks: list[Bank]) -> None:
    """Keep a long run's feature banks for the next ``--resume`` (or ``--banks-from``)."""
    import pickle

    with path.open("wb") as fh:
        pickle.dump(banks, fh, protocol=pickle.HIGHEST_PROTOCOL)


def room_scenes(args, music: list[np.ndarray], babble: list[np.ndarray]):
    """rng -> a random living room (training/rooms.py) with the training artists' music
    and a babble of training speakers."""
    from training.rooms import random_scene

    def scenes(r):
        return random_scene(r, music, babble, p_music=args.p_music)

    return scenes


def arousal_banks(args, p: F.FeatureParams, vad: VadParams, scenes, first_speaker: int,
                  n_outputs: int) -> list[Bank]:
    """BAVED's training speakers' clips (with ``--final`` its validation speakers' too),
    augmented like every clip, with their arousal level and no emotion class
    (``training.arousal``)."""
    from training.arousal import level_of_clip

    split = by_split(load_corpora(Path(args.data), ["baved"]))
    clips = split["train"] + (split["val"] if args.final else [])
    if args.max_clips:
        clips = clips[:: max(1, len(clips) // args.max_clips)][: args.max_clips]
    sig = load_signals(clips, p.sample_rate)
    banks = build_in_parallel(
        lambda i: make_bank(sig[i], 0, p, vad, args.versions,
                            np.random.default_rng([args.seed, 2 * 10**6 + i]),
                            tuple(args.speed_range), scenes),
        len(clips), args.bank_workers)
    for b, c, sp in zip(banks, clips, speaker_ids(clips) + first_speaker):
        b.allowed, b.corpus, b.speaker = np.zeros(n_outputs, np.float32), "baved", int(sp)
        b.arousal = level_of_clip(c)
    log.info("arousal banks: %d BAVED clips", len(banks))
    return banks


def make_banks(train_sig, fit_clips, outputs, allowed, spk_all, music_train, p, vad, scenes, args):
    """Every training clip's bank (and the no-speech banks), each seeded by its index."""
    banks = build_in_parallel(
        lambda i: make_bank(train_sig[i], outputs.index(fit_clips[i].label), p, vad, args.versions,
                            np.random.default_rng([args.seed, i]), tuple(args.speed_range), scenes),
        len(fit_clips), args.bank_workers)
    for b, c, sp in zip(banks, fit_clips, spk_all):
        b.allowed, b.corpus, b.speaker = allowed[c.corpus], c.corpus, int(sp)
    if args.no_speech:
        banks += no_speech_banks(music_train, p, np.random.default_rng([args.seed, 7]), outputs, args)
    return banks


def run_clips(args: argparse.Namespace
              ) -> tuple[dict[str, list[Clip]], list[Clip], list[Clip], list[int]]:
    """(the splits, the clips trained on, the validation clips, the RAVDESS validation
    actors) of a run's options."""
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
    fit_clips = [c for c in splits["train"] + (splits["val"] if args.final else []) if c.label]
    val_clips = [c for c in splits["val"] if c.label and not args.final]
    return splits, fit_clips, val_clips, val_actors


def train(args: argparse.Namespace) -> Path:
    import keras

    from training import models
    from training.threads import set_threads

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    state_file, ckpt = out / "state.json", out / "checkpoint.weights.h5"
    recipe = run_recipe(args)
    resumed = None
    if args.resume and state_file.exists() and ckpt.exists():
        resumed = json.loads(state_file.read_text())
        check_resume(state_file, resumed, recipe)  # before the banks: a wrong flag costs seconds
    rng = np.random.default_rng(args.seed)
    keras.utils.set_random_seed(args.seed)
    set_threads(args.threads)

    p = F.FeatureParams(window_s=args.window_s, hop_s=args.hop_s, numcep=args.numcep,
                        nfilt=max(args.numcep, 40), normalisation=args.normalisation,
                        pitch=args.pitch, noise_suppression=args.noise_suppression)
    vad = VadParams()
    labels = list(VOCABULARY)
    splits, fit_clips, val_clips, val_actors = run_clips(args)
    log.info("clips: %s", {k: len(v) for k, v in splits.items()})

    t0 = time.time()
    outputs = labels + ([NO_SPEECH] if args.no_speech else [])
    val_sig = load_signals(val_clips, p.sample_rate)
    music_val: list[np.ndarray] = []
    cache = out / "banks.pkl"
    # drawn on every path, so that the epochs' draws do not depend on where the banks came from
    babble_idx = rng.choice(len(fit_clips), min(400, len(fit_clips)), replace=False) if args.rooms else None
    train_sig: list[np.ndarray] | None = None
    if args.banks_from:
        check_banks(Path(args.banks_from), p, bank_recipe(args))
        banks = read_banks(Path(args.banks_from), args.corpora)
    elif args.resume and cache.exists():
        check_banks(cache, p, bank_recipe(args))
        banks = read_banks(cache)
    else:
        train_sig = load_signals(fit_clips, p.sample_rate)
        music_train, music_val = load_music(Path(args.data), p.sample_rate, args)
        scenes = room_scenes(args, music_train, [train_sig[i] for i in babble_idx]) if args.rooms else None
        banks = make_banks(train_sig, fit_clips, outputs, corpus_masks(fit_clips, outputs),
                           speaker_ids(fit_clips), music_train, p, vad, scenes, args)
        if args.resume:  # a long run: keep the banks for the next --resume
            write_banks(cache, banks)
            # what they hold, readable while this run still trains (--banks-from)
            write_bank_meta(cache, args, p, corpora=args.corpora)
    if args.arousal_aux:
        aux_cache = out / "banks_arousal.pkl"
        if args.resume and aux_cache.exists():
            check_banks(aux_cache, p, bank_recipe(args))
            aux = read_banks(aux_cache)
        else:
            scenes = None
            if args.rooms:
                music = load_music(Path(args.data), p.sample_rate, args)[0]
                babble = ([train_sig[i] for i in babble_idx] if train_sig is not None
                          else load_signals([fit_clips[i] for i in babble_idx], p.sample_rate))
                scenes = room_scenes(args, music, babble)
            aux = arousal_banks(args, p, vad, scenes, max(b.speaker for b in banks) + 1, len(outputs))
            if args.resume:
                write_banks(aux_cache, aux)
                write_bank_meta(aux_cache, args, p, corpora=["baved"])
        banks += aux
    if val_clips and (args.rooms or args.no_speech) and not music_val:
        music_val = load_music(Path(args.data), p.sample_rate, args)[1]
    log.info("feature banks ready in %.1fs: %d banks", time.time() - t0, len(banks))
    draws = draws_per_clip(banks, args.per_clip, args.corpus_windows)
    val_sets = validation_sets(val_clips, val_sig, music_val, p, vad, args)

    model = models.speech_model(args.arch, p.window_frames, p.n_features, len(outputs), args.widths)
    teachers = load_teachers(args.teachers, outputs, p) if args.teachers else []
    if teachers:
        log.info("distilling from %d teachers (weight %g): %s", len(teachers), args.teacher_weight,
                 args.teachers)
    sched = keras.optimizers.schedules.CosineDecay(args.lr, args.epochs * max(1, sum(draws) // args.batch))
    trainer, reversal, loss, weights = model, None, [masked_crossentropy], [1.0]
    if args.speaker_adversary > 0:
        n_spk = max(b.speaker for b in banks) + 1
        trainer, reversal = models.with_speaker_adversary(model, n_spk)
        loss, weights = loss + [keras.losses.SparseCategoricalCrossentropy()], weights + [1.0]
        log.info("speaker adversary: %d speakers, strength up to %g", n_spk, args.speaker_adversary)
    levels = None
    if args.arousal_aux:
        from training.arousal import bank_levels, with_arousal_head

        trainer = with_arousal_head(model, trainer)
        loss, weights = loss + [keras.losses.SparseCategoricalCrossentropy()], weights + [args.arousal_weight]
        levels = bank_levels(banks, outputs)
        log.info("arousal head: %d banks with a level, weight %g", int((levels >= 0).sum()),
                 args.arousal_weight)
    trainer.compile(optimizer=optimizer(sched, args.weight_decay), loss=loss[0] if len(loss) == 1 else loss,
                    loss_weights=None if len(loss) == 1 or not args.arousal_aux else weights)
    state = {"epoch": 0, "best_uar": -1.0, "best_epoch": 0, "history": [], "recipe": recipe}
    if resumed is not None:
        state = resumed
        state.setdefault("recipe", recipe)  # a state written before runs recorded their recipe
        model.build((None, p.window_frames, p.n_features))
        trainer.load_weights(str(ckpt))
        rng = np.random.default_rng(args.seed + state["epoch"])
        log.info("resumed at epoch %d (best val score %.3f)", state["epoch"], state["best_uar"])

    def predict(x):
        return model.predict(x, batch_size=256, verbose=0)

    swa_after = int(round(args.epochs * args.swa_start)) if args.swa_start > 0 else args.epochs
    swa = WeightAverage()
    bad = 0
    masks = np.stack([b.allowed for b in banks])
    bank_spk = np.array([b.speaker for b in banks])
    for epoch in range(state["epoch"], args.epochs):
        te = time.time()
        x, y, idx = sample_epoch(banks, p, rng, args.per_clip, draws,
                                 tuple(args.vtlp) if args.vtlp else None, args.vtlp_share,
                                 args.pitch_shift)
        emotion = masks[idx].sum(axis=1) > 0  # BAVED's windows carry no emotion
        cw = class_weights(y[emotion], len(outputs))
        sw = np.array([cw[int(c)] for c in y], np.float32) * emotion
        yt = masked_targets(y, masks[idx])
        if teachers:  # the teachers see the very windows the student sees, augmentation and all
            probs = np.mean([t.predict(x, batch_size=512, verbose=0) for t in teachers], axis=0)
            yt = mix_teachers(yt, probs, args.teacher_weight)
        if args.mixup > 0:  # mixed windows carry mixed targets and class weights
            x, yt, sw = mixup(x, yt, sw, args.mixup, rng)
        if trainer is model:
            h = model.fit(x, yt, batch_size=args.batch, epochs=1, verbose=0, shuffle=True,
                          sample_weight=sw)
        else:  # no mixup with a second head; a window without a target teaches that head nothing
            targets, weights_ = [yt], [sw]
            if reversal is not None:
                reversal.strength.assign(adversary_strength(epoch, args.epochs, args.speaker_adversary))
                spk = bank_spk[idx]
                targets.append(np.maximum(spk, 0))
                weights_.append((spk >= 0).astype(np.float32))
            if levels is not None:
                lv = levels[idx]
                targets.append(np.maximum(lv, 0))
                weights_.append((lv >= 0).astype(np.float32))
            h = trainer.fit(x, targets, batch_size=args.batch, epochs=1, verbose=0, shuffle=True,
                            sample_weight=weights_)
        if epoch + 1 > swa_after:  # the epochs after that fraction of the run
            swa.add(model.get_weights())
        rec = {"epoch": epoch + 1, "loss": float(h.history["loss"][-1])}
        if reversal is not None:
            rec.update({"adversary_strength": round(float(reversal.strength.numpy()), 4),
                        "speaker_loss": float(h.history["speaker_loss"][-1])})
        if levels is not None:
            rec["arousal_loss"] = float(h.history["arousal_loss"][-1])
        if args.final:  # no held-out speakers: the last epoch is the model
            uar = float(epoch + 1)
        else:
            scores = validate(predict, val_sets, labels)
            uar = scores.pop("score")
            rec.update({"val_uar": uar, **scores})
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
        refresh_batchnorm(model, sample_epoch(banks, p, np.random.default_rng(args.seed), 2, draws)[0])
        log.info("weights averaged over the last %d epochs", swa.count)
        if args.final:
            model.save(str(out / "best.keras"))
        else:
            swa_val = validate(predict, val_sets, labels)
            swa_val["val_uar"] = swa_val.pop("score")
            log.info("averaged weights: %s", swa_val)
            model.save(str(out / "swa.keras"))
    meta = {
        "features": p.to_dict(),
        "vad": vars(vad) if hasattr(vad, "__dict__") else {},
        "labels": labels,
        "outputs": outputs,
        "corpora": args.corpora,
        "seed": args.seed,
        "args": {k: v for k, v in vars(args).items() if k not in ("func", "argv")},
        "argv": getattr(args, "argv", []),
        "splits": {k: len(v) for k, v in splits.items()},
        "banks_per_corpus": {c: sum(b.corpus == c for b in banks) for c in sorted({b.corpus for b in banks})},
        "best_epoch": state["best_epoch"],
        "best_val_uar": None if args.final else state["best_uar"],
        "ravdess_val_actors": sorted(val_actors),
        "selection": ("final: trained on train+val speakers for a fixed number of epochs "
                      "chosen on a validation run" if args.final else
                      f"best validation score (training.speech.validate; RAVDESS actors "
                      f"{sorted(val_actors)} and the other corpora's validation speakers, "
                      "docs/models/splits.md)"),
        "history": state["history"],
        "weight_average": {"epochs": swa.count, "val": swa_val} if swa.count else None,
        "teachers": ({"runs": list(args.teachers), "weight": args.teacher_weight,
                      "sha256": [sha256_file(Path(r) / "checkpoint.weights.h5") for r in args.teachers]}
                     if args.teachers else None),
    }
    (out / "train_meta.json").write_text(json.dumps(meta, indent=1))
    return out / "best.keras"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data", help="folder with speech/ravdess, speech/emodb")
    ap.add_argument("--corpora", nargs="+", default=["ravdess", "emodb"],
                    help="ravdess, emodb, ased, nemo, or a folder of <label>/*.wav|flac|opus")
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
    ap.add_argument("--arch", choices=["tcn", "tcn-sep", "cnn2d"], default="tcn",
                    help="tcn-sep: the TCN with time-channel separable convolutions after the first")
    ap.add_argument("--widths", type=int, nargs="+", default=[64, 96, 128, 128])
    ap.add_argument("--normalisation", choices=["c0rel", "cmvn", "none"], default="c0rel")
    ap.add_argument("--window-s", type=float, default=2.0)
    ap.add_argument("--hop-s", type=float, default=0.5)
    ap.add_argument("--numcep", type=int, default=40)
    ap.add_argument("--pitch", action="store_true",
                    help="append voicing and pitch columns to the cepstra")
    ap.add_argument("--vtlp", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                    help="warp each training window's formants by a random vocal tract length "
                         "factor in [LO, HI] (training/vtlp.py; e.g. 0.9 1.1); off by default")
    ap.add_argument("--vtlp-share", type=float, default=1.0,
                    help="with --vtlp: the share of the windows warped (the others as drawn)")
    ap.add_argument("--pitch-shift", type=float, default=0.0, metavar="SEMITONES",
                    help="move each training window's pitch column by a random number of semitones "
                         "in [-S, S] (voiced frames; training/vtlp.py; needs --pitch); 0, the "
                         "default, leaves it")
    ap.add_argument("--noise-suppression", type=int, default=0, choices=range(5), metavar="LEVEL",
                    help="WebRTC noise suppression level before the features (0 off, 1-4; "
                         "edge.audio.denoise): the device runs the same")
    ap.add_argument("--teachers", nargs="+", default=[], metavar="RUN",
                    help="distil: each epoch's targets move toward the mean probabilities these "
                         "runs' networks (at their last epoch; same outputs and features) give "
                         "the same augmented windows")
    ap.add_argument("--teacher-weight", type=float, default=0.5,
                    help="with --teachers: the teachers' share of each target (default 0.5)")
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
    ap.add_argument("--rooms", action="store_true",
                    help="hear the augmented copies through simulated living rooms: room "
                         "responses, noises, training artists' music, babble, microphones "
                         "(training/rooms.py); validation adds the evaluation rooms")
    ap.add_argument("--p-music", type=float, default=0.3,
                    help="with --rooms: share of augmented copies with music under the voice")
    ap.add_argument("--no-speech", action="store_true",
                    help="a 'no speech' output trained on 4Q training artists' songs and room "
                         "noises: the device's gate for music and noise")
    ap.add_argument("--music-versions", type=int, default=3,
                    help="with --no-speech: versions (rooms) of each song and noise")
    ap.add_argument("--noise-clips", type=int, default=200,
                    help="with --no-speech: 4-second room-noise clips without a talker")
    ap.add_argument("--corpus-windows", type=int, default=0,
                    help="draw about this many windows per corpus per epoch (1 to --per-clip "
                         "per clip); 0: --per-clip from every clip")
    ap.add_argument("--bank-workers", type=int, default=1,
                    help="processes that compute the feature banks")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--max-clips", type=int, default=0, help="smoke runs: clips per split")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--banks-from", default="", metavar="BANKS_PKL",
                    help="train on another run's feature banks (its banks.pkl), keeping only "
                         "--corpora's and the no-speech banks: with --final, a leave-one-corpus-"
                         "out run of the same recipe (score it with training.loco); without, "
                         "another validation run on a validation run's banks")
    ap.add_argument("--arousal-aux", action="store_true",
                    help="BAVED's training speakers join through a training-only 3-level "
                         "arousal head, which the emotion-labelled clips supervise with their "
                         "label's circumplex level (training/arousal.py); the saved model is "
                         "unchanged in shape")
    ap.add_argument("--arousal-weight", type=float, default=0.3,
                    help="with --arousal-aux: the arousal loss's weight (the emotion loss's is 1)")
    ap.add_argument("--final", action="store_true",
                    help="train on train+val speakers for exactly --epochs epochs (choose the "
                         "number on a validation run first); the last epoch is the model")
    return ap


BANKS_META = "banks_meta.json"  # written with banks.pkl: whether they hold validation speakers


# the options that shape what a bank holds (its copies, their speeds, rooms and music, the
# no-speech banks); the seed is not among them: an arm's second seed reads its first's banks
BANK_RECIPE = ("speed_range", "versions", "rooms", "p_music", "no_speech", "music_versions",
               "noise_clips")


def bank_recipe(args: argparse.Namespace) -> dict:
    """This run's values of :data:`BANK_RECIPE` (as JSON gives them back)."""
    return json.loads(json.dumps({k: getattr(args, k) for k in BANK_RECIPE}))


# Options that say where and how fast a run works, not what it learns: a --resume may change them.
RUNTIME_OPTIONS = frozenset({"data", "out", "threads", "bank_workers", "resume", "banks_from",
                             "argv", "func"})


def run_recipe(args: argparse.Namespace) -> dict:
    """Every option that shapes what a run learns (all but :data:`RUNTIME_OPTIONS`), as JSON
    gives them back: recorded in ``state.json``, compared on ``--resume``."""
    return json.loads(json.dumps({k: v for k, v in sorted(vars(args).items())
                                  if k not in RUNTIME_OPTIONS}))


def differences(have: dict, want: dict, name=str) -> list[str]:
    """``"<name(key)> <have> (this run <want>)"`` for each key whose values differ, sorted."""
    return [f"{name(k)} {have.get(k)!r} (this run {want.get(k)!r})"
            for k in sorted(set(have) | set(want)) if have.get(k) != want.get(k)]


def check_resume(state_file: Path, state: dict, recipe: dict) -> None:
    """Refuse to go on with a run (``state``, read from ``state_file``) that was started with
    other options: its first epochs and the rest would have learnt different things, and only
    the last command is recorded."""
    recorded = state.get("recipe")
    if recorded is None:
        log.warning("%s records no recipe (written before runs did): the options of the epochs "
                    "already run cannot be checked", state_file)
        return
    diff = differences(recorded, recipe, lambda k: "--" + k.replace("_", "-"))
    if diff:
        raise SystemExit(f"training.speech: {state_file} was started with other options: "
                         f"{'; '.join(diff)}. Resume with the same options, or use another --out.")


def bank_meta_path(path: Path) -> Path:
    """``banks.pkl`` → ``banks_meta.json`` (:data:`BANKS_META`), ``banks_arousal.pkl`` →
    ``banks_arousal_meta.json``."""
    return path.with_name(f"{path.stem}_meta.json")


def write_bank_meta(path: Path, args: argparse.Namespace, p: F.FeatureParams, corpora: list[str]) -> None:
    bank_meta_path(path).write_text(json.dumps({"final": bool(args.final), "corpora": corpora,
                                                "features": p.to_dict(),
                                                "augmentation": bank_recipe(args)}) + "\n")


def check_banks(path: Path, p: F.FeatureParams, recipe: dict | None = None) -> None:
    """Refuse feature banks computed with other feature parameters, or made with another
    augmentation recipe, than this run's (their ``banks_meta.json`` says which; what banks
    written before it recorded a part are taken as they are)."""
    try:
        meta = json.loads(bank_meta_path(path).read_text())
    except (OSError, ValueError):
        return
    for part, want, what in (("features", p.to_dict(), "were computed with other feature parameters"),
                             ("augmentation", recipe, "were made with another augmentation recipe")):
        have = meta.get(part) if isinstance(meta, dict) else None
        if not isinstance(have, dict) or want is None:
            continue
        differ = differences(have, want)
        if differ:
            raise SystemExit(f"training.speech: feature banks {path} {what}: " + ", ".join(differ))


def banks_are_final(path: Path) -> bool:
    """Whether the run that wrote the banks ``path`` trained on validation speakers too
    (its ``banks_meta.json``, written with the banks, or its ``train_meta.json``, written
    when it ends, says ``--final``; a run that left neither is taken as one)."""
    for name, keys in ((BANKS_META, ("final",)), ("train_meta.json", ("args", "final"))):
        try:
            value = json.loads((path.parent / name).read_text())
            for k in keys:
                value = value[k]
            return bool(value)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return True


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
    if not 0.0 < args.vtlp_share <= 1.0:
        print(f"training.speech: --vtlp-share: expected 0 < SHARE <= 1, got {args.vtlp_share}",
              file=sys.stderr)
        return 2
    if args.vtlp and not 0.7 <= args.vtlp[0] <= args.vtlp[1] <= 1.4:
        print(f"training.speech: --vtlp: expected 0.7 <= LO <= HI <= 1.4, got {args.vtlp[0]} {args.vtlp[1]}",
              file=sys.stderr)
        return 2
    if not 0.0 <= args.pitch_shift <= 12.0 or (args.pitch_shift > 0 and not args.pitch):
        print(f"training.speech: --pitch-shift: expected 0..12 semitones with --pitch, got "
              f"{args.pitch_shift}{'' if args.pitch else ' without --pitch'}", file=sys.stderr)
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
    if args.banks_from and not args.final and banks_are_final(Path(args.banks_from)):
        print(f"training.speech: --banks-from {args.banks_from}: those banks hold validation "
              "speakers (a --final run's); a run without --final needs a validation run's banks",
              file=sys.stderr)
        return 2
    if args.arousal_aux and args.mixup > 0:
        print("training.speech: --arousal-aux and --mixup: a mixed window has no one arousal "
              "level; use one or the other", file=sys.stderr)
        return 2
    if args.arousal_weight < 0:
        print(f"training.speech: --arousal-weight: expected >= 0, got {args.arousal_weight}",
              file=sys.stderr)
        return 2
    train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
