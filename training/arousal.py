"""An auxiliary arousal target for the speech network (issue 19: more speakers).

BAVED gives arousal levels (low / neutral / high) on single Arabic words from about 60
speakers, but no emotions. With ``training.speech --arousal-aux`` its training speakers
join the run through a second, training-only head: three arousal levels read linearly
off the pooled features the emotion head reads. The emotion-labelled clips supervise
the same head with their label's level on Russell's circumplex (``edge.labels``), so one
arousal direction is learnt across the five corpora. BAVED windows teach the emotion
head nothing (their emotion weight is 0), and the saved model has no arousal head: the
device's network and its outputs are unchanged.
"""

from __future__ import annotations

import numpy as np

from edge.labels import CIRCUMPLEX
from training.datasets import Clip

#: The arousal head's classes.
LEVELS = ("low", "neutral", "high")
#: A label is "high" (or "low") when its circumplex arousal is at least this far from 0.
LEVEL_EDGE = 0.3


def level_of_label(label: str) -> int:
    """0 low, 1 neutral, 2 high: the emotion's arousal on the circumplex."""
    a = CIRCUMPLEX[label][1]
    return 2 if a >= LEVEL_EDGE else 0 if a <= -LEVEL_EDGE else 1


def level_of_clip(clip: Clip) -> int:
    """A BAVED clip's own level (its ``arousal`` -1/0/+1), else its label's level."""
    if clip.arousal is not None:
        return int(round(clip.arousal)) + 1
    if clip.label is None:
        raise ValueError(f"{clip.path}: neither an emotion label nor an arousal level")
    return level_of_label(clip.label)


def bank_levels(banks, outputs: list[str]) -> np.ndarray:
    """Each bank's arousal target: its own ``arousal`` level when it has one (BAVED), its
    label's level for an emotion-labelled corpus, -1 (no target) for music and noise."""
    out = np.full(len(banks), -1, np.int64)
    for i, b in enumerate(banks):
        if b.arousal >= 0:
            out[i] = b.arousal
        elif b.corpus not in ("music", "noise") and b.allowed is not None and b.allowed.sum() > 0:
            out[i] = level_of_label(outputs[b.label])
    return out


def with_arousal_head(model, trainer, feature_layer: str = "pool_cat"):
    """``trainer``'s outputs plus a linear 3-level arousal head on ``model``'s pooled
    features (``trainer`` may be ``model`` itself or its speaker-adversary twin)."""
    import keras
    from keras import layers

    outputs = list(trainer.outputs) if trainer is not model else [model.output]
    head = layers.Dense(len(LEVELS), activation="softmax", name="arousal")(
        model.get_layer(feature_layer).output)
    return keras.Model(model.input, outputs + [head], name=f"{model.name}_arousal")
