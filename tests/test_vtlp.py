"""Vocal tract length perturbation of feature windows (training.vtlp), on a real clip."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_data, ravdess_clip

from edge.audio import features as F
from edge.audio.sources import load_audio
from training.vtlp import warp_cepstra


@needs_data
def test_warping_moves_the_spectral_envelope_as_a_speed_change_does():
    from training.speech import speed

    p = F.FeatureParams(pitch=True)
    y = load_audio(ravdess_clip(19, "05"), 16000, resample=True)
    c = F.mfcc(y, p)
    same = warp_cepstra(c[None], np.array([1.0]), p)[0]
    np.testing.assert_allclose(same, c, atol=1e-4)  # factor 1: the windows as they were

    def envelope(cep):  # the long-term spectral shape of the louder half of the frames
        loud = cep[:, 0] > np.median(cep[:, 0])
        return cep[loud, 1 : p.numcep].mean(axis=0)

    for s in (0.9, 1.1):  # speeding up by s moves every formant up by s
        target = envelope(F.mfcc(speed(y, s), p))
        warped = warp_cepstra(c[None], np.array([1 / s]), p)[0]
        assert np.linalg.norm(envelope(warped) - target) < 0.4 * np.linalg.norm(envelope(c) - target)
        np.testing.assert_array_equal(warped[:, 0], c[:, 0])  # the log-energy stays
        np.testing.assert_array_equal(warped[:, p.numcep:], c[:, p.numcep:])  # and the pitch columns


def test_each_window_gets_its_own_factor():
    p = F.FeatureParams()
    rng = np.random.default_rng(0)
    x = rng.normal(0, 5, (3, 20, p.numcep)).astype(np.float32)
    out = warp_cepstra(x, np.array([1.0, 1.1, 0.9]), p)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out[0], x[0], atol=1e-4)
    assert not np.allclose(out[1], x[1], atol=1e-2) and not np.allclose(out[2], out[1], atol=1e-2)
    with pytest.raises(ValueError):
        warp_cepstra(x, np.array([1.0]), p)  # one factor per window


def test_a_share_of_the_windows_is_warped_and_the_rest_kept_as_drawn():
    from training.vtlp import vtlp

    p = F.FeatureParams()
    x = np.random.default_rng(1).normal(0, 5, (400, 20, p.numcep)).astype(np.float32)
    out = vtlp(x, p, np.random.default_rng(2), (0.9, 1.1), share=0.5)
    kept = np.array([np.array_equal(a, b) for a, b in zip(out, x)])
    assert 0.4 < kept.mean() < 0.6 and not np.shares_memory(out, x)
    # share 1 draws as the runs made before the option did
    np.testing.assert_array_equal(vtlp(x[:5], p, np.random.default_rng(3), (0.9, 1.1)),
                                  warp_cepstra(x[:5], np.random.default_rng(3).uniform(0.9, 1.1, 5), p))


def test_a_pitch_shift_moves_each_windows_voiced_pitch_by_one_draw_and_nothing_else():
    """training.vtlp.shift_pitch (--pitch-shift): the semitone column of voiced frames moves
    by one uniform draw per window within the range; unvoiced frames (0), the voicing and the
    cepstra are untouched; the input is not changed in place."""
    from training.vtlp import shift_pitch

    p = F.FeatureParams(pitch=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 20, p.n_features)).astype(np.float32)
    x[:, ::3, -1] = 0.0  # unvoiced frames
    before = x.copy()
    y = shift_pitch(x, p, np.random.default_rng(1), 2.0)
    assert np.array_equal(x, before)
    assert np.array_equal(y[:, :, :-1], x[:, :, :-1]) and np.all(y[:, ::3, -1] == 0)
    voiced = x[:, :, -1] != 0
    d = (y[:, :, -1] - x[:, :, -1])
    per_window = [np.unique(np.round(d[i][voiced[i]], 4)) for i in range(len(x))]
    assert all(len(u) == 1 and abs(u[0]) <= 2.0 for u in per_window)
    assert np.std([u[0] for u in per_window]) > 0.5  # the draws differ between windows
    with pytest.raises(ValueError, match="needs the pitch columns"):
        shift_pitch(x[:, :, :-2], F.FeatureParams(pitch=False), rng, 2.0)
