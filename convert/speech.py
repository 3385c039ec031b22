"""Convert a trained speech run to int8 TFLite, check parity, score it, write the manifest.

    python -m convert.speech --run runs/speech --data ../shared/data \
        --out models_tflite/speech_emotion.tflite --report docs/models/speech

The int8 model is scored through edge.runtime (the device's interpreter wrapper) and
edge.audio.speech (the device's windowing, VAD and aggregation) on the fixed test
speakers; the float Keras model is scored the same way for the parity check.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shlex
import sys
from pathlib import Path

import numpy as np

from convert.tflite import keras_predict, to_int8_tflite
from edge.audio import features as F
from edge.audio.speech import NO_SPEECH, NO_SPEECH_THRESHOLD
from edge.audio.vad import VadParams
from edge.manifest import Manifest, TensorSpec, manifest_path, sha256_file
from edge.runtime import load_model
from training import room_eval
from training.baselines import pooled_stats, run_baselines
from training.commands import command_line
from training.datasets import by_split, fourq_split, load_corpora, read_4q
from training.report import write_report
from training.speech import clip_probs, clip_windows, evaluate, load_signals, predictions

log = logging.getLogger("convert.speech")

LICENCES = {
    "ravdess": "RAVDESS (Livingstone & Russo 2018, PLoS ONE 13(5): e0196391; CC BY-NC-SA 4.0: "
               "non-commercial use, share alike)",
    "emodb": "EmoDB (Burkhardt et al., Interspeech 2005; published for research)",
    "ased": "ASED (Retta et al., ACM TALLIP 2022, doi:10.1145/3529759; no licence stated)",
    "nemo": "nEMO (Christop, LREC-COLING 2024; CC BY-NC-SA 4.0)",
    "4q": "4Q audio emotion dataset music, as no-speech and background examples (Panda, "
          "Malheiro & Paiva, IEEE TAFFC 2018; research use)",
}


def licence(corpora: list[str], no_speech: bool) -> str:
    names = [LICENCES[c] for c in corpora if c in LICENCES] + ([LICENCES["4q"]] if no_speech else [])
    return ("Trained on " + "; ".join(names) + ". The weights inherit the non-commercial terms "
            "of RAVDESS and nEMO.")


def train_command(train_args: dict) -> str:
    """The full training command line, every option explicit, from the recorded args."""
    return command_line("training.speech", train_args)


def subsample(splits: dict, max_clips: int) -> dict:
    if not max_clips:
        return splits
    return {k: v[:: max(1, len(v) // max_clips)][:max_clips] for k, v in splits.items()}


def move_input_bn(model, p: F.FeatureParams):
    """(model, p) with the model's input BatchNorm moved into the features: exactly the
    same function in float, but the int8 input tensor then carries standardised columns.

    A full-integer model quantises its input with ONE scale. The raw cepstra span about
    ±120 while most columns vary by a few units, so that scale (~0.93) rounds away much of
    the small columns' detail; the input BatchNorm that would standardise them runs only
    after the rounding. Here its affine map x*a + b (a = gamma/sqrt(var+eps),
    b = beta - mean*a) becomes ``p.column_scale``/``column_offset``, applied by
    ``features.normalise`` on the device, and the layer becomes the identity. A model
    without an ``in_bn`` layer, or ``p`` that already has a map, comes back unchanged.
    """
    import keras

    names = {layer.name for layer in model.layers}
    if "in_bn" not in names or p.column_scale is not None:
        return model, p
    bn = model.get_layer("in_bn")
    gamma, beta, mean, var = (np.asarray(w, np.float64) for w in bn.get_weights())
    a = gamma / np.sqrt(var + bn.epsilon)
    moved = keras.models.clone_model(model)
    moved.set_weights(model.get_weights())
    moved.get_layer("in_bn").set_weights([np.ones_like(gamma), np.zeros_like(beta),
                                          np.zeros_like(mean), np.ones_like(var) - bn.epsilon])
    return moved, dataclasses.replace(p, column_scale=tuple(a), column_offset=tuple(beta - mean * a))


def representative_windows(prepared, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    pool = np.concatenate([w[v] if v.any() else w for w, v in prepared])
    idx = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
    return [pool[i : i + 1] for i in idx]


def parity(float_predict, int8_predict, prepared, labels, clips,
           threshold: float = NO_SPEECH_THRESHOLD, hangover: int = 0) -> dict:
    allw = np.concatenate([w for w, _ in prepared])
    pf, pq = float_predict(allw), int8_predict(allw)
    fp = predictions(clip_probs(float_predict, prepared, len(labels), threshold, hangover))
    qp = predictions(clip_probs(int8_predict, prepared, len(labels), threshold, hangover))
    return {
        "windows": int(len(allw)),
        "window_top1_agreement": float(np.mean(pf.argmax(1) == pq.argmax(1))),
        "clip_top1_agreement": float(np.mean(fp == qp)),
        "max_abs_prob_diff": float(np.max(np.abs(pf - pq))),
    }


def validation_check(float_predict, int8_predict, clips, signals, p, vad, labels, t,
                     model_bytes: int, h: int = 0) -> dict:
    """The int8 bound on validation speakers alone (float − int8 accuracy per corpus, clip
    and window agreement) and the file's size: what an adoption rule reads."""
    val_q = evaluate(int8_predict, clips, signals, p, vad, labels, t, h)
    val_f = evaluate(float_predict, clips, signals, p, vad, labels, t, h)
    out = parity(float_predict, int8_predict, clip_windows(signals, p, vad), labels, clips, t, h)
    out["accuracy_delta_float_minus_int8"] = {k: val_f[k]["accuracy"] - val_q[k]["accuracy"] for k in val_q}
    out.update(clip_parity(val_f, val_q))
    out["val_int8"] = {k: {m: v[m] for m in ("n", "accuracy", "uar")} for k, v in val_q.items()}
    out["model_bytes"] = model_bytes
    return {"val_parity": out}


