"""Detections reused on still frames: a camera watching a still room need not look for
faces in every frame.

Looking for faces is most of the camera's cost (BlazeFace through 42 windows of a
640×480 frame).  A living-room frame mostly repeats the last one: the person sits, the
room stays.  :class:`ReusingDetector` keeps the last detections while no 8×8 block of
the frame has moved more than ``threshold`` grey levels (block means: sensor noise of
σ 4 moves them by about 0.7) since the frame they were found in, for at most
``frames`` frames in a row; any motion, a new frame size, or that many frames, and the
detector looks again.  A detector that looks through windows (BlazeFace: ``frame_windows``,
``look``, ``merge``) is reused window by window: only the windows whose blocks moved, or
that have served ``frames`` frames, are looked through again, and the faces come from
all windows' answers merged as in a full look — so a person shifting in a chair costs
the few windows around them, not the 42 of a 640×480 frame.  The expression model
still reads every frame's own pixels at the reused boxes, so a face that changes
expression is classified anew; a face that moves is searched for again.  The frame
statistics are pure NumPy (:func:`block_means`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge.vision.align import shrink


@dataclass(frozen=True)
class StillParams:
    frames: int = 4  # the last detections serve at most this many frames in a row (1: look every frame)
    threshold: float = 6.0  # grey levels an 8×8 block's mean may move and the frame still count as still
    block: int = 8

    def __post_init__(self) -> None:
        if not 1 <= int(self.frames) <= 100:
            raise ValueError(f"still_frames: expected 1..100 frames, got {self.frames}")
        if not 0.0 <= float(self.threshold) <= 255.0:
            raise ValueError(f"still_threshold: expected 0..255 grey levels, got {self.threshold}")
        if not 2 <= int(self.block) <= 64:
            raise ValueError(f"block: expected 2..64 pixels, got {self.block}")


def block_means(gray: np.ndarray, block: int) -> np.ndarray:
    """Mean grey level of each block×block tile of the frame (float32)."""
    return shrink(gray, block) if min(gray.shape[:2]) >= block else gray.astype(np.float32)


def still(a: np.ndarray | None, b: np.ndarray, threshold: float) -> bool:
    """Whether block means ``b`` are within ``threshold`` of ``a`` everywhere."""
    return a is not None and a.shape == b.shape and float(np.abs(b - a).max()) <= threshold


def block_region(win: tuple[float, float, float], block: int, grid: tuple[int, int]) -> tuple[slice, slice]:
    """The blocks a window (x0, y0, side; frame pixels) reads, with one block around it
    (its resampling reaches a pixel or two past its edge)."""
    x0, y0, side = win
    rows, cols = grid

    def span(a: float, n: int) -> slice:
        lo = min(max(0, math.floor(a / block) - 1), n - 1)
        return slice(lo, min(max(lo + 1, math.ceil((a + side) / block) + 1), n))

    return span(y0, rows), span(x0, cols)


class ReusingDetector:
    """A detector (anything with ``detect(gray)``) that reuses its last detections on
    still frames, window by window when it looks through windows; every other attribute
    is the wrapped detector's."""

    def __init__(self, detector, params: StillParams | None = None) -> None:
        self.detector = detector
        self.still = params or StillParams()
        self.scans = 0  # frames looked at by the detector (a window detector: any window)
        self.reused = 0  # frames given the last detections (a window detector: every window)
        self.windows_looked = 0  # windows looked through (window detectors only)
        self.windows_reused = 0  # windows whose last answer served again
        self._by_window = hasattr(detector, "look")
        self._ref: np.ndarray | None = None
        self._dets: list = []
        self._age = 0
        self._shape: tuple | None = None
        self._regions: list[tuple[slice, slice]] = []
        self._cache: list = []  # per window: (block means when looked, its answer, age) or None

    def __getattr__(self, name: str):
        if name == "detector":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.detector, name)

    def counts(self) -> dict[str, int]:
        """For ``…/stats``: frames looked at and reused (and windows, when by window)."""
        out = {"scans": self.scans, "reused": self.reused}
        if self._by_window:
            out |= {"windows_looked": self.windows_looked, "windows_reused": self.windows_reused}
        return out

    def detect(self, gray: np.ndarray) -> list:
        p = self.still
        means = block_means(gray, p.block)
        if self._by_window:
            return self._detect_by_window(gray, means)
        if self._age < p.frames - 1 and still(self._ref, means, p.threshold):
            self._age += 1
            self.reused += 1
        else:
            self._dets = self.detector.detect(gray)
            self._ref, self._age = means, 0
            self.scans += 1
        return list(self._dets)

    def _detect_by_window(self, gray: np.ndarray, means: np.ndarray) -> list:
        p, det = self.still, self.detector
        if gray.shape != self._shape:  # another frame size: every window anew
            self._shape = gray.shape
            self._regions = [block_region(w, p.block, means.shape) for w in det.frame_windows(gray.shape)]
            self._cache = [None] * len(self._regions)
        look = [i for i, (r, c) in enumerate(zip(self._regions, self._cache))
                if c is None or c[2] >= p.frames - 1 or not still(c[0], means[r], p.threshold)]
        fresh = det.look(gray, look) if look else {}
        for i, c in enumerate(self._cache):
            self._cache[i] = ((means[self._regions[i]].copy(), fresh[i], 0) if i in fresh
                              else (c[0], c[1], c[2] + 1))
        self.windows_looked += len(look)
        self.windows_reused += len(self._cache) - len(look)
        if look:
            self.scans += 1
        else:
            self.reused += 1
        return det.merge(c[1] for c in self._cache)
