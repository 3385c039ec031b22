"""MediaPipe BlazeFace (short range) on the TFLite interpreter, decoded in NumPy.

The model (``models_tflite/face_detection_short_range.tflite``, Apache-2.0, see
``face_detection_short_range.json``) takes a 128×128 RGB window in [-1, 1] and gives
896 anchored boxes with six keypoints each (two eyes, nose tip, mouth, two ear
tragions).  It is trained for faces that fill roughly 15–75 % of its window, so a frame
is looked at through square windows of ``tile`` frame pixels (chosen so that a face
of ``min_face`` pixels covers enough of a window), overlapping enough that any face up
to ``tile - stride`` pixels lies whole inside one of them; a frame not much bigger than
a window is seen whole as well.  Boxes from all windows are merged by weighted
non-maximum suppression, as MediaPipe does.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.manifest import ModelError, sha256_file
from edge.vision.align import shrink, window

# model → (file, input side, (stride, anchors per cell) per anchor grid)
MODELS = {
    "short": ("face_detection_short_range.tflite", 128, ((8, 2), (16, 6))),
}
RAW_SCORE_LIMIT = 80.0


@dataclass(frozen=True)
class Detection:
    """A face in frame pixels: box (x, y, w, h), score in 0..1 and, when the detector
    gives them, keypoints (k, 2) x/y (BlazeFace: eye, eye, nose tip, mouth, tragion, tragion)."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray | None = field(default=None, compare=False)

    @property
    def int_box(self) -> tuple[int, int, int, int]:
        return tuple(int(round(v)) for v in self.box)  # type: ignore[return-value]


def anchors(size: int = 128, grids=MODELS["short"][2]) -> np.ndarray:
    """(n, 2) anchor centres in [0, 1] (MediaPipe's SSD anchor options; short range:
    strides 8, 16, 16, 16 on a 128 input, two and six anchors per cell: 896)."""
    out = []
    for stride, per_cell in grids:
        n = size // stride
        c = (np.arange(n, dtype=np.float32) + 0.5) / n
        yy, xx = np.meshgrid(c, c, indexing="ij")
        out.append(np.repeat(np.stack([xx.ravel(), yy.ravel()], axis=1), per_cell, axis=0))
    return np.concatenate(out)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box (x0, y0, x1, y1) with boxes (n, 4)."""
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(area, 1e-9)


def weighted_nms(rows: np.ndarray, scores: np.ndarray, threshold: float) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's blending suppression: each cluster of rows (x0, y0, x1, y1, keypoints…)
    overlapping its best-scoring member by more than ``threshold`` IoU becomes their
    score-weighted mean, scored as its best member."""
    order = np.argsort(-scores)
    rows, scores = rows[order], scores[order]
    left = np.ones(len(rows), bool)
    out = []
    for i in range(len(rows)):
        if not left[i]:
            continue
        members = left & (iou(rows[i, :4], rows[:, :4]) > threshold)
        members[i] = True
        w = scores[members][:, None]
        out.append(((rows[members] * w).sum(axis=0) / w.sum(), float(scores[i])))
        left &= ~members
    return out


def stretch(w: np.ndarray) -> np.ndarray:
    """A window (float, 0..255) with its 1st-99th percentile stretched to 0..255 (a flat
    one, spread under 8 levels, is stretched at most 32×)."""
    lo, hi = np.percentile(w, (1, 99))
    return np.clip((w - lo) * (255.0 / max(float(hi - lo), 8.0)), 0.0, 255.0)


def windows_for(width: int, height: int, tile: int, overlap: float) -> list[tuple[float, float, float]]:
    """Square windows (x0, y0, side) covering a frame: tiles of ``tile`` pixels (at most the
    short side) overlapping by ``overlap`` of a tile; the whole frame, letterboxed, too
    when the tiles are much smaller than it."""
    side = float(min(tile, width, height))
    step = side * (1.0 - overlap)

    def starts(extent: int) -> list[float]:
        n = max(1, math.ceil((extent - side) / step - 1e-6) + 1)
        return [0.0] if n == 1 else list(np.linspace(0.0, extent - side, n))

    tiles = [(x, y, side) for y in starts(height) for x in starts(width)]
    long_side = max(width, height)
    if len(tiles) > 1 and long_side > 1.5 * side:
        tiles.append(((width - long_side) / 2, (height - long_side) / 2, float(long_side)))
    return tiles


