"""Voice-activity gating on real speech, digital silence and steady noise."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_data, ravdess_clip

from edge.audio import features as F
from edge.audio.sources import load_audio
from edge.audio.speech import window_levels
from edge.audio.vad import VadParams, is_voiced

P = F.FeatureParams()


def voiced(signal, vad=None):
    vad = vad or VadParams()
    return [is_voiced(lv, vad) for lv in window_levels(F.mfcc(signal, P), P)]


def test_silence_is_not_voiced():
    assert not any(voiced(np.zeros(3 * 16000, np.float32)))


@pytest.mark.parametrize("level", [0.003, 0.03, 0.3])
def test_steady_noise_is_not_voiced(level):
    rng = np.random.default_rng(0)
    assert not any(voiced((rng.standard_normal(4 * 16000) * level).astype(np.float32)))


def test_steady_tone_is_not_voiced():
    t = np.arange(4 * 16000) / 16000
    assert not any(voiced((0.2 * np.sin(2 * np.pi * 100 * t)).astype(np.float32)))


@needs_data
def test_speech_is_voiced_and_threshold_matters():
    x = load_audio(ravdess_clip(20, "03"), 16000)
    assert np.mean(voiced(x)) >= 0.75
    assert not any(voiced(x, VadParams(threshold_db=-10.0)))


def test_vad_params_are_validated():
    with pytest.raises(ValueError, match="threshold_db"):
        VadParams(threshold_db=5)
    with pytest.raises(ValueError, match="min_voiced_fraction"):
        VadParams(min_voiced_fraction=0)