def clip_parity(float_metrics: dict, int8_metrics: dict, pooled_bar: float = 0.01) -> dict:
    """The parity bar in clips (experiments.md, session 18): over the pooled clips of every
    corpus the int8 model is at most ``pooled_bar`` less accurate than the float one, and on
    no corpus does it get more than max(1, floor(pooled_bar * n)) fewer of its n clips right.
    Counts are from each corpus's ``n`` and ``accuracy`` (evaluate's per-corpus metrics)."""
    def correct(m):
        return int(round(m["accuracy"] * m["n"]))

    lost = {k: correct(float_metrics[k]) - correct(q) for k, q in int8_metrics.items()}
    allowed = {k: max(1, int(np.floor(pooled_bar * q["n"] + 1e-9))) for k, q in int8_metrics.items()}
    n = sum(q["n"] for q in int8_metrics.values())
    pooled = sum(lost.values()) / n if n else 0.0
    return {"clips_lost_float_minus_int8": lost, "clips_lost_allowed": allowed,
            "pooled_accuracy_delta_float_minus_int8": pooled,
            "clip_parity_met": bool(n and pooled <= pooled_bar + 1e-12
                                    and all(lost[k] <= allowed[k] for k in lost))}


def convert(args: argparse.Namespace) -> dict:
    import keras

    run = Path(args.run)
    meta = json.loads((run / "train_meta.json").read_text())
    p = F.FeatureParams.from_dict(meta["features"])
    vad = VadParams()
    labels = meta["labels"]
    no_speech = NO_SPEECH in meta.get("outputs", labels)
    t, h = args.no_speech_threshold, args.no_speech_hangover
    model = keras.models.load_model(run / "best.keras", compile=False)
    if not args.keep_input_bn:
        model, p = move_input_bn(model, p)
    splits = by_split([c for c in load_corpora(Path(args.data), meta["corpora"]) if c.label])
    splits = subsample(splits, args.max_clips)
    if args.val_only and meta.get("best_val_uar") is None:
        raise SystemExit(f"convert.speech: --val-only: {run} is a --final run (no validation speakers)")
    if args.val_only or args.int8_only:  # the test speakers are not even decoded
        splits = {k: splits[k] for k in ("train", "val")}
    sig = {k: load_signals(v, p.sample_rate) for k, v in splits.items()}

    train_prep = clip_windows(sig["train"], p, vad)
    reps = representative_windows(train_prep, args.calibration_windows, meta["seed"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(to_int8_tflite(model, reps))
    log.info("wrote %s (%d bytes)", out, out.stat().st_size)

    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(out))
    i0, o0 = it.get_input_details()[0], it.get_output_details()[0]
    manifest = Manifest(
        name=out.stem,
        modality="speech",
        labels=tuple(labels),
        input=TensorSpec(tuple(int(d) for d in i0["shape"]), "int8", *map(float, i0["quantization"][:1]),
                         int(i0["quantization"][1])),
        output=TensorSpec(tuple(int(d) for d in o0["shape"]), "int8", float(o0["quantization"][0]),
                          int(o0["quantization"][1])),
        features=p.to_dict(),
        sha256=sha256_file(out),
        model_file=out.name,
        licence=licence(meta["corpora"], no_speech),
        gate={"no_speech_output": True, "threshold": t, **({"hangover": h} if h else {})}
        if no_speech else {},
    )
    manifest_path(out).write_text(manifest.to_json())

    if args.int8_only:
        return {"model_bytes": out.stat().st_size}
    int8 = load_model(out, "speech")
    float_predict = keras_predict(model)
    if args.val_only:
        return validation_check(float_predict, int8.predict, splits["val"], sig["val"], p, vad, labels, t,
                                out.stat().st_size, h)
    test_q = evaluate(int8.predict, splits["test"], sig["test"], p, vad, labels, t, h)
    test_f = evaluate(float_predict, splits["test"], sig["test"], p, vad, labels, t, h)
    par = parity(float_predict, int8.predict, clip_windows(sig["test"], p, vad), labels,
                 splits["test"], t, h)
    par["uar_delta_float_minus_int8"] = {
        k: test_f[k]["uar"] - test_q[k]["uar"] for k in test_q
    }
    par["accuracy_delta_float_minus_int8"] = {
        k: test_f[k]["accuracy"] - test_q[k]["accuracy"] for k in test_q
    }
    final = meta.get("best_val_uar") is None  # trained on the val speakers too
    val_q = {} if final else evaluate(int8.predict, splits["val"], sig["val"], p, vad, labels, t, h)
    val_par = {} if final else parity(float_predict, int8.predict, clip_windows(sig["val"], p, vad),
                                      labels, splits["val"], t, h)
    if val_q:  # the int8 bound on validation speakers, where adoption is decided
        val_f = evaluate(float_predict, splits["val"], sig["val"], p, vad, labels, t, h)
        val_par["accuracy_delta_float_minus_int8"] = {
            k: val_f[k]["accuracy"] - val_q[k]["accuracy"] for k in val_q}
    music = {k: [c for c in read_4q(Path(args.data) / "music" / "4q") if fourq_split(c.artist) == k]
             for k in ("val", "test")}
    if args.max_clips:
        music = {k: v[: max(1, args.max_clips // 4)] for k, v in music.items()}
    music_sig = {k: load_signals(v, p.sample_rate) for k, v in music.items()}
    room_test = room_eval.room_metrics(int8.predict, splits["test"], sig["test"], music_sig["test"],
                                       room_eval.TEST_SEEDS, p, vad, labels, t, h)
    room_val = {} if final else room_eval.room_metrics(
        int8.predict, splits["val"], sig["val"], music_sig["val"], (room_eval.VAL_SEED,), p, vad, labels,
        t, h)
    loco = {}
    if args.loco:  # the recipe without one corpus, on all of that corpus
        from training import loco as L

        loco = L.summarise([L.score_run(Path(r), Path(args.data), max_clips=args.max_clips)
                            for r in args.loco])

    baselines = {}
    if not args.no_baselines:
        tr_x = np.stack([pooled_stats(x, p, vad) for x in sig["train"] + sig["val"]])
        tr_y = np.array([labels.index(c.label) for c in splits["train"] + splits["val"]])
        sets = {}
        for corpus in sorted({c.corpus for c in splits["test"]}):
            idx = [i for i, c in enumerate(splits["test"]) if c.corpus == corpus]
            x = np.stack([pooled_stats(sig["test"][i], p, vad) for i in idx])
            y = np.array([labels.index(splits["test"][i].label) for i in idx])
            allowed = sorted(set(y.tolist())) if len(set(y.tolist())) < len(labels) else None
            sets[corpus] = (x, y, allowed)
        baselines = run_baselines(tr_x, tr_y, sets, labels)

    n_params = int(model.count_params())
    command = train_command(meta["args"])
    convert_cmd = "python -m convert.speech " + shlex.join(getattr(args, "argv", []))
    manifest = Manifest(
        **{
            **manifest.__dict__,
            "training": {
                "data": {c: "../shared/data/speech/" + c for c in meta["corpora"]},
                "split": "speaker-independent, fixed before any run (docs/models/splits.md): "
                         "RAVDESS test actors 19-24, val 15-18; EmoDB test 15,16, val 12,14; "
                         "ASED test id%5==0, val id%5==1; nEMO test KD0,SM0, val EB0,TP0; "
                         "4Q music by artist",
                "clips": meta["splits"],
                "train_command": command,
                "convert_command": convert_cmd,
                "train_args": meta["args"],
                "best_epoch": meta["best_epoch"],
                "selection": meta.get("selection", ""),
                "best_val_uar": meta.get("best_val_uar"),
                "parameters": n_params,
                "calibration_windows": len(reps),
                "vad": vad.__dict__,
            },
            "metrics": {
                "test_int8": manifest_test(test_q),
                "test_float": {k: {m: v[m] for m in ("n", "accuracy", "uar", "macro_f1")}
                               for k, v in test_f.items()},
                "val_int8": {k: {m: v[m] for m in ("n", "accuracy", "uar")} for k, v in val_q.items()},
                "parity": par,
                "val_parity": val_par,
                "room_test_int8": room_test,
                "room_val_int8": room_val,
                "leave_one_corpus_out": loco,
                "model_bytes": out.stat().st_size,
                "baselines": baselines,
                "target": target_check(test_q, par, room_test, loco),
            },
        }
    )
    manifest_path(out).write_text(manifest.to_json())
    if args.report:
        write_report(Path(args.report), {
            "title": f"Speech emotion model {out.name}",
            "command": f"{command} && {convert_cmd}",
            "test": test_q, "float_test": test_f, "parity": par, "baselines": baselines,
            "room": {room_eval.room_section("test", room_test): room_test,
                     **({room_eval.room_section("validation", room_val): room_val} if room_val else {})},
            "history": meta.get("history", []), "parameters": n_params, "loco": loco,
        })
    return manifest.metrics


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="training output folder (best.keras, train_meta.json)")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default="models_tflite/speech_emotion.tflite")
    ap.add_argument("--report", default="", help="folder for report.md and PNGs")
    ap.add_argument("--calibration-windows", type=int, default=400)
    ap.add_argument("--keep-input-bn", action="store_true",
                    help="leave the input BatchNorm in the network (the int8 input then "
                         "quantises the raw columns; before session 6 every model did)")
    ap.add_argument("--max-clips", type=int, default=0, help="smoke runs: clips per split")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--val-only", action="store_true",
                    help="an adoption check: convert (a bare manifest, no metrics), then only float "
                         "− int8 on the validation speakers and the file size, printed as JSON; the "
                         "test speakers are not decoded")
    ap.add_argument("--int8-only", action="store_true",
                    help="write the int8 model (and a bare manifest) and stop: the file the gate "
                         "threshold is chosen with (training.room_eval --split val --sweep) before "
                         "the conversion that scores the test speakers")
    ap.add_argument("--no-speech-threshold", type=float, default=NO_SPEECH_THRESHOLD, metavar="T",
                    help="the gate's default threshold on the no-speech output, recorded in the "
                         "manifest (choose it on validation artists: training.room_eval --sweep)")
    ap.add_argument("--no-speech-hangover", type=int, default=0, choices=range(21), metavar="WINDOWS",
                    help="voiced windows refused after one the no-speech output refused "
                         "(edge.audio.speech.Hangover), recorded in the manifest's gate")
    ap.add_argument("--loco", nargs="+", default=[], metavar="RUN",
                    help="leave-one-corpus-out runs of the same recipe (training.loco) to score "
                         "and record in the manifest")
    return ap


TARGETS = {  # issue 19's bars on the test speakers (int8)
    "ravdess_test_uar_int8": 0.70, "emodb_test_uar_int8": 0.72, "int8_accuracy_drop_max": 0.01,
    "room_noise15_uar": 0.60, "room_music10_uar": 0.55, "music_windows_passed_max": 0.05,
    "speech_windows_kept_clean_min": 0.90, "speech_windows_kept_room_min": 0.80,
    "leave_one_corpus_out_mean_uar_4class": 0.50,
}


def manifest_test(scored: dict) -> dict:
    """The per-corpus test figures a manifest records, of :func:`training.speech.evaluate`'s."""
    return {k: {m: v[m] for m in ("n", "accuracy", "uar", "macro_f1", "no_guess")} for k, v in scored.items()}


def target_check(test_q: dict, parity: dict, room: dict | None = None, loco: dict | None = None) -> dict:
    """The bars, as measured: clean RAVDESS (>= 0.70) and EmoDB (>= 0.72) test UAR, float -
    int8 accuracy <= 0.01 on every corpus, in the room (room_eval.room_metrics) and on
    left-out corpora (training.loco; met only when all of EmoDB, ASED and nEMO were left out)."""
    def get(corpus):
        return test_q.get(corpus, {}).get("uar")

    def at_least(v, bar):
        return v is not None and bool(v >= bar)

    room, loco = room or {}, loco or {}
    left_out = set(loco.get("per_corpus", {}))
    drops = parity["accuracy_delta_float_minus_int8"]
    return {**TARGETS,
            "uar_met": at_least(get("ravdess"), TARGETS["ravdess_test_uar_int8"]),
            "emodb_uar_met": at_least(get("emodb"), TARGETS["emodb_test_uar_int8"]),
            "int8_drop_met": bool(all(d <= 0.01 for d in drops.values())),
            "room_noise15_met": at_least(room.get("room_noise15_uar"), TARGETS["room_noise15_uar"]),
            "room_music10_met": at_least(room.get("room_music10_uar"), TARGETS["room_music10_uar"]),
            "music_gate_met": room.get("music_windows_passed") is not None
            and bool(room["music_windows_passed"] <= TARGETS["music_windows_passed_max"]),
            "speech_kept_met": at_least(room.get("speech_windows_kept_clean"),
                                        TARGETS["speech_windows_kept_clean_min"])
            and at_least(room.get("speech_windows_kept_room_noise15"),
                         TARGETS["speech_windows_kept_room_min"]),
            "leave_one_corpus_out_met": left_out >= {"emodb", "ased", "nemo"}
            and at_least(loco.get("mean_uar_4class"), TARGETS["leave_one_corpus_out_mean_uar_4class"])}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    metrics = convert(args)
    keys = ("val_parity",) if args.val_only else ("model_bytes",) if args.int8_only else (
        "test_int8", "parity", "model_bytes")
    print(json.dumps({k: metrics[k] for k in keys}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