@dataclass(frozen=True)
class BlazeFaceParams:
    # Only the short-range model ships: the full-range one (192 px) found half the faces
    # on the choosing scenes (docs/models/face/detection.md).
    model: str = "short"
    # Both chosen on the PublicTest scenes (docs/models/face/detection.md, session 14): the
    # most recall at 640×480 with <= 1 false face / 100 face-free frames.
    min_score: float = 0.71
    nms_iou: float = 0.3
    min_face: int = 40  # frame pixels: windows are sized so that faces this big are seen
    window_face: float = 0.25  # a min_face face covers this fraction of a window's side (chosen likewise)
    overlap: float = 0.5  # adjacent windows share this fraction of their side
    max_side: int = 640  # frames larger than this are shrunk (by whole factors) first
    # "stretch": each window's 1st-99th percentile stretched to 0..255 first.  Not the
    # default: measured on the PublicTest scenes it helped at 320×240, not at 640×480
    # (docs/models/face/detection.md, "Contrast and windows").
    contrast: str = "none"
    # Windows of this many times the tile as well (0: none): a face bigger than the tiles'
    # overlap lies whole in none of them, and the whole frame shows it small.
    second_tile: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 < self.min_score < 1.0:
            raise ValueError(f"min_score: expected 0..1, got {self.min_score}")
        if not 8 <= self.min_face <= 1024:
            raise ValueError(f"min_face: expected 8..1024 pixels, got {self.min_face}")
        if not 0.05 <= self.window_face <= 0.75:
            raise ValueError(f"window_face: expected 0.05..0.75, got {self.window_face}")
        if not 0.0 <= self.overlap < 0.9:
            raise ValueError(f"overlap: expected 0..0.9, got {self.overlap}")
        if not (self.second_tile == 0.0 or 1.2 <= self.second_tile <= 4.0):
            raise ValueError(f"second_tile: expected 0 (none) or 1.2..4 tiles, got {self.second_tile}")
        if self.contrast not in ("stretch", "none"):
            raise ValueError(f"contrast: expected 'stretch' or 'none', got {self.contrast!r}")

    @property
    def tile(self) -> int:
        return int(round(self.min_face / self.window_face))


