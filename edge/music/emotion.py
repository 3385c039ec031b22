"""The music-emotion model on the device: an excerpt → quadrant probabilities → A/V.

``models_tflite/music_emotion.tflite`` (int8, a kernel model fitted by ``training.music_kernel`` on 4Q) reads
the pooled vector of :mod:`edge.music.features`, standardised by the manifest's
per-column map, and gives P(Q1..Q4).  The catalogue position is the probability
balance of the quadrants:

    valence = P(Q1) + P(Q4) − P(Q2) − P(Q3)
    arousal = P(Q1) + P(Q2) − P(Q3) − P(Q4)

both in [-1, 1]; a confident clip lies near its quadrant's corner, an ambiguous one
near the middle.  No TensorFlow: the interpreter comes from :mod:`edge.runtime`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.labels import QUADRANTS
from edge.music import features as M
from edge.runtime import TFLiteModel, default_models_dir, load_model

DEFAULT_MODEL = "music_emotion.tflite"
# Names the probabilities -> (valence, arousal) map below; stored with every scanned file
# (edge.music.library.estimator_id), so a change to it re-places files on the next scan.
VA_MAPPING = "balance-1"
_SIGN = {"Q1": (1, 1), "Q2": (-1, 1), "Q3": (-1, -1), "Q4": (1, -1)}


@dataclass(frozen=True)
class MusicEstimate:
    """What the model says of one excerpt."""

    probabilities: dict[str, float]
    quadrant: str
    valence: float
    arousal: float

    @property
    def confidence(self) -> float:
        return self.probabilities[self.quadrant]


def quadrant_va(probabilities: dict[str, float]) -> tuple[float, float]:
    """(valence, arousal) in [-1, 1] from quadrant probabilities (module docstring)."""
    total = sum(max(0.0, float(p)) for p in probabilities.values()) or 1.0
    v = sum(_SIGN[q][0] * max(0.0, float(p)) for q, p in probabilities.items()) / total
    a = sum(_SIGN[q][1] * max(0.0, float(p)) for q, p in probabilities.items()) / total
    return float(np.clip(v, -1, 1)), float(np.clip(a, -1, 1))


class MusicEmotion:
    """The shipped (or a given) music model with its feature parameters."""

    def __init__(self, model_path: Path | str | None = None) -> None:
        path = Path(model_path) if model_path else default_models_dir() / DEFAULT_MODEL
        self.model: TFLiteModel = load_model(path, "music")
        self.params = M.MusicFeatureParams.from_dict(self.model.manifest.features,
                                                     f"{path}: field 'features'")
        self.labels = tuple(self.model.manifest.labels)
        if sorted(self.labels) != sorted(QUADRANTS):
            raise ValueError(f"{path}: labels {self.labels}, expected {QUADRANTS}")

    def predict_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """P(label) (n, 4) of unstandardised pooled vectors (n, d)."""
        return self.model.predict(M.standardise(np.atleast_2d(vectors), self.params))

    def estimate(self, audio: np.ndarray) -> MusicEstimate:
        """The estimate for one excerpt of 16 kHz mono audio."""
        probs = self.predict_vectors(M.clip_vector(audio, self.params)[None])[0]
        pd = {lab: float(p) for lab, p in zip(self.labels, probs)}
        v, a = quadrant_va(pd)
        return MusicEstimate(pd, max(pd, key=pd.__getitem__), v, a)
