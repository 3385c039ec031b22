"""A face-detection test set composed from real FER-2013 pixels, and its scoring.

FER-2013 faces are tight 48×48 crops, which is not what a room camera sees.  So scenes
are composed (seeded, nothing written to disk):

* **backgrounds** are real image content with the faces destroyed: FER-2013 *Training*
  crops' 16×16 corners (no face parts) cut into tiles and shuffled (mosaics, at several
  tile scales) and those corner
  patches (hair, walls, clothes, background) zoomed up into large smooth regions, laid
  out as 2–5 rectangles per frame;
* **faces** are FER-2013 crops from one split (PublicTest for choosing detector
  settings, PrivateTest for the reported figures) scaled to 30–120 px and blended in with
  a feathered edge, 1–3 per frame, not overlapping;
* the whole frame then gets a **lighting** change (gain, gamma, a side-light gradient),
  sometimes **blur**, sensor noise and **JPEG** artefacts (quality 30–90).

Face-free frames are the same backgrounds with the same degradations and no face.

    python -m training.face_scenes --split public --detector blazeface [--size 320x240]

prints recall (all faces, faces ≥ 40 px, by size), false faces per 100 face-free frames
and the detector's time per frame as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = {"public": 1, "private": 2}
SEEDS = {"public": 2101, "private": 2102}  # a split's scenes are always the same
MIN_REPORTED = 40  # the target is on faces of at least this many pixels


@dataclass(frozen=True)
class Scene:
    gray: np.ndarray  # (H, W) uint8
    faces: list[tuple[int, int, int, int]]  # (x, y, side, side) of each pasted crop


def _background(rng: np.random.Generator, train: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    out = np.empty((h, w), np.float32)
    # 2–5 rectangles: split the frame recursively
    rects = [(0, 0, w, h)]
    for _ in range(int(rng.integers(1, 5))):
        i = int(np.argmax([rw * rh for _, _, rw, rh in rects]))
        x, y, rw, rh = rects.pop(i)
        if rw >= rh:
            c = int(rw * rng.uniform(0.3, 0.7))
            rects += [(x, y, c, rh), (x + c, y, rw - c, rh)]
        else:
            c = int(rh * rng.uniform(0.3, 0.7))
            rects += [(x, y, rw, c), (x, y + c, rw, rh - c)]
    for x, y, rw, rh in rects:
        if rw < 2 or rh < 2:
            out[y : y + rh, x : x + rw] = 128
            continue
        if rng.random() < 0.5:  # a zoomed corner patch of a real photo: smooth, large
            crop = train[rng.integers(len(train))]
            cy, cx = rng.choice([0, 32]), rng.choice([0, 32])
            patch = crop[cy : cy + 16, cx : cx + 16]
            out[y : y + rh, x : x + rw] = cv2.resize(patch, (rw, rh), interpolation=cv2.INTER_CUBIC)
        else:  # a mosaic of shuffled 8/12/16-px tiles of real photos, zoomed
            t = int(rng.choice([8, 12, 16]))
            zoom = float(rng.choice([1.0, 1.5, 2.0, 3.0]))
            nx, ny = max(1, int(np.ceil(rw / zoom / t))), max(1, int(np.ceil(rh / zoom / t)))
            src = train[rng.integers(len(train), size=nx * ny)]
            # only from the crops' 16-px corners (background, hair, clothes): no face parts
            oy, ox = (rng.integers(0, 2, size=(2, nx * ny)) * 32
                      + rng.integers(0, 16 - t + 1, size=(2, nx * ny)))
            tiles = np.stack([s[a : a + t, b : b + t] for s, a, b in zip(src, oy, ox)])
            mosaic = tiles.reshape(ny, nx, t, t).transpose(0, 2, 1, 3).reshape(ny * t, nx * t)
            big = cv2.resize(mosaic, (int(nx * t * zoom), int(ny * t * zoom)), interpolation=cv2.INTER_LINEAR)
            out[y : y + rh, x : x + rw] = big[:rh, :rw]
    return out


def _degrade(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    import cv2

    h, w = img.shape
    x = img / 255.0
    x = np.clip(x * rng.uniform(0.5, 1.4), 0, 1) ** rng.uniform(0.7, 1.5)
    if rng.random() < 0.7:  # light from a window: a linear gradient across the frame
        a = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w]
        ramp = ((xx - w / 2) * np.cos(a) + (yy - h / 2) * np.sin(a)) / max(w, h)
        x = x * (1 + rng.uniform(0.2, 0.8) * ramp)
    x = np.clip(x * 255.0, 0, 255).astype(np.float32)
    if rng.random() < 0.5:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.5))
    x = x + rng.normal(0, rng.uniform(0, 4), x.shape)
    u8 = np.clip(x + 0.5, 0, 255).astype(np.uint8)
    ok, enc = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 91))])
    return cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)


def _paste(rng: np.random.Generator, img: np.ndarray, crop: np.ndarray, x: int, y: int, s: int) -> None:
    import cv2

    face = cv2.resize(crop, (s, s), interpolation=cv2.INTER_AREA if s < 48 else cv2.INTER_CUBIC)
    ramp = np.clip(np.minimum(np.arange(s), np.arange(s)[::-1]) / max(1.0, 0.08 * s), 0, 1)
    alpha = np.minimum.outer(ramp, ramp)
    region = img[y : y + s, x : x + s]
    region[:] = alpha * face + (1 - alpha) * region


def compose(split: str, n_faces: int, n_empty: int, size: tuple[int, int], data: Path,
            sizes: tuple[int, int] = (30, 120)) -> tuple[list[Scene], list[Scene]]:
    """``n_faces`` scenes with 1–3 faces and ``n_empty`` face-free ones, w×h ``size``."""
    from training.fer import read_npz

    d = read_npz(Path(data) / "face" / "fer2013.npz")
    train = d.pixels[d.split == 0]
    faces = d.pixels[d.split == SPLITS[split]]
    w, h = size
    rng = np.random.default_rng([SEEDS[split], w, h])
    order = rng.permutation(len(faces))
    used = 0
    with_faces, empty = [], []
    for _ in range(n_faces):
        img = _background(rng, train, w, h)
        boxes: list[tuple[int, int, int, int]] = []
        for _try in range(20):
            if len(boxes) == int(rng.choice([1, 1, 1, 2, 3])) or len(boxes) == 3:
                break
            s = int(rng.integers(sizes[0], min(sizes[1], h) + 1))
            x, y = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
            if any(x < bx + bs and bx < x + s and y < by + bs and by < y + s for bx, by, bs, _ in boxes):
                continue
            _paste(rng, img, faces[order[used % len(order)]], x, y, s)
            used += 1
            boxes.append((x, y, s, s))
        with_faces.append(Scene(_degrade(rng, img), boxes))
    for _ in range(n_empty):
        empty.append(Scene(_degrade(rng, _background(rng, train, w, h)), []))
    return with_faces, empty


def matches(det: tuple[float, float, float, float], face: tuple[int, int, int, int]) -> bool:
    """A detection is this face when its centre is inside the pasted crop and its size is
    within 0.3–1.5 of the crop's (the face fills most of a FER crop)."""
    x, y, w, h = det
    fx, fy, fs, _ = face
    cx, cy = x + w / 2, y + h / 2
    return fx <= cx <= fx + fs and fy <= cy <= fy + fs and 0.3 * fs <= max(w, h) <= 1.5 * fs


