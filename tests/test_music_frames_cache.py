"""training.music's frame cache belongs to the feature parameters it was made with."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA

from edge.music import features as M
from training.datasets import read_4q
from training.music import clip_frames

FOURQ = DATA / "music" / "4q"


@pytest.mark.skipif(not FOURQ.is_dir(), reason="needs ../shared/data/music/4q")
def test_frames_cached_with_other_parameters_are_made_again(tmp_path):
    """Regression: the cache was keyed by path alone, so a run with other feature
    parameters trained on the old run's frames (a train/serve skew nothing reported)."""
    clips = read_4q(FOURQ)[:2]
    cache = tmp_path / "frames.npz"
    first = clip_frames(clips, M.MusicFeatureParams(), cache)
    again = clip_frames(clips, M.MusicFeatureParams(), cache)  # the cache is used
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again))
    other = M.MusicFeatureParams(numcep=13)
    got = clip_frames(clips, other, cache)
    fresh = clip_frames(clips, other, None)
    assert all(np.array_equal(g[0], f[0]) and np.array_equal(g[1], f[1]) for g, f in zip(got, fresh))
    assert got[0][0].shape[1] != first[0][0].shape[1]
