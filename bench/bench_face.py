"""Face path speed and memory on this machine; prints one JSON object.

    python bench/bench_face.py [--data ../shared/data] [--frames 60] [--repeats 3]

* frame_ms: one 320×240 BGR camera-like frame (a real FER-2013 PrivateTest face,
  upscaled to 160 px, on a plain background) through FaceRecogniser.classify_frame:
  detect (Haar cascade) + crop + preprocess + classify (int8, over the manifest's test views), median
  over frames; the parts are timed separately too, and a frame with no face.
* predict_process: `edge-cli predict --json --face-crops` over the 3,589 PrivateTest
  crops written as PNG files, in a fresh process: wall time and peak RSS (median over
  repeats; the process's own high-water mark, VmHWM), and which heavy modules
  (tensorflow, keras, scipy, sklearn) that process imported (must be none).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.runtime import default_models_dir, load_model  # noqa: E402
from edge.vision.expression import FaceRecogniser  # noqa: E402
from edge.vision.faces import crop_face, face_probs, largest, preprocess_crops  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from bench_speech import run_predict, summarise_runs  # noqa: E402  (edge-cli predict --json in a fresh process)


def frame_with_face(crop: np.ndarray) -> np.ndarray:
    import cv2

    big = cv2.resize(crop, (160, 160), interpolation=cv2.INTER_CUBIC)
    frame = np.full((240, 320), int(np.median(crop)), np.uint8)
    frame[40:200, 80:240] = big
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def median_ms(times: list[float]) -> float:
    return round(statistics.median(times) * 1000, 3)


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--model", default=str(default_models_dir() / "face_expression.tflite"))
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import cv2

    from training.fer import TEST, read_npz

    model_path = Path(args.model)
    rec = FaceRecogniser(load_model(model_path, "face"))
    p = rec.params
    test = read_npz(Path(args.data) / "face" / "fer2013.npz").part(TEST)
    frames = [frame_with_face(c) for c in test.pixels[: args.frames]]
    rec.classify_frame(frames[0])  # warm-up (cascade load, interpreter)

    total, detect, prep, classify, found = [], [], [], [], 0
    for f in frames:
        _, dt = timed(rec.classify_frame, f)
        total.append(dt)
        (gray, boxes), dt_det = timed(rec.detect, f)
        detect.append(dt_det)
        box = largest(boxes)
        if box is None:
            continue
        found += 1
        x, dt_prep = timed(lambda g, b: preprocess_crops(crop_face(g, b, p), p), gray, box)
        prep.append(dt_prep)
        _, dt_cls = timed(face_probs, rec.model.predict, x, p)
        classify.append(dt_cls)
    blank = np.full((240, 320, 3), 120, np.uint8)
    no_face = [timed(rec.classify_frame, blank)[1] for _ in range(args.frames)]

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "private_test"
        folder.mkdir()
        for i, crop in enumerate(test.pixels):
            cv2.imwrite(str(folder / f"{i:05d}.png"), crop)
        argv = ["--face-crops", "--face-model", str(model_path), str(folder)]
        runs = [run_predict(argv) for _ in range(args.repeats)]

    result = {
        "bench": "face",
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "opencv": cv2.__version__, "arch": platform.machine(), "cpus": os.cpu_count()},
        "model": model_path.name,
        "model_bytes": model_path.stat().st_size,
        "interpreter": rec.model.interpreter_module,
        "flip_average": p.flip_average,
        "zooms": list(p.zooms),
        "rotations": list(p.rotations),
        "model_calls_per_face": p.views,
        "frame_320x240": {
            "frames": len(frames),
            "faces_found": found,
            "total_ms_median": median_ms(total),
            "detect_ms_median": median_ms(detect),
            "crop_preprocess_ms_median": median_ms(prep) if prep else None,
            "classify_ms_median": median_ms(classify) if classify else None,
            "no_face_frame_ms_median": median_ms(no_face),
            "max_fps_one_core": round(1 / statistics.median(total), 1),
        },
        "predict_process": summarise_runs(runs, "image"),
    }
    result["tensorflow_imported"] = "tensorflow" in result["predict_process"]["heavy_modules_imported"]
    print(json.dumps(result, indent=1))
    return 0 if not result["tensorflow_imported"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
