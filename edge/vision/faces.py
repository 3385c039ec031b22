"""Face detection and the ONE face preprocessing path shared by training and the device.

Training (``training.face``), conversion (``convert.face``) and the device
(``edge.vision.expression``) all turn a face into model input with
:func:`preprocess_crops` and the :class:`FaceParams` stored in the model's manifest:
grayscale → resize to ``crop_size`` → normalise.  On a camera frame, :func:`crop_face`
first cuts the detector's box out with ``margin`` (FER-2013 crops are ~2.5 % wider
than an OpenCV Haar box on each side, measured on upscaled FER crops).

:class:`FaceDetector` is OpenCV's frontal-face Haar cascade, shipped inside
``opencv-python-headless<5`` (``cv2.data.haarcascades``); the device's default detector
is BlazeFace (:mod:`edge.vision.detectors`), with Haar kept behind the registry for
comparison.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge.params import strict_from_dict

log = logging.getLogger(__name__)

NORMALISATIONS = ("standardise", "scale")
MAX_VIEWS = 32  # model calls per face (zooms × rotations × mirror): bounds the device's work
# FaceParams keys added after models had shipped: manifests and training runs written
# before read with the value that reproduces what those models did.
ADDED_LATER = {"zooms": [1.0], "rotations": [0.0]}
CASCADE = "haarcascade_frontalface_default.xml"


def import_cv2():
    """OpenCV, or an ImportError that says what to install."""
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "the face path needs OpenCV: pip install 'opencv-python-headless<5' "
            f"(5.x dropped CascadeClassifier) ({exc})"
        ) from exc
    return cv2


@dataclass(frozen=True)
class FaceParams:
    """Everything that decides the numbers a face model sees."""

    crop_size: int = 48  # model input is (crop_size, crop_size, 1)
    margin: float = 0.025  # box grown by this fraction of its size on each side
    grayscale: bool = True
    normalisation: str = "standardise"  # per-crop mean/std, clipped; or "scale": x/127.5 - 1
    clip_sigma: float = 3.0  # "standardise": values clipped to ±clip_sigma then / clip_sigma
    flip_average: bool = True  # average the model's output on the crop and its mirror image
    # Test-time zooms about the crop centre (1.0 = the crop as is, 1.1 = 10 % closer);
    # the model's outputs over every zoom (× mirror) are averaged. Chosen on PublicTest.
    zooms: tuple[float, ...] = (1.0,)
    # Test-time in-plane rotations in degrees (0 = upright), applied at every zoom and
    # averaged the same way. Chosen on PublicTest.
    rotations: tuple[float, ...] = (0.0,)

    def __post_init__(self) -> None:
        if not 8 <= int(self.crop_size) <= 512:
            raise ValueError(f"crop_size: expected 8..512 pixels, got {self.crop_size}")
        if not 0.0 <= self.margin <= 1.0:
            raise ValueError(f"margin: expected 0..1 (fraction of the face box), got {self.margin}")
        if self.grayscale is not True:
            raise ValueError("grayscale: only grayscale models are supported (expected true)")
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(
                f"normalisation: expected one of {NORMALISATIONS}, got {self.normalisation!r}"
            )
        if not self.clip_sigma > 0:
            raise ValueError(f"clip_sigma: expected > 0, got {self.clip_sigma}")
        try:
            zooms = tuple(float(z) for z in self.zooms)
        except (TypeError, ValueError):
            raise ValueError(f"zooms: expected a list of numbers, got {self.zooms!r}") from None
        if not 1 <= len(zooms) <= 8 or not all(0.5 <= z <= 2.0 for z in zooms):
            raise ValueError(f"zooms: expected 1 to 8 factors in 0.5..2.0, got {list(zooms)}")
        object.__setattr__(self, "zooms", zooms)
        try:
            rotations = tuple(float(r) for r in self.rotations)
        except (TypeError, ValueError):
            raise ValueError(f"rotations: expected a list of numbers, got {self.rotations!r}") from None
        if not 1 <= len(rotations) <= 8 or not all(-30.0 <= r <= 30.0 for r in rotations):
            raise ValueError(
                f"rotations: expected 1 to 8 angles in -30..30 degrees, got {list(rotations)}"
            )
        object.__setattr__(self, "rotations", rotations)
        if self.views > MAX_VIEWS:
            raise ValueError(f"zooms × rotations × mirror: at most {MAX_VIEWS} model calls per "
                             f"face, got {self.views}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.crop_size, self.crop_size, 1)

    @property
    def views(self) -> int:
        """Model calls per face: zooms × rotations × (2 with flip averaging, else 1)."""
        return len(self.zooms) * len(self.rotations) * (2 if self.flip_average else 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["zooms"] = list(self.zooms)
        d["rotations"] = list(self.rotations)
        return d

    @classmethod
    def from_dict(cls, data: dict, where: str = "face parameters") -> FaceParams:
        return strict_from_dict(cls, {**ADDED_LATER, **data}, where)


# ---------------------------------------------------------------- pixels
def to_gray_u8(image: np.ndarray) -> np.ndarray:
    """Any decoded image (H,W) / (H,W,1|3|4), uint8/uint16/float → grayscale uint8 (H,W).

    Colour order is OpenCV's BGR(A); 16-bit is scaled down; float is taken as 0..1.
    """
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (3, 4)):
        raise ValueError(f"image: expected (H, W) or (H, W, 1|3|4), got shape {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"image: empty, shape {img.shape}")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype.kind == "f":
        img = np.clip(np.nan_to_num(img) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f"image: unsupported pixel type {img.dtype}")
    if img.ndim == 3:
        from edge.vision.align import bgr_to_gray

        img = bgr_to_gray(img)  # OpenCV's numbers, without OpenCV
    return np.ascontiguousarray(img)


def resize_crop(gray: np.ndarray, size: int) -> np.ndarray:
    """Resize a grayscale crop to size×size (area filter down, linear up)."""
    if gray.shape == (size, size):
        return gray
    cv2 = import_cv2()
    shrink = gray.shape[0] > size or gray.shape[1] > size
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(gray, (size, size), interpolation=interp)


def normalise(crops: np.ndarray, p: FaceParams) -> np.ndarray:
    """uint8 (or float 0..255) crops (n, S, S) → float32 model input (n, S, S, 1)."""
    x = np.asarray(crops, np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.shape[1:] != (p.crop_size, p.crop_size):
        raise ValueError(f"crops: expected (n, {p.crop_size}, {p.crop_size}), got {x.shape}")
    if p.normalisation == "scale":
        y = x / 127.5 - 1.0
    else:
        mean = x.mean(axis=(1, 2), keepdims=True)
        std = x.std(axis=(1, 2), keepdims=True)
        y = (x - mean) / np.maximum(std, 1.0)
        y = np.clip(y, -p.clip_sigma, p.clip_sigma) / p.clip_sigma
    return y[..., None].astype(np.float32)


def preprocess_crops(crops, p: FaceParams) -> np.ndarray:
    """Face crops (any size/mode, one array or a list) → model input (n, S, S, 1).

    The one function training, conversion and the device use.
    """
    if isinstance(crops, np.ndarray) and crops.ndim == 3 and crops.dtype == np.uint8 \
            and crops.shape[1:] == (p.crop_size, p.crop_size):
        return normalise(crops, p)  # a batch of ready grayscale crops (FER-2013)
    if isinstance(crops, np.ndarray) and (crops.ndim == 2 or crops.ndim == 3 and crops.shape[2] in (1, 3, 4)):
        crops = [crops]
    return normalise(np.stack([resize_crop(to_gray_u8(c), p.crop_size) for c in crops]), p)


def transform(x: np.ndarray, factor: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """(n, S, S, 1) model inputs magnified by ``factor`` and turned by ``angle`` degrees
    (counter-clockwise) about the centre (edges replicated), as OpenCV's warp gave them
    when the views were chosen (:func:`edge.vision.align.zoom_turn`, in NumPy)."""
    if factor == 1.0 and angle == 0.0:
        return x
    from edge.vision.align import zoom_turn

    return zoom_turn(x[..., 0], factor, angle)[..., None].astype(x.dtype, copy=False)


def expand_views(x: np.ndarray, p: FaceParams) -> np.ndarray:
    """(n, S, S, 1) → (views·n, S, S, 1): each zoom in p.zooms at each angle in
    p.rotations, each with its mirror image when p.flip_average, stacked view by view."""
    views = [transform(x, z, r) for z in p.zooms for r in p.rotations]
    if p.flip_average:
        views = [v for z in views for v in (z, z[:, :, ::-1])]
    return np.concatenate(views, axis=0) if len(views) > 1 else views[0]


def face_probs(predict, x: np.ndarray, p: FaceParams) -> np.ndarray:
    """Class probabilities (n, K) for model inputs x: the mean over p's test views
    (zooms × rotations × mirror), in one model call."""
    if x.shape[0] == 0:
        return predict(x)
    n = x.shape[0]
    probs = np.asarray(predict(expand_views(x, p)), np.float32)
    if probs.shape[0] == n:
        return probs
    mean = probs.reshape(-1, n, probs.shape[1]).mean(axis=0)
    return mean / np.maximum(mean.sum(axis=1, keepdims=True), 1e-12)


# ---------------------------------------------------------------- boxes
Box = tuple[int, int, int, int]  # x, y, w, h in frame pixels


def expand_box(box: Box, margin: float) -> Box:
    """A square box around ``box``'s centre, grown by ``margin`` of its size on each side."""
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2, y + h / 2
    return (int(round(cx - side / 2)), int(round(cy - side / 2)), int(round(side)), int(round(side)))


