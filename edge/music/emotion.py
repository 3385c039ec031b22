"""The music-emotion model on the device: an excerpt → quadrant probabilities → A/V.

``models_tflite/music_emotion.tflite`` (int8, a kernel model fitted by ``training.music_kernel`` on 4Q) reads
the pooled vector of :mod:`edge.music.features`, standardised by the manifest's
per-column map, and gives P(Q1..Q4).  The catalogue position is the expected point of
the quadrants, each quadrant placed where the listener's moods in it lie on the
circumplex (:data:`edge.labels.CIRCUMPLEX`: the mean of the emotion labels in that
quadrant, :data:`QUADRANT_POINTS`):

    (valence, arousal) = Σ_q P(q) · point(q)

Q1 (happy, surprised) (0.55, 0.65), Q2 (angry, fearful, disgust) (−0.63, 0.6), Q3 (sad)
(−0.7, −0.5), Q4 (calm) (0.4, −0.6). A confident clip lies where a listener feeling that
way lies in the fused mood, an ambiguous one nearer the middle, so the recommender's
nearest tracks to a mood are the ones the model is surest of. (Until mapping
"circumplex-1" the position was the probability balance P(Q1)+P(Q4)−P(Q2)−P(Q3), …:
a sure clip sat at (±1, ±1), beyond every mood, so the tracks nearest a mood such as
(−0.6, −0.5) were the half-sure ones.)  No TensorFlow: the interpreter comes from
:mod:`edge.runtime`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.labels import CIRCUMPLEX, QUADRANTS
from edge.music import features as M
from edge.runtime import TFLiteModel, default_models_dir, load_model

DEFAULT_MODEL = "music_emotion.tflite"
# Names the probabilities -> (valence, arousal) map below; stored with every scanned file
# (edge.music.library.estimator_id), so a change to it re-places files on the next scan.
VA_MAPPING = "circumplex-1"
_SIGN = {"Q1": (1, 1), "Q2": (-1, 1), "Q3": (-1, -1), "Q4": (1, -1)}


def _quadrant_points() -> dict[str, tuple[float, float]]:
    points = {}
    for q, (sv, sa) in _SIGN.items():
        inside = [(v, a) for v, a in CIRCUMPLEX.values() if v * sv > 0 and a * sa > 0]
        points[q] = (round(float(np.mean([v for v, _ in inside])), 4),
                     round(float(np.mean([a for _, a in inside])), 4))
    return points


#: Where a clip the model is sure of lies: the circumplex mean of the moods in its quadrant.
QUADRANT_POINTS: dict[str, tuple[float, float]] = _quadrant_points()


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
    v = sum(QUADRANT_POINTS[q][0] * max(0.0, float(p)) for q, p in probabilities.items()) / total
    a = sum(QUADRANT_POINTS[q][1] * max(0.0, float(p)) for q, p in probabilities.items()) / total
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
