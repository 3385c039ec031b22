"""Mood: turn the recognisers' noisy guesses into one steady arousal/valence estimate."""

from edge.mood.fusion import (
    FusionParams,
    ModalityContribution,
    MoodEstimate,
    MoodFuser,
    Observation,
    quadrant,
)

__all__ = [
    "FusionParams",
    "ModalityContribution",
    "MoodEstimate",
    "MoodFuser",
    "Observation",
    "quadrant",
]
