"""Pixel maths for the face path in NumPy alone: grayscale, square windows, and the
eyes-level crop (a similarity warp) the expression model sees.

Nothing here imports OpenCV: the detector's input and the aligned crop are sampled
bilinearly from the grayscale frame, with the frame's edge pixels repeated where a
window or a crop leaves it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def bgr_to_gray(img: np.ndarray) -> np.ndarray:
    """(H, W, 3|4) uint8 BGR(A) → (H, W) uint8, with OpenCV's fixed-point BT.601 weights
    (``cv2.cvtColor(..., COLOR_BGR2GRAY)`` gives the same numbers)."""
    b = img[:, :, 0].astype(np.uint32)
    g = img[:, :, 1].astype(np.uint32)
    r = img[:, :, 2].astype(np.uint32)
    return ((b * 1868 + g * 9617 + r * 4899 + 8192) >> 14).astype(np.uint8)


def shrink(gray: np.ndarray, k: int) -> np.ndarray:
    """Block mean over k×k pixels (the frame cut to a multiple of k), float32."""
    if k <= 1:
        return gray.astype(np.float32, copy=False)
    H, W = (gray.shape[0] // k) * k, (gray.shape[1] // k) * k
    g = gray[:H, :W].astype(np.float32).reshape(H // k, k, W // k, k)
    return g.mean(axis=(1, 3))


def sample_affine(gray: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The size×size image whose pixel (u, v) is ``gray`` at ``m @ (u, v, 1)`` (a 2×3
    matrix from output to source pixel centres), bilinear, edges repeated; float32."""
    H, W = gray.shape
    u = np.arange(size, dtype=np.float32)
    uu, vv = np.meshgrid(u, u)
    x = m[0, 0] * uu + m[0, 1] * vv + m[0, 2]
    y = m[1, 0] * uu + m[1, 1] * vv + m[1, 2]
    np.clip(x, 0, W - 1, out=x)
    np.clip(y, 0, H - 1, out=y)
    x0 = np.minimum(x.astype(np.int32), W - 2) if W > 1 else np.zeros_like(x, np.int32)
    y0 = np.minimum(y.astype(np.int32), H - 2) if H > 1 else np.zeros_like(y, np.int32)
    fx = x - x0
    fy = y - y0
    g = gray.astype(np.float32, copy=False)
    x1 = np.minimum(x0 + 1, W - 1)
    y1 = np.minimum(y0 + 1, H - 1)
    top = g[y0, x0] * (1 - fx) + g[y0, x1] * fx
    bot = g[y1, x0] * (1 - fx) + g[y1, x1] * fx
    return top * (1 - fy) + bot * fy


def zoom_turn(x: np.ndarray, factor: float, angle: float) -> np.ndarray:
    """A batch of square images (n, S, S) float32 magnified by ``factor`` and turned by
    ``angle`` degrees (counter-clockwise) about the centre, edges repeated: the numbers of
    ``cv2.warpAffine(img, cv2.getRotationMatrix2D(c, angle, factor), ...,
    INTER_LINEAR, BORDER_REPLICATE)``, whose source coordinates step in 1/32 pixel
    (fixed point, 10 fractional bits rounded to 5), so models whose test-time views were
    chosen with OpenCV see the same views without it."""
    n, s = x.shape[0], x.shape[1]
    c = (s - 1) / 2.0
    a = math.radians(angle)
    al, be = factor * math.cos(a), factor * math.sin(a)
    fwd = np.array([[al, be, (1 - al) * c - be * c], [-be, al, be * c + (1 - al) * c]])
    inv = np.linalg.inv(np.vstack([fwd, [0.0, 0.0, 1.0]]))[:2]  # output pixel → source
    u = np.arange(s, dtype=np.float64)

    def steps(row: np.ndarray) -> np.ndarray:  # source coordinate in 1/32 px, (S, S)
        across = np.rint(row[0] * u * 1024).astype(np.int64)
        down = np.rint((row[1] * u + row[2]) * 1024).astype(np.int64) + 16
        return (down[:, None] + across[None, :]) >> 5

    sx, sy = steps(inv[0]), steps(inv[1])
    ix, iy = sx >> 5, sy >> 5
    fx = ((sx & 31) / 32.0).astype(np.float32)
    fy = ((sy & 31) / 32.0).astype(np.float32)
    x0, x1 = np.clip(ix, 0, s - 1), np.clip(ix + 1, 0, s - 1)
    y0, y1 = np.clip(iy, 0, s - 1), np.clip(iy + 1, 0, s - 1)
    g = np.asarray(x, np.float32).reshape(n, s, s)
    return (g[:, y0, x0] * ((1 - fx) * (1 - fy)) + g[:, y0, x1] * (fx * (1 - fy))
            + g[:, y1, x0] * ((1 - fx) * fy) + g[:, y1, x1] * (fx * fy))


def _axis(start: np.float32, step: np.float32, size: int, extent: int):
    """Source pixels and weights along one axis for :func:`window` (as sample_affine
    computes them for an unturned square)."""
    c = np.clip(step * np.arange(size, dtype=np.float32) + start, 0, extent - 1)
    i0 = np.minimum(c.astype(np.int32), extent - 2) if extent > 1 else np.zeros(size, np.int32)
    return i0, np.minimum(i0 + 1, extent - 1), c - i0