def score(detect, with_faces: list[Scene], empty: list[Scene]) -> dict:
    """Recall by face size, false faces (on face frames and per 100 face-free frames) and
    the median time per frame of ``detect(gray) -> [(x, y, w, h), …]``."""
    found, sides, false_on_faces, times, times_empty = [], [], 0, [], []
    for sc in with_faces:
        t = time.perf_counter()
        dets = detect(sc.gray)
        times.append(time.perf_counter() - t)
        taken = [False] * len(dets)
        for f in sc.faces:
            hit = False
            for j, dbox in enumerate(dets):
                if not taken[j] and matches(dbox, f):
                    taken[j] = hit = True
                    break
            found.append(hit)
            sides.append(f[2])
        false_on_faces += taken.count(False)
    false_empty = 0
    for sc in empty:
        t = time.perf_counter()
        false_empty += len(detect(sc.gray))
        times_empty.append(time.perf_counter() - t)
    found_a, sides_a = np.array(found), np.array(sides)
    big = sides_a >= MIN_REPORTED
    bins = {}
    for lo, hi in ((30, 40), (40, 60), (60, 90), (90, 121)):
        sel = (sides_a >= lo) & (sides_a < hi)
        bins[f"{lo}-{hi - 1}px"] = {"faces": int(sel.sum()),
                                    "recall": round(float(found_a[sel].mean()), 4) if sel.any() else None}
    return {
        "face_frames": len(with_faces),
        "faces": len(found),
        f"faces_ge_{MIN_REPORTED}px": int(big.sum()),
        f"recall_ge_{MIN_REPORTED}px": round(float(found_a[big].mean()), 4),
        "recall_all": round(float(found_a.mean()), 4),
        "recall_by_size": bins,
        "false_faces_on_face_frames": false_on_faces,
        "face_free_frames": len(empty),
        "false_faces_per_100_face_free_frames": round(100.0 * false_empty / max(1, len(empty)), 2),
        "ms_per_face_frame_median": round(statistics.median(times) * 1000, 3),
        "ms_per_face_free_frame_median": round(statistics.median(times_empty) * 1000, 3),
    }


def detector_boxes(name: str, **params):
    """``gray -> [(x, y, w, h), …]`` for a registered detector."""
    from edge.vision.detectors import make_detector

    det = make_detector(name, **params)
    return lambda gray: [d.box for d in det.detect(gray)]


def _number(v: str):
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--split", choices=sorted(SPLITS), default="public",
                    help="public: for choosing settings; private: the reported figure")
    ap.add_argument("--detector", default="blazeface")
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--face-frames", type=int, default=300)
    ap.add_argument("--empty-frames", type=int, default=300)
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="a detector parameter, e.g. min_score=0.6 or model=full")
    args = ap.parse_args(argv)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
        params = {k: _number(v) for k, v in (p.split("=", 1) for p in args.param)}
    except ValueError:
        print(f"--size/--param: expected WxH and KEY=VALUE, got {args.size!r} {args.param}", file=sys.stderr)
        return 2
    with_faces, empty = compose(args.split, args.face_frames, args.empty_frames, (w, h), Path(args.data))
    result = {"split": args.split, "size": f"{w}x{h}", "detector": args.detector, "params": params,
              **score(detector_boxes(args.detector, **params), with_faces, empty)}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
