"""The device's NumPy MFCC equals python_speech_features (the reference) on real audio."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EMODB, have_module, needs_data, ravdess_clip

from edge.audio import features as F
from edge.audio import pitch
from edge.audio.sources import load_audio

needs_psf = pytest.mark.skipif(not have_module("scipy"), reason="reference needs scipy ([dev])")


def real_clips():
    return [ravdess_clip(19, "05"), ravdess_clip(22, "02", "01", "02", "02"),
            EMODB / "anger" / "03a01Wa.flac"]


@needs_data
@needs_psf
@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("numcep,nfilt", [(40, 40), (13, 26)])
def test_mfcc_equals_reference(index, numcep, nfilt):
    import python_speech_features as psf

    p = F.FeatureParams(numcep=numcep, nfilt=nfilt, floor_db=None)
    x = load_audio(real_clips()[index], p.sample_rate)
    # float64 samples: the reference would otherwise pre-emphasise in float32.
    ref = psf.mfcc(x.astype(np.float64), p.sample_rate, p.winlen, p.winstep, p.numcep, p.nfilt,
                   p.nfft, p.lowfreq, p.highfreq, p.preemph, p.ceplifter, p.append_energy, winfunc=np.hamming)
    ours = F.mfcc(x, p)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=2e-4)


@needs_data
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_equals_offline(seed):
    p = F.FeatureParams()
    x = load_audio(real_clips()[seed], p.sample_rate)
    rng = np.random.default_rng(seed)
    x = x[: len(x) - int(rng.integers(0, 400))]  # end at an arbitrary sample
    stream = F.StreamingMFCC(p)
    out, i = [], 0
    while i < len(x):
        k = int(rng.integers(1, 4000))
        out.append(stream.push(x[i : i + k]))
        i += k
    out.append(stream.flush())
    np.testing.assert_allclose(np.concatenate(out), F.mfcc(x, p), rtol=0, atol=1e-9)


def test_streaming_short_and_exact_lengths():
    p = F.FeatureParams()
    rng = np.random.default_rng(3)
    for n in (1, 399, 400, 401, 560, 561, 16000):
        x = (rng.standard_normal(n) * 0.1).astype(np.float32)
        s = F.StreamingMFCC(p)
        got = np.concatenate([s.push(x), s.flush()])
        np.testing.assert_allclose(got, F.mfcc(x, p), atol=1e-9, err_msg=f"length {n}")


def test_windows_cover_the_clip_and_tile_short_clips():
    p = F.FeatureParams(window_s=2.0, hop_s=0.5)
    feats = np.arange(450 * 3, dtype=np.float32).reshape(450, 3)
    w = F.windows(feats, p)
    assert w.shape == (6, 200, 3)  # starts 0,50,...,200 and the end-aligned 250
    np.testing.assert_array_equal(w[-1], feats[250:450])
    short = F.windows(feats[:30], p)
    assert short.shape == (1, 200, 3)
    np.testing.assert_array_equal(short[0, 30:60], feats[:30])


def test_normalise_is_per_window_cmvn():
    p = F.FeatureParams(normalisation="cmvn")
    x = np.random.default_rng(0).normal(5, 3, size=(2, 200, 40)).astype(np.float32)
    y = F.normalise(x, p)
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=1), 1, atol=1e-3)


def test_feature_params_round_trip_and_reject_unknown_keys():
    p = F.FeatureParams()
    assert F.FeatureParams.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="unknown key.*'hop'"):
        F.FeatureParams.from_dict({**p.to_dict(), "hop": 1})
    with pytest.raises(ValueError, match="missing key.*numcep"):
        d = p.to_dict()
        del d["numcep"]
        F.FeatureParams.from_dict(d)
    with pytest.raises(ValueError, match="numcep"):
        F.FeatureParams(numcep=50, nfilt=40)


def test_column_map_applies_after_normalisation_and_survives_json():
    import json

    p0 = F.FeatureParams(numcep=13, nfilt=26)
    scale = tuple(np.linspace(0.5, 2.0, 13))
    offset = tuple(np.linspace(-1.0, 1.0, 13))
    p = F.FeatureParams(numcep=13, nfilt=26, column_scale=list(scale), column_offset=offset)
    assert p.column_scale == scale and hash(p)  # lists become tuples: still cacheable
    again = F.FeatureParams.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again == p
    x = np.random.default_rng(1).normal(0, 5, size=(3, 200, 13)).astype(np.float32)
    np.testing.assert_allclose(F.normalise(x, p),
                               F.normalise(x, p0) * np.float32(scale) + np.float32(offset),
                               rtol=1e-6)


def test_column_map_is_checked_and_optional_in_older_manifests():
    old = F.FeatureParams().to_dict()
    del old["column_scale"], old["column_offset"]  # a manifest written before the map
    assert F.FeatureParams.from_dict(old) == F.FeatureParams()
    with pytest.raises(ValueError, match="column_scale: expected 40 finite numbers.*got 3"):
        F.FeatureParams(column_scale=(1.0, 2.0, 3.0), column_offset=(0.0,) * 40)
    with pytest.raises(ValueError, match="column_offset: expected 42 finite"):
        F.FeatureParams(pitch=True, column_scale=(1.0,) * 42,
                        column_offset=(0.0,) * 41 + (float("nan"),))
    with pytest.raises(ValueError, match="both or neither"):
        F.FeatureParams(column_scale=(1.0,) * 40)


@needs_data
def test_frame_levels_track_signal_level():
    p = F.FeatureParams()
    x = load_audio(ravdess_clip(19, "05"), p.sample_rate)
    quiet = F.frame_levels_db(F.mfcc(x * 0.1, p), p)
    loud = F.frame_levels_db(F.mfcc(x, p), p)
    sounding = loud > -60  # well above the -96 dBFS floor even after -20 dB
    np.testing.assert_allclose((loud - quiet)[sounding], 20.0, atol=0.05)


@needs_data
def test_floor_changes_only_near_silent_frames():
    p0 = F.FeatureParams(floor_db=None)
    p1 = F.FeatureParams()  # the shipped default: -96 dBFS floor
    x = load_audio(ravdess_clip(19, "05"), p0.sample_rate)
    raw, floored = F.mfcc(x, p0), F.mfcc(x, p1)
    level = F.frame_levels_db(raw, p0)
    loud = level > p1.floor_db + 30
    assert loud.sum() > 100
    np.testing.assert_allclose(floored[loud, 0], raw[loud, 0], atol=0.01)
    silent = F.frame_levels_db(F.mfcc(np.zeros(8000, np.float32), p1), p1)
    np.testing.assert_allclose(silent, p1.floor_db, atol=0.01)


@needs_data
def test_c0rel_normalisation_removes_microphone_gain():
    # Without the noise floor a gain only shifts log-energy; the floor (like a real
    # microphone's) breaks this only for bands near it.
    assert F.FeatureParams().normalisation == "c0rel"
    p = F.FeatureParams(floor_db=None)
    x = load_audio(ravdess_clip(20, "05"), p.sample_rate)
    a = F.normalise(F.windows(F.mfcc(x, p), p), p)
    b = F.normalise(F.windows(F.mfcc(x * 0.25, p), p), p)  # -12 dB
    loud = F.windows(F.frame_levels_db(F.mfcc(x, p), p)[:, None], p)[..., 0] > -60
    np.testing.assert_allclose(a[..., 0][loud], b[..., 0][loud], atol=0.05)
    np.testing.assert_allclose(a[..., 1:][loud], b[..., 1:][loud], atol=1e-3)


def _harmonic(f0: float, seconds: float = 1.0, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 8)).astype(np.float32)


@pytest.mark.parametrize("f0", [95.0, 140.0, 220.0, 330.0])
def test_pitch_columns_find_the_period_of_a_voiced_sound(f0):
    p = F.FeatureParams(pitch=True)
    feats = F.mfcc(_harmonic(f0), p)
    assert feats.shape[1] == p.n_features == p.numcep + 2
    voicing, semis = feats[5:-5, -2] / 20, feats[5:-5, -1]
    assert np.all(voicing > 0.8)
    hz = 150 * 2 ** (np.median(semis) / 12)
    assert abs(hz / f0 - 1) < 0.03, hz


def test_pitch_columns_call_noise_and_silence_unvoiced():
    p = F.FeatureParams(pitch=True)
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(16000) * 0.1).astype(np.float32)
    assert np.mean(F.mfcc(noise, p)[:, -2] / 20 >= pitch.VOICED) < 0.05
    silent = F.mfcc(np.zeros(16000, np.float32), p)
    assert np.all(silent[:, -2:] == 0)


@needs_data
def test_pitch_separates_a_male_from_a_female_actor_and_streams_exactly():
    p = F.FeatureParams(pitch=True)
    medians = {}
    for actor in (19, 22):  # odd actors are male, even female
        x = load_audio(ravdess_clip(actor, "02"), p.sample_rate)
        feats = F.mfcc(x, p)
        voiced = feats[:, -2] / 20 >= pitch.VOICED
        assert 0.15 < voiced.mean() < 0.8  # speech with leading and trailing silence
        medians[actor] = 150 * 2 ** (np.median(feats[voiced, -1]) / 12)
        stream = F.StreamingMFCC(p)
        got = np.concatenate([stream.push(x[i : i + 1234]) for i in range(0, len(x), 1234)]
                             + [stream.flush()])
        np.testing.assert_allclose(got, feats, rtol=0, atol=1e-9)
    assert 80 < medians[19] < 160 < medians[22] < 300, medians


def test_pitch_columns_in_chunks_equal_one_frame_at_a_time():
    """Long clips go through the pitch tracker in chunks (bounded memory): same values."""
    p = F.FeatureParams(pitch=True)
    rng = np.random.default_rng(3)
    t = np.arange(p.frame_len) / p.sample_rate
    n = 2 * pitch.PITCH_CHUNK + 5
    frames = np.stack([np.sin(2 * np.pi * (100 + 2 * i) * t) + 0.05 * rng.standard_normal(t.size)
                       for i in range(n)])
    together = pitch.pitch_columns(frames, p)
    single = np.concatenate([pitch.pitch_columns(frames[i : i + 1], p) for i in range(n)])
    assert together.shape == (n, 2) and (together[:, 0] > 0).all()
    np.testing.assert_array_equal(together, single)