def crop_face(gray: np.ndarray, box: Box, p: FaceParams) -> np.ndarray:
    """The face cut out with margin (edges replicated where the box leaves the frame)."""
    x, y, w, h = expand_box(box, p.margin)
    H, W = gray.shape[:2]
    pad = max(0, -x, -y, x + w - W, y + h - H)
    if pad:
        cv2 = import_cv2()
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x, y = x + pad, y + pad
    return gray[y : y + h, x : x + w]


def largest(boxes) -> Box | None:
    boxes = [tuple(int(v) for v in b) for b in boxes]
    return max(boxes, key=lambda b: (b[2] * b[3], -b[0], -b[1])) if boxes else None


@dataclass(frozen=True)
class DetectorParams:
    cascade: str = CASCADE
    scale_factor: float = 1.1
    min_neighbors: int = 5
    # Detection runs on the frame downscaled to max_side (the crop comes from the full
    # frame): on 640×480 camera frames 320 px takes a third of the time at the same hit
    # rate (bench_daemon's frames: 8.4 vs 26.5 ms); faces from 2 × min_face px on such
    # a frame are found.
    min_face: int = 24  # pixels, in the (possibly downscaled) detection image
    max_side: int = 320  # frames larger than this are downscaled for detection only
    # Nothing found: look again with a black border of this fraction of the short side
    # (0 = don't), upscaled to at least retry_min_side pixels, for faces that fill the
    # image or touch its edges (tight crops such as FER-2013's, which the cascade misses).
    # Only a face that fills the image counts on the second look (a box at least
    # retry_min_fill of the short side): smaller ones were seen, and rejected, on the
    # first look (accepting edge-crossing boxes too tripled false faces on faceless frames).
    retry_pad: float = 0.25
    retry_min_side: int = 144
    retry_min_fill: float = 0.5


