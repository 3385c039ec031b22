"""Detections reused on still frames: a camera watching a still room need not look for
faces in every frame.

Looking for faces is most of the camera's cost (BlazeFace through 36 windows of a
640×480 frame).  A living-room frame mostly repeats the last one: the person sits, the
room stays.  :class:`ReusingDetector` keeps the last detections while no 8×8 block of
the frame has moved more than ``threshold`` grey levels (block means: sensor noise of
σ 4 moves them by about 0.7) since the frame they were found in, for at most
``frames`` frames in a row; any motion, a new frame size, or that many frames, and the
detector looks again.  The expression model still reads every frame's own pixels at
the reused boxes, so a face that changes expression is classified anew; a face that
moves is searched for again.  The frame statistics are pure NumPy (:func:`block_means`).
"""

from __future__ import annotations

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


class ReusingDetector:
    """A detector (anything with ``detect(gray)``) that reuses its last detections on
    still frames; every other attribute is the wrapped detector's."""

    def __init__(self, detector, params: StillParams | None = None) -> None:
        self.detector = detector
        self.still = params or StillParams()
        self.scans = 0  # frames looked at by the detector
        self.reused = 0  # frames given the last detections
        self._ref: np.ndarray | None = None
        self._dets: list = []
        self._age = 0

    def __getattr__(self, name: str):
        if name == "detector":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.detector, name)

    def detect(self, gray: np.ndarray) -> list:
        p = self.still
        means = block_means(gray, p.block)
        if self._age < p.frames - 1 and still(self._ref, means, p.threshold):
            self._age += 1
            self.reused += 1
        else:
            self._dets = self.detector.detect(gray)
            self._ref, self._age = means, 0
            self.scans += 1
        return list(self._dets)
