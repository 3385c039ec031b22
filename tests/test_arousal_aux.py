"""training.arousal: the auxiliary arousal target's levels and the masked emotion target
of a clip that supervises no emotion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.labels import VOCABULARY
from training.arousal import bank_levels, level_of_clip, level_of_label
from training.datasets import Clip
from training.speech import Bank, masked_targets


def test_levels_follow_the_circumplex_and_baved_levels():
    assert [level_of_label(x) for x in ("sad", "calm")] == [0, 0]
    assert level_of_label("neutral") == 1
    assert [level_of_label(x) for x in ("happy", "angry", "fearful", "surprised", "disgust")] == [2] * 5
    baved = [Clip(Path(f"b{a}.opus"), None, "baved-3", "baved", a) for a in (-1.0, 0.0, 1.0)]
    assert [level_of_clip(c) for c in baved] == [0, 1, 2]
    assert level_of_clip(Clip(Path("r.wav"), "angry", "ravdess-1", "ravdess")) == 2
    with pytest.raises(ValueError, match="x.wav"):
        level_of_clip(Clip(Path("x.wav"), None, "who-1", "who"))


def test_bank_levels_own_label_or_none():
    outputs = list(VOCABULARY) + ["no_speech"]
    emo = np.ones(len(outputs), np.float32)
    banks = [Bank([], [], VOCABULARY.index("sad"), emo, "ravdess"),
             Bank([], [], 0, np.zeros(len(outputs), np.float32), "baved", arousal=2),
             Bank([], [], len(VOCABULARY), emo, "music")]
    assert bank_levels(banks, outputs).tolist() == [0, 2, -1]


def test_masked_targets_of_a_clip_without_emotion_is_all_zero():
    masks = np.array([[1, 1, 0], [0, 0, 0]], np.float32)
    t = masked_targets(np.array([1, 0]), masks)
    assert np.isfinite(t).all()
    assert t[1].tolist() == [0.0] * 6
    assert t[0, :3] == pytest.approx([0.05, 0.95, 0.0])
