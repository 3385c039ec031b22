"""A stand-in for the face recogniser, for demos, tests and benchmarks of the camera path.

It is NOT a face model: it reads the frame's mean brightness and calls a bright frame
``happy`` and a dark one ``sad``; a flat frame (no detail at all) counts as "no face".
Select it with ``camera.recogniser = "edge.demo.stub_face:factory"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.labels import confidence, expected_va


@dataclass(frozen=True)
class StubFaceResult:
    label: str | None
    probabilities: Mapping[str, float] = field(default_factory=dict)
    valence: float | None = None
    arousal: float | None = None
    confidence: float = 0.0
    faces: int = 0  # one "face" per detailed frame
    classified: int = 0
    reason: str | None = None


class StubFaceRecogniser:
    def classify_frame(self, image: np.ndarray) -> StubFaceResult:
        x = np.asarray(image, dtype=np.float32)
        if x.size == 0 or float(x.std()) < 2.0:
            return StubFaceResult(None, reason="no face")
        bright = float(np.clip(x.mean() / 255.0, 0.0, 1.0))
        probs = {"happy": bright, "sad": 1.0 - bright}
        v, a = expected_va(probs)
        return StubFaceResult(max(probs, key=probs.__getitem__), probs, v, a, confidence(probs),
                              faces=1, classified=1)


def factory(model_path: Path | None = None) -> StubFaceRecogniser:
    return StubFaceRecogniser()
