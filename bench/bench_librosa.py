"""`edge-cli predict` beside a librosa + Keras implementation of the same approach; one JSON.

    python bench/bench_librosa.py [--data ../shared/data] [--repeats 3] [--keras RUN/best.keras]

Needs the bench extra (`pip install -e '.[bench,train]'`: librosa and TensorFlow).

Both sides run in a fresh process over the 360 RAVDESS test clips (actors 19-24), one
JSON line per clip, alternating, `--repeats` times; the figure is the ratio of the median
wall times (imports, model load, decoding and all).

* edge: `edge-cli predict --json` with the shipped int8 model (what bench_speech.py
  measures as predict_process).
* reference: what a workstation implementation of the seeds' approach does with the
  field's usual tools: `librosa.load` at 16 kHz, `librosa.feature.mfcc` (40 coefficients,
  25 ms frames, 10 ms hop, 40 mel bands), F0 over 80-400 Hz by `librosa.yin` with
  `librosa.feature.rms` as the second prosodic column (default: librosa's cheapest
  tracker, the comparison that flatters the reference least) or, with --pitch pyin, F0
  and voicing probability by `librosa.pyin` (what librosa recommends for speech),
  the same 2 s windows with a 0.5 s hop, and the same network (`training.models.speech_model`,
  float Keras, batched `predict` per clip), probabilities averaged over windows.
  With --keras a trained float model is loaded; without it an untrained network in the
  compared model's shape (its manifest's widths, window and outputs) is built (its numbers
  are meaningless, its cost is the same).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_speech import REPORT, run_predict, summarise_runs  # noqa: E402

from edge.runtime import default_models_dir  # noqa: E402

REFERENCE = """
import json, os, sys
from pathlib import Path
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
import numpy as np, librosa
sys.path.insert(0, sys.argv[3])
keras_path, pitch, shape, folders = sys.argv[2], sys.argv[4], json.loads(sys.argv[5]), sys.argv[6:]
if keras_path:
    import keras
    model = keras.models.load_model(keras_path, compile=False)
else:
    from training.models import speech_model
    model = speech_model(shape['arch'], shape['frames'], shape['features'], shape['classes'],
                         shape['widths'])
SR, WIN, HOP = 16000, 200, 50
for folder in folders:
    for path in sorted(Path(folder).iterdir()):
        y, _ = librosa.load(path, sr=SR, mono=True)
        mfcc = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=40, n_fft=512, win_length=400,
                                    hop_length=160, n_mels=40).T
        if pitch == 'pyin':
            f0, _, voicing = librosa.pyin(y, fmin=80, fmax=400, sr=SR, frame_length=1024,
                                          win_length=400, hop_length=160)
            f0 = np.nan_to_num(f0, nan=150.0)
        else:
            f0 = librosa.yin(y, fmin=80, fmax=400, sr=SR, frame_length=1024, hop_length=160)
            voicing = librosa.feature.rms(y=y, frame_length=400, hop_length=160)[0]
        n = min(len(mfcc), len(f0), len(voicing))
        feats = np.column_stack([mfcc[:n], 20 * voicing[:n], 12 * np.log2(f0[:n] / 150)])
        feats = feats.astype(np.float32)
        if n < WIN:
            feats = np.pad(feats, ((0, WIN - n), (0, 0)))
        starts = range(0, max(1, len(feats) - WIN + 1), HOP)
        batch = np.stack([feats[s:s + WIN] for s in starts])
        probs = model.predict(batch, verbose=0).mean(axis=0)
        print(json.dumps({'file': str(path), 'label': int(probs.argmax())}), flush=True)
rc = 0
""" + REPORT


def reference_shape(model_path: Path | str) -> dict:
    """The network the reference builds: the compared model's window, features, outputs,
    architecture and convolution widths, from its manifest (an untrained copy of the same
    shape; a manifest from before ``--arch`` existed is the full-convolution TCN)."""
    from edge.audio.features import FeatureParams
    from edge.manifest import load_manifest, manifest_path

    m = load_manifest(manifest_path(Path(model_path)))
    p = FeatureParams.from_dict(m.features)
    args = (m.training or {}).get("train_args", {})
    widths = args.get("widths")
    if not widths:
        raise SystemExit(f"{model_path}: its manifest records no training.train_args.widths, "
                         "so the reference cannot be built in its shape")
    return {"frames": p.window_frames, "features": p.n_features, "classes": int(m.output.shape[-1]),
            "widths": [int(w) for w in widths], "arch": args.get("arch", "tcn")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--model", default=str(default_models_dir() / "speech_emotion.tflite"))
    ap.add_argument("--keras", default="", help="a trained float model (default: untrained, same shape)")
    ap.add_argument("--pitch", choices=["yin", "pyin"], default="yin")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import librosa  # fail here, not in the child, when the extra is missing

    ravdess = Path(args.data) / "speech" / "ravdess"
    folders = [ravdess / f"Actor_{a:02d}" for a in range(19, 25)]
    shape = reference_shape(args.model)
    edge_runs, ref_runs = [], []
    for _ in range(args.repeats):
        edge_runs.append(run_predict(["--speech-model", args.model, *folders]))
        ref_runs.append(run_predict([args.keras, ROOT, args.pitch, json.dumps(shape), *folders],
                                    script=REFERENCE))
    edge = summarise_runs(edge_runs, "clip")
    ref = summarise_runs(ref_runs, "clip")
    result = {
        "bench": "librosa_side_by_side",
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "arch": platform.machine(), "cpus": os.cpu_count(),
                    "librosa": librosa.__version__},
        "repeats": args.repeats,
        "reference_pitch": args.pitch,
        "reference_model": args.keras or ("untrained training.models.speech_model, the compared "
                                          f"model's shape {shape}"),
        "edge_predict": edge,
        "librosa_keras": ref,
        "speedup_wall_median": round(ref["wall_s_median"] / edge["wall_s_median"], 2),
        "rss_ratio_median": round(ref["peak_rss_mb_median"] / edge["peak_rss_mb_median"], 2),
    }
    print(json.dumps(result, indent=1))
    return 0 if edge["clips"] == ref["clips"] == 360 else 1


if __name__ == "__main__":
    raise SystemExit(main())
