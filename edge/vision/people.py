"""Several people in one frame: which faces are classified, and one answer from them.

Pure functions, no model and no camera: :func:`choose_faces` bounds the work to the N
largest faces, :func:`fuse_faces` turns the per-face class probabilities into the
frame's probabilities by a policy:

* ``largest`` (default): the largest face's probabilities, exactly the one-person answer;
* ``mean``: the mean over the faces that got a guess;
* ``nearest_to_centre``: the face whose centre is nearest the frame's centre.

Faces without a guess (too small, turned away) take no part; with none left, no guess.
"""

from __future__ import annotations

import numpy as np

POLICIES = ("largest", "mean", "nearest_to_centre")

Box = tuple[int, int, int, int]


def area_order(boxes: list[Box]) -> list[int]:
    """Indices of boxes, largest first (ties: leftmost, then topmost, as ``largest``)."""
    return sorted(range(len(boxes)), key=lambda i: (-boxes[i][2] * boxes[i][3], boxes[i][0], boxes[i][1]))


def choose_faces(boxes: list[Box], max_faces: int) -> list[int]:
    """Indices of the at most ``max_faces`` largest boxes, largest first."""
    if max_faces < 1:
        raise ValueError(f"max_faces: expected at least 1, got {max_faces}")
    return area_order(boxes)[:max_faces]


def fuse_faces(probs: list[np.ndarray | None], boxes: list[Box], frame_size: tuple[int, int],
               policy: str = "largest") -> tuple[np.ndarray | None, int | None]:
    """The frame's probabilities and the index of the face they come from (None for
    ``mean`` over several) from per-face probabilities (None: that face has no guess),
    their boxes and the frame's (width, height)."""
    if policy not in POLICIES:
        raise ValueError(f"face fusion policy {policy!r}: expected one of {POLICIES}")
    if len(probs) != len(boxes):
        raise ValueError(f"{len(probs)} probability rows for {len(boxes)} faces")
    ok = [i for i, p in enumerate(probs) if p is not None]
    if not ok:
        return None, None
    if policy == "largest":
        i = area_order([boxes[j] for j in ok])[0]
        return np.asarray(probs[ok[i]], np.float32), ok[i]
    if policy == "nearest_to_centre":
        w, h = frame_size

        def dist(j: int) -> float:
            x, y, bw, bh = boxes[j]
            return (x + bw / 2 - w / 2) ** 2 + (y + bh / 2 - h / 2) ** 2

        j = min(ok, key=lambda j: (dist(j), -boxes[j][2] * boxes[j][3]))
        return np.asarray(probs[j], np.float32), j
    if len(ok) == 1:  # one face: its own probabilities, not renormalised (exactly one person)
        return np.asarray(probs[ok[0]], np.float32), ok[0]
    mean = np.mean([np.asarray(probs[j], np.float32) for j in ok], axis=0)
    return mean / max(float(mean.sum()), 1e-12), None