def window(gray: np.ndarray, x0: float, y0: float, side: float, size: int,
           shrunk: dict | None = None) -> np.ndarray:
    """The square (x0, y0, side) of the frame resampled to size×size (float32): block
    means first when it shrinks by 2× or more (no aliasing), then bilinear — the numbers
    of ``sample_affine`` with an unturned matrix, by rows and then columns."""
    k = max(1, int(side / size))
    if k == 1:
        g = gray
    elif shrunk is None:
        g = shrink(gray, k)
    else:  # one frame's windows share its block means (``shrunk``: k → shrink(gray, k))
        g = shrunk.get(k)
        if g is None:
            g = shrunk[k] = shrink(gray, k)
    s = side / k / size  # source pixels per output pixel
    step = np.float32(s)
    H, W = g.shape
    xa, xb, fx = _axis(np.float32(x0 / k + (s - 1) / 2), step, size, W)
    ya, yb, fy = _axis(np.float32(y0 / k + (s - 1) / 2), step, size, H)
    g = g.astype(np.float32, copy=False)
    r0, r1 = g[ya], g[yb]
    top = r0[:, xa] * (1 - fx) + r0[:, xb] * fx
    bot = r1[:, xa] * (1 - fx) + r1[:, xb] * fx
    return top * (1 - fy)[:, None] + bot * fy[:, None]


def similarity(centre: tuple[float, float], side: float, angle_deg: float, size: int) -> np.ndarray:
    """2×3 matrix from a size×size crop's pixels to the frame: a square of ``side`` frame
    pixels about ``centre``, turned by ``angle_deg`` (the face's roll, clockwise in the
    image) so that the crop comes out upright."""
    s = side / size
    a = math.radians(angle_deg)
    c, n = math.cos(a) * s, math.sin(a) * s
    cx, cy = centre
    h = (size - 1) / 2
    return np.array([[c, -n, cx - c * h + n * h], [n, c, cy - n * h - c * h]], np.float32)


def aligned_crop(gray: np.ndarray, centre: tuple[float, float], side: float, angle_deg: float,
                 size: int) -> np.ndarray:
    """The face cut out square and turned upright, size×size uint8."""
    out = sample_affine(gray, similarity(centre, side, angle_deg, size), size)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- the face's geometry
@dataclass(frozen=True)
class AlignParams:
    """Where the expression model's crop lies relative to the detector's box and eyes.

    The crop is a square of ``side × box width`` about the box centre moved by
    (``dx``, ``dy``) box widths (in the face's own, roll-free frame), turned so that the
    eyes are level.  The numbers are medians over FER-2013 *Training* crops seen by the
    detector (``python -m training.face_align --calibrate``), so an aligned crop of a
    camera face is framed as the model's training crops were.
    """

    side: float = 1.0
    dx: float = 0.0
    dy: float = 0.0
    # The crop is turned upright only when the eyes tilt more than this (degrees). Chosen
    # on FER-2013 PublicTest: levelling every crop cost accuracy (0.6955 → 0.6835; the
    # model learnt on FER's unlevelled crops with rotation augmentation), levelling only
    # tilts beyond 20° kept it (0.6957).
    level_above: float = 20.0

    def __post_init__(self) -> None:
        if not 0.5 <= self.side <= 3.0:
            raise ValueError(f"side: expected 0.5..3 box widths, got {self.side}")
        if not (abs(self.dx) <= 0.5 and abs(self.dy) <= 0.5):
            raise ValueError(f"dx, dy: expected within ±0.5 box widths, got {self.dx}, {self.dy}")


@dataclass(frozen=True)
class Geometry:
    centre: tuple[float, float]  # of the crop, frame pixels (continuous: pixel i spans i..i+1)
    side: float  # of the crop, frame pixels
    roll: float  # degrees, positive when the face's right-hand eye (image right) is lower
    turn: float  # degrees the crop is turned by (0 below AlignParams.level_above)
    yaw: float  # nose offset from the eyes' midpoint along the eye line, in eye distances
    eye_distance: float  # frame pixels


def geometry(box: tuple[float, float, float, float], keypoints: np.ndarray, p: AlignParams) -> Geometry:
    """The crop's square and the head's roll and (proxy) yaw from a box and BlazeFace
    keypoints (two eyes first, nose tip third)."""
    eyes = keypoints[:2]
    left, right = (eyes[0], eyes[1]) if eyes[0, 0] <= eyes[1, 0] else (eyes[1], eyes[0])
    d = right - left
    dist = float(math.hypot(d[0], d[1]))
    roll = math.degrees(math.atan2(d[1], d[0]))
    ux, uy = (d / dist) if dist > 0 else (1.0, 0.0)
    mid = (left + right) / 2
    nose = keypoints[2] - mid
    yaw = float((nose[0] * ux + nose[1] * uy) / dist) if dist > 0 else 0.0
    x, y, w, h = box
    bw = max(w, h)
    cx, cy = x + w / 2, y + h / 2
    ox, oy = p.dx * bw, p.dy * bw  # offset in the face's frame, turned into the image's
    turn = roll if abs(roll) > p.level_above else 0.0
    return Geometry((cx + ux * ox - uy * oy, cy + uy * ox + ux * oy), p.side * bw, roll, turn, yaw, dist)


def crop_geometry(gray: np.ndarray, g: Geometry, size: int) -> np.ndarray:
    """The aligned size×size crop of a face at ``g``."""
    return aligned_crop(gray, (g.centre[0] - 0.5, g.centre[1] - 0.5), g.side, g.turn, size)
