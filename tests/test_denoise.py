"""The noise-suppression front end (edge.audio.denoise) inside the one feature path."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
from conftest import have_module, needs_data, ravdess_clip

from edge.audio import denoise
from edge.audio import features as F
from edge.audio.sources import load_audio

needs_ns = pytest.mark.skipif(not have_module("webrtc_noise_gain"),
                              reason="needs webrtc-noise-gain ([train] or [dev])")


def _room_noise(n: int, rng: np.random.Generator, rms: float) -> np.ndarray:
    """A fan and mains hum: white noise through a one-pole low-pass plus 50/100 Hz."""
    t = np.arange(n) / 16000
    white = rng.standard_normal(n)
    fan = np.empty(n)
    acc = 0.0
    for i, v in enumerate(white):  # 1-pole low-pass, a fan's dull roar
        acc = 0.95 * acc + 0.05 * v
        fan[i] = acc
    hum = np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 100 * t)
    x = fan / fan.std() + 0.5 * hum / hum.std()
    return x * rms / x.std()


@needs_ns
@needs_data
@pytest.mark.parametrize("level", [1, 2, 4])
def test_streamed_suppression_gives_the_clips_frames(level):
    p = F.FeatureParams(pitch=True, noise_suppression=level)
    x = load_audio(ravdess_clip(19, "05"), p.sample_rate)
    rng = np.random.default_rng(level)
    x = x[: len(x) - int(rng.integers(1, 159))]  # not a whole number of 10 ms frames
    x = x + _room_noise(len(x), rng, 0.003)
    stream, out, i = F.StreamingMFCC(p), [], 0
    while i < len(x):
        k = int(rng.integers(1, 3000))
        out.append(stream.push(x[i : i + k]))
        i += k
    out.append(stream.flush())
    np.testing.assert_array_equal(np.concatenate(out), F.mfcc(x, p))
    # and the stream starts afresh after flush(): the same clip again, the same frames
    again = np.concatenate([stream.push(x), stream.flush()])
    np.testing.assert_array_equal(again, F.mfcc(x, p))


@needs_ns
@needs_data
def test_suppression_lowers_a_fan_and_hum_and_keeps_the_voice():
    x = load_audio(ravdess_clip(22, "05"), 16000)  # angry, loud
    rng = np.random.default_rng(0)
    lead = np.zeros(16000 * 2)  # two seconds of room before the talker
    clean = np.concatenate([lead, x])
    speech_rms = float(np.sqrt(np.mean(x[np.abs(x) > 0.01] ** 2)))
    noisy = clean + _room_noise(len(clean), rng, speech_rms / 10 ** (10 / 20))  # ~10 dB SNR
    plain, ns = F.FeatureParams(), F.FeatureParams(noise_suppression=2)
    before = F.frame_levels_db(F.mfcc(noisy, plain), plain)
    after = F.frame_levels_db(F.mfcc(noisy, ns), ns)
    voice = F.frame_levels_db(F.mfcc(clean, plain), plain)
    room_only = slice(100, 190)  # frames 1.0-1.9 s: the suppressor has its estimate
    loud = np.flatnonzero(voice > np.percentile(voice[200:], 90))
    assert before[room_only].mean() - after[room_only].mean() > 6.0
    assert abs(before[loud].mean() - after[loud].mean()) < 3.0


@needs_ns
def test_suppress_keeps_the_length_of_any_clip():
    rng = np.random.default_rng(1)
    for n in (0, 1, 159, 160, 161, 16000, 16001):
        y = denoise.suppress(rng.standard_normal(n) * 0.01, 2)
        assert y.shape == (n,) and y.dtype == np.float64


def test_feature_params_refuse_bad_levels_and_read_old_manifests():
    with pytest.raises(ValueError, match=r"noise_suppression: expected one of \(0, 1, 2, 3, 4\), got 5"):
        F.FeatureParams(noise_suppression=5)
    with pytest.raises(ValueError, match="noise_suppression: needs sample_rate 16000, got 8000"):
        F.FeatureParams(sample_rate=8000, highfreq=4000.0, noise_suppression=2)
    old = F.FeatureParams().to_dict()
    del old["noise_suppression"]  # a manifest written before the field existed
    assert F.FeatureParams.from_dict(old).noise_suppression == 0


def test_a_model_that_needs_the_suppressor_names_the_missing_package(monkeypatch):
    real_import = builtins.__import__

    def no_webrtc(name, *args, **kwargs):
        if name == "webrtc_noise_gain":
            raise ImportError("No module named 'webrtc_noise_gain'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_webrtc)
    with pytest.raises(RuntimeError, match="noise_suppression: level 2 needs the webrtc-noise-gain"):
        F.StreamingMFCC(F.FeatureParams(noise_suppression=2))
