"""The shared label vocabulary and its circumplex (valence, arousal) table.

Every recogniser (speech, face) maps its classes into ``VOCABULARY``; fusion and the
recommender work in arousal/valence space through ``CIRCUMPLEX``.

The coordinates place each label on Russell's circumplex of affect (Russell 1980,
"A circumplex model of affect", J. Pers. Soc. Psych. 39(6)), with valence on x and
arousal on y, both scaled to [-1, 1].  Positions follow the angular order of
Russell's Fig. 2 and Scherer's (2005) rescaled placements; magnitudes are rounded
to one decimal.  ``neutral`` is the origin by definition.

    label       valence  arousal   quadrant
    neutral       0.0      0.0     (centre)
    calm          0.4     -0.6     low arousal, positive
    happy         0.8      0.5     high arousal, positive
    sad          -0.7     -0.5     low arousal, negative
    angry        -0.6      0.8     high arousal, negative
    fearful      -0.6      0.7     high arousal, negative
    disgust      -0.7      0.3     negative, mildly aroused
    surprised     0.3      0.8     high arousal, mildly positive
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from edge.num import clip

VOCABULARY: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)

#: Russell quadrants, the music model's labels (4Q, Panda et al. 2018): Q1 +valence
#: +arousal, Q2 -valence +arousal, Q3 -valence -arousal, Q4 +valence -arousal.
QUADRANTS: tuple[str, ...] = ("Q1", "Q2", "Q3", "Q4")

CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "calm": (0.4, -0.6),
    "happy": (0.8, 0.5),
    "sad": (-0.7, -0.5),
    "angry": (-0.6, 0.8),
    "fearful": (-0.6, 0.7),
    "disgust": (-0.7, 0.3),
    "surprised": (0.3, 0.8),
}


def check_labels(labels: Sequence[str], where: str = "labels") -> None:
    """Raise ValueError naming ``where`` if any label is outside the vocabulary."""
    unknown = [lab for lab in labels if lab not in CIRCUMPLEX]
    if unknown:
        raise ValueError(
            f"{where}: unknown label(s) {unknown}; expected labels from {list(VOCABULARY)}"
        )
    if len(set(labels)) != len(labels):
        raise ValueError(f"{where}: duplicate labels in {list(labels)}")


def expected_va(probabilities: Mapping[str, float]) -> tuple[float, float]:
    """Probability-weighted mean (valence, arousal) of a distribution over labels.

    Probabilities are renormalised; the result lies in [-1, 1]^2 because it is a
    convex combination of points in that square.
    """
    total = float(sum(max(0.0, p) for p in probabilities.values()))
    if total <= 0.0:
        return 0.0, 0.0
    v = a = 0.0
    for label, p in probabilities.items():
        w = max(0.0, float(p)) / total
        lv, la = CIRCUMPLEX[label]
        v += w * lv
        a += w * la
    return clip(v), clip(a)


def confidence(probabilities: Mapping[str, float]) -> float:
    """1 − normalised Shannon entropy: 1 for a one-hot guess, 0 for a uniform one."""
    ps = [max(0.0, float(p)) for p in probabilities.values()]
    total = sum(ps)
    k = len(ps)
    if total <= 0.0 or k < 2:
        return 0.0
    h = -sum(q * math.log(q) for q in (p / total for p in ps) if q > 0.0)
    return clip(1.0 - h / math.log(k), 0.0, 1.0)
