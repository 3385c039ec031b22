"""Face path speed, detection quality and memory on this machine; prints one JSON object.

    python bench/bench_face.py [--data ../shared/data] [--frames 60] [--repeats 3]
                               [--scene-frames 300]

* frame_320x240 (per detector, BlazeFace and Haar): one 320×240 BGR camera-like frame
  (a real FER-2013 PrivateTest face, upscaled to 160 px, on a plain background) through
  FaceRecogniser.classify_frame: detect + crop/align + preprocess + classify (int8, over
  the manifest's test views), median over frames and over repeats; the parts are timed
  separately too, and a frame with no face (real FER pixels, faces destroyed).
* scenes (per detector and frame size): the PrivateTest composed scenes of
  training.face_scenes: recall (faces >= 40 px, by size), false faces per 100 face-free
  frames, time per frame.
* rss: peak RSS of a fresh process that classifies one frame through the face path, and
  whether it imported OpenCV (cv2).
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.runtime import default_models_dir, load_model  # noqa: E402
from edge.vision import align  # noqa: E402
from edge.vision.expression import ALIGN, FaceOptions, FaceRecogniser  # noqa: E402
from edge.vision.faces import face_probs, preprocess_crops  # noqa: E402

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


def frame_times(rec, frames, blank, p) -> dict:
    total, detect, prep, classify, found = [], [], [], [], 0
    for f in frames:
        _, dt = timed(rec.classify_frame, f)
        total.append(dt)
        (gray, dets), dt_det = timed(rec.detect, f)
        detect.append(dt_det)
        if not dets:
            continue
        found += 1
        chosen = max(dets, key=lambda d: d.box[2] * d.box[3])

        def crop(g, d):
            geo = None if d.keypoints is None else align.geometry(d.box, d.keypoints, ALIGN)
            return preprocess_crops(rec.crop(g, d, geo), p)

        x, dt_prep = timed(crop, gray, chosen)
        prep.append(dt_prep)
        _, dt_cls = timed(face_probs, rec.model.predict, x, p)
        classify.append(dt_cls)
    no_face = [timed(rec.classify_frame, blank)[1] for _ in range(len(frames))]
    return {"frames": len(frames), "faces_found": found, "total": total, "detect": detect,
            "crop_align_preprocess": prep, "classify": classify, "no_face_frame": no_face}


def rss_probe(model: Path) -> dict:
    """Peak RSS (VmHWM: ru_maxrss would carry this process's own peak over exec) of a fresh
    process classifying a frame and a crop through the default face path (the test-time
    views still import OpenCV), of one that only detects (no OpenCV), and each with
    OpenCV imported."""
    code = (
        "import sys, numpy as np\n"
        "from edge.runtime import load_model\n"
        "from edge.vision.expression import FaceRecogniser\n"
        f"rec = FaceRecogniser(load_model({str(model)!r}, 'face'))\n"
        "rec.classify_frame(np.full((240, 320, 3), 120, np.uint8))\n"
        "rec.classify_crop(np.full((48, 48), 120, np.uint8))\n"
        "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]\n"
        "print(hwm, 'cv2' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    kb, cv2 = out.stdout.split()
    code_cv2 = code.replace("import sys", "import cv2, sys")
    out2 = subprocess.run([sys.executable, "-c", code_cv2], capture_output=True, text=True, cwd=ROOT,
                          check=True)
    detect = code.replace("rec.classify_frame(", "rec.detect(").replace(  # detection only
        "rec.classify_crop(np.full((48, 48), 120, np.uint8))\n", "")
    runs = [subprocess.run([sys.executable, "-c", c], capture_output=True, text=True, cwd=ROOT,
                           check=True).stdout.split() for c in (detect, detect.replace(
                               "import sys", "import cv2, sys"))]
    return {"face_path_peak_rss_mb": round(int(kb) / 1024, 1), "imports_cv2": cv2 == "True",
            "same_with_cv2_imported_mb": round(int(out2.stdout.split()[0]) / 1024, 1),
            "detect_only_peak_rss_mb": round(int(runs[0][0]) / 1024, 1),
            "detect_only_imports_cv2": runs[0][1] == "True",
            "detect_only_with_cv2_imported_mb": round(int(runs[1][0]) / 1024, 1)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--model", default=str(default_models_dir() / "face_expression.tflite"))
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scene-frames", type=int, default=300, help="face frames and face-free frames each")
    ap.add_argument("--no-process", action="store_true", help="skip the edge-cli predict process run")
    ap.add_argument("--no-scenes", action="store_true", help="skip the composed scenes")
    args = ap.parse_args()

    import cv2

    from training.face_scenes import compose, detector_boxes, score
    from training.fer import TEST, read_npz

    model_path = Path(args.model)
    model = load_model(model_path, "face")
    test = read_npz(Path(args.data) / "face" / "fer2013.npz").part(TEST)
    frames = [frame_with_face(c) for c in test.pixels[: args.frames]]
    result = {
        "bench": "face",
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "opencv": cv2.__version__, "arch": platform.machine(), "cpus": os.cpu_count(),
                    "load_average_1min": round(os.getloadavg()[0], 2)},
        "model": model_path.name,
        "model_bytes": model_path.stat().st_size,
        "interpreter": model.interpreter_module,
    }
    blank = faceless(test.pixels)
    for name in ("blazeface", "haar"):
        rec = timed_recogniser(model, name)
        p = rec.params
        rec.classify_frame(frames[0])  # warm-up (detector load, interpreter)
        runs = [frame_times(rec, frames, blank, p) for _ in range(args.repeats)]
        stage = {k: median_ms([t for r in runs for t in r[k]]) if runs[0][k] else None
                 for k in ("total", "detect", "crop_align_preprocess", "classify", "no_face_frame")}
        result[f"frame_320x240_{name}"] = {
            "frames": len(frames), "repeats": args.repeats, "faces_found": runs[0]["faces_found"],
            **{f"{k}_ms_median": v for k, v in stage.items()},
            "max_fps_one_core": round(1000 / stage["total"], 1),
        }
    result["model_calls_per_face"] = p.views
    scenes = {}
    for w, h in () if args.no_scenes else ((320, 240), (640, 480)):
        faces, empty = compose("private", args.scene_frames, args.scene_frames, (w, h), Path(args.data))
        for name in ("blazeface", "haar"):
            scenes[f"{name}_{w}x{h}"] = score(detector_boxes(name), faces, empty)
    if scenes:
        result["scenes_private"] = scenes
    result["rss"] = rss_probe(model_path)
    if not args.no_process:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "private_test"
            folder.mkdir()
            for i, crop in enumerate(test.pixels):
                cv2.imwrite(str(folder / f"{i:05d}.png"), crop)
            argv = ["--face-crops", "--face-model", str(model_path), str(folder)]
            result["predict_process"] = summarise_runs([run_predict(argv) for _ in range(args.repeats)],
                                                       "image")
        result["tensorflow_imported"] = "tensorflow" in result["predict_process"]["heavy_modules_imported"]
    print(json.dumps(result, indent=1))
    return 0 if not result.get("tensorflow_imported") else 1


def timed_recogniser(model, detector: str) -> FaceRecogniser:
    """The face path as the daemon builds it, but with the detector looking at every frame:
    the bench repeats its frames, which still-frame reuse would otherwise skip."""
    return FaceRecogniser(model, options=FaceOptions(detector=detector, still_frames=1))


def faceless(pixels: np.ndarray) -> np.ndarray:
    """A 320×240 BGR frame of real FER pixels with the faces destroyed (shuffled 8×8 tiles)."""
    rng = np.random.default_rng(0)
    tiles = pixels[rng.choice(len(pixels), 40)].reshape(40, 6, 8, 6, 8).transpose(0, 1, 3, 2, 4)
    tiles = tiles.reshape(-1, 8, 8)
    grid = tiles[rng.choice(len(tiles), 30 * 40)].reshape(30, 40, 8, 8).transpose(0, 2, 1, 3)
    return np.repeat(grid.reshape(240, 320)[:, :, None], 3, axis=2)


if __name__ == "__main__":
    raise SystemExit(main())