class BlazeFaceDetector:
    """Faces with eye/nose/mouth/ear keypoints in a grayscale frame (H, W) uint8."""

    name = "blazeface"

    def __init__(self, params: BlazeFaceParams | None = None, model_path: Path | None = None,
                 interpreter: str | None = None) -> None:
        from edge.runtime import INTERPRETER_MODULES, default_models_dir, interpreter_class

        self.params = params or BlazeFaceParams()
        if self.params.model not in MODELS:
            raise ValueError(f"model: expected one of {sorted(MODELS)}, got {self.params.model!r}")
        file, self.size, grids = MODELS[self.params.model]
        path = Path(model_path) if model_path else default_models_dir() / file
        check_vendored(path)
        cls, self.interpreter_module = interpreter_class(
            (interpreter,) if interpreter else INTERPRETER_MODULES)
        try:
            self._interp = cls(model_path=str(path), num_threads=1)
            self._interp.allocate_tensors()
        except Exception as exc:  # the interpreters raise RuntimeError, ValueError
            raise ModelError(f"{path}: cannot load the face detector ({exc})") from None
        inp = self._interp.get_input_details()[0]
        self._anchors = anchors(self.size, grids)
        n, want = len(self._anchors), (1, self.size, self.size, 3)
        if tuple(inp["shape"]) != want:
            raise ModelError(f"{path}: input {tuple(inp['shape'])}, expected {want}")
        outs = {tuple(o["shape"]): o["index"] for o in self._interp.get_output_details()}
        self._in = inp["index"]
        self._plans: dict[tuple[int, int], tuple[int, list]] = {}
        try:
            self._reg, self._cls = outs[(1, n, 16)], outs[(1, n, 1)]
        except KeyError:
            raise ModelError(f"{path}: outputs {sorted(outs)}, expected (1, {n}, 16) "
                             f"and (1, {n}, 1)") from None

    def raw(self, window_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores (n,) and rows (n, 16): x0, y0, x1, y1 then six keypoints, in [0, 1] of a
        square grayscale window (float, 0..255) of the model's input size."""
        x = (np.asarray(window_u8, np.float32) / 127.5 - 1.0)[None, :, :, None]
        self._interp.set_tensor(self._in, np.repeat(x, 3, axis=3))
        self._interp.invoke()
        reg = self._interp.get_tensor(self._reg)[0] / self.size
        logit = np.clip(self._interp.get_tensor(self._cls)[0, :, 0], -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
        a = self._anchors
        cx, cy = reg[:, 0] + a[:, 0], reg[:, 1] + a[:, 1]
        rows = np.empty((len(a), 16), np.float32)
        rows[:, 0], rows[:, 1] = cx - reg[:, 2] / 2, cy - reg[:, 3] / 2
        rows[:, 2], rows[:, 3] = cx + reg[:, 2] / 2, cy + reg[:, 3] / 2
        rows[:, 4::2] = reg[:, 4::2] + a[:, :1]
        rows[:, 5::2] = reg[:, 5::2] + a[:, 1:]
        return 1.0 / (1.0 + np.exp(-logit)), rows

    def windows(self, width: int, height: int, tile: float) -> list[tuple[float, float, float]]:
        """The windows a frame of this size is looked at through (frame pixels)."""
        pr = self.params
        wins = windows_for(width, height, int(round(tile)), pr.overlap)
        if pr.second_tile:
            wins += [w for w in windows_for(width, height, int(round(tile * pr.second_tile)), pr.overlap)
                     if w not in wins]
        return wins

    def _plan(self, H: int, W: int) -> tuple[int, list[tuple[float, float, float]]]:
        """(k, windows of the frame shrunk by k): frames larger than ``max_side`` are looked
        at shrunk by a whole factor k.  Worked out once per frame size (a camera keeps its)."""
        plan = self._plans.get((H, W))
        if plan is None:
            k = max(1, math.ceil(max(H, W) / self.params.max_side - 1e-9))
            plan = self._plans[(H, W)] = (k, self.windows(W // k, H // k, self.params.tile / k))
        return plan

    def frame_windows(self, shape: tuple[int, ...]) -> list[tuple[float, float, float]]:
        """The windows (x0, y0, side) a frame of this shape is looked at through, in frame
        pixels, in the order :meth:`look` numbers them."""
        k, wins = self._plan(*shape[:2])
        return [(x0 * k, y0 * k, side * k) for x0, y0, side in wins]

    def look(self, gray: np.ndarray, which=None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """For each window ``which`` (numbers of :meth:`frame_windows`; None: all): the rows
        (frame pixels) and scores of the anchors it keeps, possibly none."""
        pr = self.params
        k, wins = self._plan(*gray.shape[:2])
        small = gray if k == 1 else shrink(gray, k)
        shrunk: dict = {}  # the frame's block means, once per size for all its windows
        out = {}
        for i in range(len(wins)) if which is None else which:
            x0, y0, side = wins[i]
            w = window(small, x0, y0, side, self.size, shrunk)
            scores, rows = self.raw(stretch(w) if pr.contrast == "stretch" else w)
            keep = (scores > pr.min_score) & (rows[:, 2] > rows[:, 0]) & (rows[:, 3] > rows[:, 1])
            r = rows[keep] * side * k
            r[:, 0::2] += x0 * k
            r[:, 1::2] += y0 * k
            out[i] = (r, scores[keep])
        return out

    def merge(self, parts) -> list[Detection]:
        """The faces of a frame from its windows' (rows, scores), by weighted NMS."""
        parts = [(r, s) for r, s in parts if len(s)]
        if not parts:
            return []
        rows = np.concatenate([r for r, _ in parts])
        merged = weighted_nms(rows, np.concatenate([s for _, s in parts]), self.params.nms_iou)
        return [Detection((float(r[0]), float(r[1]), float(r[2] - r[0]), float(r[3] - r[1])),
                          s, r[4:].reshape(6, 2).copy()) for r, s in merged]

    def detect(self, gray: np.ndarray) -> list[Detection]:
        return self.merge(self.look(gray).values())


def check_vendored(path: Path) -> dict:
    """The vendored model's manifest (``<stem>.json``), refusing a missing file or a sha256
    that does not match it."""
    path = Path(path)
    mpath = path.with_suffix(".json")
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{mpath}: detector manifest missing or unreadable ({exc})") from None
    if not path.is_file():
        raise ModelError(f"{path}: face detector model not found")
    actual = sha256_file(path)
    if actual != manifest.get("sha256"):
        raise ModelError(f"{path}: sha256 {actual[:16]}… does not match {mpath.name} "
                         f"({str(manifest.get('sha256'))[:16]}…)")
    return manifest
