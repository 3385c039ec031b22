"""Shared helpers for the face tests: real FER-2013 crops from ../shared/data."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from conftest import DATA

FER = DATA / "face" / "fer2013.npz"
needs_fer = pytest.mark.skipif(not FER.is_file(), reason=f"FER-2013 not found at {FER}")


@functools.lru_cache(maxsize=1)
def fer():
    from training.fer import read_npz

    return read_npz(FER)


def face_frame(crop: np.ndarray, size=(320, 240), face=160, at=(80, 40), colour=True) -> np.ndarray:
    """A camera-like frame: a real FER crop upscaled to ``face`` pixels on a plain background."""
    import cv2

    w, h = size
    big = cv2.resize(crop, (face, face), interpolation=cv2.INTER_CUBIC)
    frame = np.full((h, w), int(np.median(crop)), np.uint8)
    x, y = at
    frame[y : y + face, x : x + face] = big
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if colour else frame


def no_face_frame(size=(320, 240), seed=0) -> np.ndarray:
    """Real FER pixels with the faces destroyed: 8×8 tiles of PrivateTest crops, shuffled."""
    import cv2

    d = fer()
    rng = np.random.default_rng(seed)
    tiles = d.pixels[rng.choice(np.flatnonzero(d.split == 2), 40)].reshape(40, 6, 8, 6, 8)
    tiles = tiles.transpose(0, 1, 3, 2, 4).reshape(-1, 8, 8)
    w, h = size
    grid = tiles[rng.choice(len(tiles), (h // 8) * (w // 8))].reshape(h // 8, w // 8, 8, 8)
    gray = grid.transpose(0, 2, 1, 3).reshape(h, w)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