class FaceDetector:
    """OpenCV Haar cascade; boxes are returned in the input frame's pixels."""

    def __init__(self, params: DetectorParams | None = None, cascade_path: Path | None = None):
        cv2 = import_cv2()
        self.params = params or DetectorParams()
        if cascade_path is None:
            data = getattr(cv2, "data", None)
            if data is None or not hasattr(cv2, "CascadeClassifier"):
                raise ImportError(
                    "this OpenCV has no Haar cascades (OpenCV 5 dropped them): "
                    "pip install 'opencv-python-headless<5'"
                )
            cascade_path = Path(data.haarcascades) / self.params.cascade
        self._cascade = cv2.CascadeClassifier(str(cascade_path))
        if self._cascade.empty():
            raise FileNotFoundError(f"{cascade_path}: face cascade missing or unreadable")

    def detect(self, gray: np.ndarray) -> list[Box]:
        cv2 = import_cv2()
        pr = self.params
        H, W = gray.shape[:2]
        scale = min(1.0, pr.max_side / max(H, W))
        small = gray if scale == 1.0 else cv2.resize(
            gray, (max(1, int(W * scale)), max(1, int(H * scale))), interpolation=cv2.INTER_AREA)
        boxes = self._find(small)
        if not len(boxes) and pr.retry_pad > 0:
            k = max(1, -(-pr.retry_min_side // max(1, min(small.shape[:2]))))
            big = small if k == 1 else cv2.resize(
                small, (small.shape[1] * k, small.shape[0] * k), interpolation=cv2.INTER_CUBIC)
            pad = int(round(pr.retry_pad * min(big.shape[:2])))
            big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
            fill = pr.retry_min_fill * min(small.shape[:2])  # only big faces: few scales
            boxes = (self._find(big, max(pr.min_face, int(fill * k))) - [pad, pad, 0, 0]) / k
            boxes = boxes[boxes[:, 2] >= fill]
        return [tuple(int(round(v / scale)) for v in b) for b in boxes]

    def _find(self, gray: np.ndarray, min_face: int | None = None) -> np.ndarray:
        """(n, 4) boxes (x, y, w, h) found by the cascade in ``gray`` (histogram-equalised)."""
        cv2 = import_cv2()
        pr = self.params
        side = min_face or pr.min_face
        found = self._cascade.detectMultiScale(
            cv2.equalizeHist(gray), scaleFactor=pr.scale_factor, minNeighbors=pr.min_neighbors,
            minSize=(side, side))
        return np.asarray(found, dtype=np.float64).reshape(-1, 4)
