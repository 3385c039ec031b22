"""Alignment of FER-2013 crops through the device's face path, and what it is worth.

    python -m training.face_align --calibrate   # AlignParams from Training crops
    python -m training.face_align --views       # PublicTest accuracy per test-time view set
    python -m training.face_align --report      # PublicTest + PrivateTest through the new path

``--calibrate`` runs BlazeFace on FER-2013 *Training* crops the way
:meth:`FaceRecogniser.align_crop` does and prints the medians that frame the model's
crop relative to the detector's box (``edge.vision.expression.ALIGN``) and the spread of
the head-pose proxies (roll, yaw), which set the honesty limits.  ``--views`` chooses
test-time views on PublicTest only; ``--report`` gives the figures for the manifest's
views (PrivateTest: reported, never chosen on).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from edge.runtime import default_models_dir, load_model
from edge.vision import align
from edge.vision.expression import FaceRecogniser
from edge.vision.faces import FaceParams
from training.fer import TEST, TRAIN, VAL, read_npz

VIEW_SETS = {
    "1 | 0": ([1.0], [0.0]),
    "1.05 1.1 | 0": ([1.05, 1.1], [0.0]),
    "1.05 1.1 | -6 6": ([1.05, 1.1], [-6.0, 6.0]),
    "1.05 1.1 | -3 3": ([1.05, 1.1], [-3.0, 3.0]),
}


def recogniser(model: Path | None = None) -> FaceRecogniser:
    return FaceRecogniser(load_model(model or default_models_dir() / "face_expression.tflite", "face"))


def crop_detections(rec: FaceRecogniser, pixels: np.ndarray) -> list[tuple | None]:
    """Per crop: (box, keypoints) in crop pixels as align_crop finds them, or None."""
    return [rec.find_in_crop(c) for c in pixels]


def calibrate(rec: FaceRecogniser, pixels: np.ndarray) -> dict:
    dets = crop_detections(rec, pixels)
    side, dx, dy, roll, yaw = [], [], [], [], []
    for found in dets:
        if found is None:
            continue
        box, kp = found
        g = align.geometry(box, kp, align.AlignParams())
        bw = max(box[2], box[3])
        ux, uy = math.cos(math.radians(g.roll)), math.sin(math.radians(g.roll))
        ox, oy = 24.0 - g.centre[0], 24.0 - g.centre[1]  # crop centre - box centre
        side.append(48.0 / bw)
        dx.append((ox * ux + oy * uy) / bw)
        dy.append((-ox * uy + oy * ux) / bw)
        roll.append(g.roll)
        yaw.append(g.yaw)
    q = [1, 5, 50, 95, 99]

    def pct(v):
        return {f"p{k}": round(float(x), 3) for k, x in zip(q, np.percentile(v, q))}

    return {"crops": len(dets), "found": len(side), "found_rate": round(len(side) / len(dets), 4),
            "align_params": {"side": round(float(np.median(side)), 3), "dx": round(float(np.median(dx)), 3),
                             "dy": round(float(np.median(dy)), 3)},
            "roll_degrees": pct(roll), "yaw": pct(yaw), "abs_yaw": pct(np.abs(yaw))}


def aligned_pixels(rec: FaceRecogniser, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The crops as classify_crop gives them to the model (aligned where found) and a mask."""
    out, found = pixels.copy(), np.zeros(len(pixels), bool)
    for i, c in enumerate(pixels):
        a = rec.align_crop(c)
        if a is not None:
            out[i], found[i] = a, True
    return out, found


def accuracy(rec: FaceRecogniser, pixels: np.ndarray, labels: np.ndarray, p: FaceParams) -> float:
    from training.face import probs_for

    return float((probs_for(rec.model.predict, pixels, p).argmax(axis=1) == labels).mean())


def honesty(rec: FaceRecogniser, val) -> dict:
    """PublicTest accuracy by |yaw| (the nose's offset along the eye line) and by face
    size (crops shrunk to s px and brought back to 48 px, as a far face would be)."""
    from edge.vision.faces import resize_crop

    p = rec.params
    from training.face import probs_for

    right = probs_for(rec.model.predict, val.pixels, p).argmax(axis=1) == val.label
    yaw = np.full(len(val.pixels), np.nan)
    for i, c in enumerate(val.pixels):
        found = rec.find_in_crop(c)
        if found is not None:
            yaw[i] = abs(align.geometry(*found, align.AlignParams()).yaw)
    by_yaw = {}
    for lo, hi in ((0, 0.15), (0.15, 0.25), (0.25, 0.35), (0.35, 0.5), (0.5, 9)):
        sel = (yaw >= lo) & (yaw < hi)
        by_yaw[f"{lo}-{hi}"] = {"crops": int(sel.sum()), "accuracy": round(float(right[sel].mean()), 4)}
    by_size = {}
    for side in (16, 20, 24, 32, 40, 48):
        px = np.stack([resize_crop(resize_crop(c, side), 48) for c in val.pixels])
        by_size[f"{side}px"] = round(accuracy(rec, px, val.label, p), 4)
    return {"accuracy_by_abs_yaw": by_yaw, "accuracy_by_face_px": by_size}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--views", action="store_true")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--honesty", action="store_true",
                    help="PublicTest accuracy by head-turn proxy and by face size (the no-guess limits)")
    ap.add_argument("--max-crops", type=int, default=4000, help="Training crops for --calibrate")
    args = ap.parse_args(argv)
    d = read_npz(Path(args.data) / "face" / "fer2013.npz")
    rec = recogniser(args.model)
    out: dict = {}
    if args.calibrate:
        train = d.part(TRAIN).pixels
        rng = np.random.default_rng(0)
        out["calibrate"] = calibrate(rec, train[rng.permutation(len(train))[: args.max_crops]])
    p0 = rec.params
    if args.views or args.report:
        val = d.part(VAL)
        val_al, val_found = aligned_pixels(rec, val.pixels)
        out["public_aligned_rate"] = round(float(val_found.mean()), 4)
    if args.views:
        sweep = {}
        for name, (zooms, rots) in VIEW_SETS.items():
            p = FaceParams.from_dict({**p0.to_dict(), "zooms": zooms, "rotations": rots})
            sweep[name] = {"unaligned": round(accuracy(rec, val.pixels, val.label, p), 4),
                           "aligned": round(accuracy(rec, val_al, val.label, p), 4)}
        out["public_view_sweep"] = sweep
    if args.report:
        test = d.part(TEST)
        test_al, test_found = aligned_pixels(rec, test.pixels)
        out["views"] = {"zooms": list(p0.zooms), "rotations": list(p0.rotations)}
        out["public"] = {"aligned_path": round(accuracy(rec, val_al, val.label, p0), 4),
                         "unaligned": round(accuracy(rec, val.pixels, val.label, p0), 4)}
        out["private"] = {"aligned_path": round(accuracy(rec, test_al, test.label, p0), 4),
                          "unaligned": round(accuracy(rec, test.pixels, test.label, p0), 4),
                          "aligned_rate": round(float(test_found.mean()), 4)}
    if args.honesty:
        out["honesty_public"] = honesty(rec, d.part(VAL))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
