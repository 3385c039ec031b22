"""The music features' contrast group (MusicFeatureParams.contrast): off, the vector is the
one the shipped model reads; on, it adds octave-band contrast, band energy and loudness range."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA

from edge.audio.sources import decode_excerpt
from edge.music import features as M

SR = 16000
OFF, ON = M.MusicFeatureParams(), M.MusicFeatureParams(contrast=True)


def names_of(vec: np.ndarray, p: M.MusicFeatureParams) -> dict[str, float]:
    return dict(zip(M.feature_names(p), map(float, vec)))


@pytest.mark.skipif(not (DATA / "music" / "4q").is_dir(), reason="4Q clips not found")
def test_the_group_only_adds_columns_to_a_real_clips_vector():
    clip = sorted((DATA / "music" / "4q" / "Q2").glob("*.opus"))[0]
    x = decode_excerpt(clip, SR, OFF.excerpt_s, OFF.min_s)[0]
    off, on = M.clip_vector(x, OFF), M.clip_vector(x, ON)
    assert off.shape == (M.n_features(OFF),) == (87,) and on.shape == (M.n_features(ON),) == (106,)
    assert len(M.feature_names(ON)) == 106
    np.testing.assert_array_equal(on[:87], off)
    assert np.isfinite(on).all()


def test_a_tone_has_contrast_in_its_band_and_noise_has_little():
    t = np.arange(10 * SR) / SR
    rng = np.random.default_rng(0)
    sine = 0.3 * np.sin(2 * np.pi * 1000 * t) + 1e-3 * rng.standard_normal(len(t))
    tone = names_of(M.clip_vector(sine, ON), ON)
    noise = names_of(M.clip_vector(0.1 * rng.standard_normal(len(t)), ON), ON)
    # 1 kHz lies in the 800–1600 Hz band (3): its peak stands far over its valley there
    assert tone["contrast3_mean"] > noise["contrast3_mean"] + 30
    assert tone["band3_share_db"] > -0.5 and tone["band0_share_db"] < -30
    # white noise: each band's share of the energy is its share of the bandwidth
    assert noise["band5_share_db"] == pytest.approx(10 * np.log10(4800 / 8000), abs=0.5)
    assert noise["loudness_range_db"] < 1.0


def test_loudness_range_is_the_levels_spread():
    rng = np.random.default_rng(1)
    loud, quiet = 0.2 * rng.standard_normal(5 * SR), 0.02 * rng.standard_normal(5 * SR)
    v = names_of(M.clip_vector(np.concatenate([loud, quiet]), ON), ON)
    assert v["loudness_range_db"] == pytest.approx(20.0, abs=1.0)


def test_a_manifest_written_before_the_group_reads_as_without_it():
    """The shipped music manifest predates ``contrast``: read as off, not refused."""
    from conftest import ROOT

    from edge.manifest import load_manifest, manifest_path

    m = load_manifest(manifest_path(ROOT / "models_tflite" / "music_emotion.tflite"))
    assert "contrast" not in m.features
    assert M.MusicFeatureParams.from_dict(m.features) == M.MusicFeatureParams.from_dict(
        {**m.features, "contrast": False})
    with pytest.raises(ValueError, match="unknown key"):
        M.MusicFeatureParams.from_dict({**m.features, "contrasts": True})
