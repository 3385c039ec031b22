"""Convert the trained music model to int8 TFLite, check parity, score the test artists once.

    python -m convert.music --run runs/music --data ../shared/data/music/4q \
        --out models_tflite/music_emotion.tflite --report docs/models/music

The int8 model is scored through edge.music.emotion (the scanner's decode, features,
standardisation and interpreter) on the fixed 4Q test artists; the float Keras model on
the same vectors for the parity check; the baselines are fitted on train+val.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

from convert.tflite import to_int8_tflite
from edge.audio.sources import decode_excerpt
from edge.manifest import Manifest, TensorSpec, manifest_path, sha256_file
from edge.music import features as M
from edge.music.emotion import MusicEmotion
from training.commands import command_line
from training.metrics import summary
from training.music import (
    QUADRANTS,
    baseline_models,
    clip_frames,
    crop_vectors,
    feature_columns,
    full_vectors,
    splits,
)
from training.report import write_report

log = logging.getLogger("convert.music")

LICENCE = (
    "Trained on the 4Q audio emotion dataset (Panda, Malheiro & Paiva, 'Novel audio features for "
    "music emotion recognition', IEEE TAFFC 2018; mir.dei.uc.pt, research use; the audio is "
    "commercial AllMusic previews). Evaluate and use for research; the weights inherit those terms."
)
TARGET = {"test_accuracy_int8": 0.65, "float_minus_int8_max": 0.01, "model_bytes_max": 500_000}


def manifest_for(out: Path, p: M.MusicFeatureParams, extra: dict | None = None) -> Manifest:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(out))
    i0, o0 = it.get_input_details()[0], it.get_output_details()[0]

    def spec(d) -> TensorSpec:
        return TensorSpec(tuple(int(x) for x in d["shape"]), "int8", float(d["quantization"][0]),
                          int(d["quantization"][1]))

    return Manifest(name=out.stem, modality="music", labels=QUADRANTS, input=spec(i0),
                    output=spec(o0), features=p.to_dict(), sha256=sha256_file(out),
                    model_file=out.name, licence=LICENCE, **(extra or {}))


def dev_parity(model, device: MusicEmotion, vecs: np.ndarray, p: M.MusicFeatureParams,
               y: np.ndarray) -> dict:
    """Float vs int8 on the train+val whole-excerpt vectors, checked before any test clip."""
    pq = device.predict_vectors(vecs)
    pf = np.asarray(model.predict(M.standardise(vecs, p), verbose=0))
    return {"clips": len(vecs), "top1_agreement": float(np.mean(pq.argmax(1) == pf.argmax(1))),
            "max_abs_prob_diff": float(np.max(np.abs(pq - pf))),
            "accuracy_delta_float_minus_int8": float(np.mean(pf.argmax(1) == y)
                                                     - np.mean(pq.argmax(1) == y))}


def convert(args: argparse.Namespace) -> dict:
    import keras

    run = Path(args.run)
    meta = json.loads((run / "train_meta.json").read_text())
    p0 = M.MusicFeatureParams.from_dict(meta["features"])
    import dataclasses

    p = dataclasses.replace(p0, column_scale=tuple(meta["column_scale"]),
                            column_offset=tuple(meta["column_offset"]))
    model = keras.models.load_model(run / "final.keras")
    sp = splits(Path(args.data))
    dev = sp["train"] + sp["val"]
    frs = clip_frames(dev, p0, Path(args.frames) if args.frames else run / "frames.npz")
    rng = np.random.default_rng(meta["seed"])
    reps = np.concatenate([crop_vectors(f, p0, 2, rng) for f in frs])
    reps = M.standardise(reps, p)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:  # a refused model replaces nothing
        staged = Path(tmp) / out.name
        staged.write_bytes(to_int8_tflite(model, [r[None] for r in reps]))
        manifest_path(staged).write_text(manifest_for(staged, p).to_json())
        dev_par = dev_parity(model, MusicEmotion(staged), full_vectors(frs, p0), p,
                             np.array([QUADRANTS.index(c.quadrant) for c in dev]))
        log.info("float vs int8 on the train+val clips: %s", dev_par)
        if dev_par["accuracy_delta_float_minus_int8"] > 0.01 or dev_par["top1_agreement"] < 0.98:
            raise SystemExit(f"{out}: int8 parity on the train+val clips fails the rule "
                             f"(float - int8 <= 0.01, top-1 agreement >= 0.98): {dev_par}; "
                             "nothing replaced, the test artists were not scored")
        staged.replace(out)
        manifest_path(staged).replace(manifest_path(out))
    if args.dev_parity_only:
        return {"dev_parity": dev_par, "model_bytes": out.stat().st_size}

    # the test artists, once: decoded and scored as the scanner does
    device = MusicEmotion(out)
    test = sp["test"]
    y = np.array([QUADRANTS.index(c.quadrant) for c in test])
    vecs = np.stack([M.clip_vector(decode_excerpt(c.path, p.sample_rate, p.excerpt_s, p.min_s)[0], p)
                     for c in test])
    pq = device.predict_vectors(vecs)
    pf = np.asarray(model.predict(M.standardise(vecs, p), verbose=0))
    labels = list(QUADRANTS)
    test_q = summary(y, pq.argmax(1), labels)
    test_f = summary(y, pf.argmax(1), labels)
    par = {"clips": len(test), "top1_agreement": float(np.mean(pq.argmax(1) == pf.argmax(1))),
           "max_abs_prob_diff": float(np.max(np.abs(pq - pf))),
           "accuracy_delta_float_minus_int8": test_f["accuracy"] - test_q["accuracy"]}

    baselines = {}
    xd = full_vectors(frs, p0)
    yd = np.array([QUADRANTS.index(c.quadrant) for c in dev])
    for mname, make in baseline_models().items():
        for fname, prefix in (("mfcc_stats", "mfcc"), ("mfcc_spectral_chroma_rhythm", "")):
            cols = feature_columns(p0, prefix)
            m = make().fit(xd[:, cols], yd)
            s = summary(y, m.predict(vecs[:, cols]), labels)
            baselines[f"{mname} ({fname})"] = {"4q_test": {k: s[k] for k in
                                                          ("accuracy", "uar", "macro_f1", "n")}}
    n_bytes = out.stat().st_size
    target = {**TARGET, "accuracy_met": bool(test_q["accuracy"] >= 0.65),
              "int8_drop_met": bool(par["accuracy_delta_float_minus_int8"] <= 0.01),
              "size_met": bool(n_bytes <= 500_000)}
    keep = ("n", "accuracy", "uar", "macro_f1")
    train_cmd = command_line(meta.get("module", "training.music"), meta["args"])
    convert_cmd = "python -m convert.music " + shlex.join(args.argv)
    extra = {
        "training": {"data": "../shared/data/music/4q", "clips": meta["clips"],
                     "split": "by artist: sha1(artist)[:8] mod 10 in {0,1} test, 2 val, else train "
                              "(training/datasets.py fourq_split, docs/models/splits.md)",
                     "selection": meta["selection"], "chosen": meta["chosen"],
                     "config": meta["config"], "epochs": meta["epochs"],
                     "candidates": {k: {m: v[m] for m in ("cv_acc_at_best", "best_epochs",
                                                          "val_acc_at_best")}
                                    for k, v in meta["candidates"].items()},
                     "reference_mlp": meta.get("reference_mlp"), "dev_parity": dev_par,
                     "dev_baselines": meta["dev_baselines"], "train_command": train_cmd,
                     "convert_command": convert_cmd, "parameters": int(model.count_params()),
                     "calibration_vectors": len(reps)},
        "metrics": {"test_int8": {"4q_test": {k: test_q[k] for k in keep}},
                    "test_float": {"4q_test": {k: test_f[k] for k in keep}},
                    "per_quadrant_recall_int8": {q: test_q["per_class"][q]["recall"] for q in labels},
                    "confusion_int8": test_q["confusion"], "parity": par, "model_bytes": n_bytes,
                    "baselines": baselines, "target": target},
    }
    manifest_path(out).write_text(manifest_for(out, p, extra).to_json())
    if args.report:
        write_report(Path(args.report), {
            "title": f"Music emotion model {out.name}", "command": f"{train_cmd} && {convert_cmd}",
            "test": {"4q_test": test_q}, "float_test": {"4q_test": test_f}, "parity": par,
            "baselines": baselines, "history": [], "parameters": int(model.count_params())})
    return extra["metrics"]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/music")
    ap.add_argument("--data", default="../shared/data/music/4q")
    ap.add_argument("--out", default="models_tflite/music_emotion.tflite")
    ap.add_argument("--report", default="docs/models/music")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--frames", default=None, help="frame cache (default RUN/frames.npz)")
    ap.add_argument("--dev-parity-only", action="store_true",
                    help="convert and check float vs int8 on the train+val clips, then stop: "
                         "no test clip is read, no report (a model not chosen to ship)")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    from training.threads import set_threads

    set_threads(args.threads)
    metrics = convert(args)
    if args.dev_parity_only:
        print(json.dumps(metrics, indent=1))
        return 0
    print(json.dumps({k: metrics[k] for k in ("test_int8", "test_float", "per_quadrant_recall_int8",
                                              "parity", "model_bytes", "target")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
