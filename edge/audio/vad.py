"""Voice-activity gating: pure functions on per-frame levels (dBFS).

A model window is classified only when it looks like speech:

* enough of its frames are louder than ``threshold_db`` (silence is rejected), and
* its level moves: speech has syllables and pauses, so the spread between the loud
  and quiet frames (90th − 10th percentile) is at least ``min_dynamic_db``. Steady
  noise (a fan, hum, a constant tone) is loud but flat, and is rejected.

``threshold_db`` is what ``edge-cli calibrate`` sets from the room's noise floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VadParams:
    threshold_db: float = -75.0  # frame level (pre-emphasised RMS, dBFS) counted as sound
    min_voiced_fraction: float = 0.25  # of a window's frames above the threshold
    min_dynamic_db: float = 10.0  # p90 − p10 of frame levels within a window
    # A speech model with a no-speech output passes a window only while P(no speech) is
    # below this; None: the model's manifest (gate.threshold).  ``edge-cli calibrate`` sets it.
    no_speech_threshold: float | None = None

    def __post_init__(self) -> None:
        if not -120.0 <= self.threshold_db <= 0.0:
            raise ValueError(f"threshold_db: expected -120..0 dBFS, got {self.threshold_db}")
        if not 0.0 < self.min_voiced_fraction <= 1.0:
            raise ValueError(
                f"min_voiced_fraction: expected (0, 1], got {self.min_voiced_fraction}"
            )
        if not 0.0 <= self.min_dynamic_db <= 60.0:
            raise ValueError(f"min_dynamic_db: expected 0..60 dB, got {self.min_dynamic_db}")
        t = self.no_speech_threshold
        if t is not None and not (isinstance(t, (int, float)) and 0.0 < t <= 1.0):
            raise ValueError(f"no_speech_threshold: expected a number in (0, 1], got {t!r}")


def voiced_fraction(levels_db: np.ndarray, params: VadParams) -> float:
    """Fraction of frames above the threshold."""
    if levels_db.size == 0:
        return 0.0
    return float(np.mean(levels_db > params.threshold_db))


def dynamic_range_db(levels_db: np.ndarray) -> float:
    """p90 − p10 of frame levels: small for steady noise, large for speech."""
    if levels_db.size == 0:
        return 0.0
    lo, hi = np.percentile(levels_db, [10, 90])
    return float(hi - lo)


def is_voiced(levels_db: np.ndarray, params: VadParams) -> bool:
    """Whether one window's frame levels look like speech."""
    return (
        voiced_fraction(levels_db, params) >= params.min_voiced_fraction
        and dynamic_range_db(levels_db) >= params.min_dynamic_db
    )
