"""edge.music.recommend: iso paths, policies, no-repeat, diversity, feedback, quality."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.labels import CIRCUMPLEX
from edge.music.catalog import Catalog, CatalogError, Track
from edge.music.recommend import (
    POLICY_TARGETS,
    Policy,
    Recommender,
    RecommenderParams,
    plan_path,
    recommend,
)

MUSIC = DATA / "music"

unit = st.floats(-1.0, 1.0, allow_nan=False)
point = st.tuples(unit, unit)


def grid_catalog(step: float = 0.1, artists: int | None = None) -> Catalog:
    """Tracks on a regular A/V grid; each its own artist unless ``artists`` is given."""
    cat = Catalog(":memory:")
    ticks = np.round(np.arange(-1.0, 1.0 + 1e-9, step), 6)
    tracks = [
        Track(f"grid:{i}:{j}", f"T{i}.{j}", f"artist{(i * len(ticks) + j) % artists}"
              if artists else f"artist{i}.{j}", float(v), float(a))
        for i, v in enumerate(ticks) for j, a in enumerate(ticks)
    ]
    cat.add_tracks(tracks)
    return cat


GRID = grid_catalog()


def dist(t: Track, p) -> float:
    return math.hypot(t.valence - p[0], t.arousal - p[1])


# --- iso path ------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(point, point, st.floats(0.01, 1.0))
def test_path_steps_are_bounded_and_end_at_the_target(start, target, step):
    path = plan_path(start, target, step)
    assert path[0] == pytest.approx(start) and path[-1] == target  # exactly
    assert len(path) == 1 + math.ceil(math.dist(start, target) / step - 1e-12)
    for p, q in zip(path, path[1:], strict=False):
        assert math.dist(p, q) <= step * (1 + 1e-9)
        assert math.dist(q, target) < math.dist(p, target)
    assert all(-1 <= c <= 1 for p in path for c in p)


def test_path_to_the_same_point_is_one_waypoint():
    assert plan_path((0.2, 0.3), (0.2, 0.3), 0.25) == [(0.2, 0.3)]


def test_policy_targets_come_from_the_circumplex():
    assert POLICY_TARGETS[Policy.UPLIFT] == CIRCUMPLEX["happy"]
    assert POLICY_TARGETS[Policy.CALM] == CIRCUMPLEX["calm"]


# --- policies ------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(point, st.sampled_from(list(Policy)), point, st.integers(1, 12))
def test_recommendations_are_in_bounds_distinct_and_explained(mood, policy, target, n):
    tgt = target if policy is Policy.TARGET else None
    recs = recommend(GRID.snapshot(), mood, policy, n, target=tgt)
    assert len(recs) == n
    assert len({r.track.uri for r in recs}) == n
    for k, r in enumerate(recs):
        assert -1 <= r.track.valence <= 1 and -1 <= r.track.arousal <= 1
        assert r.reason["policy"] == policy.value
        assert r.reason["step"] == min(k, r.reason["steps"])
        assert r.reason["distance"] == pytest.approx(dist(r.track, r.reason["waypoint"]), abs=2e-4)
        assert r.reason["distance"] <= 0.5
    assert recs[0].reason["distance"] <= 0.0708  # the grid has a track this near any point


def test_match_picks_the_nearest_tracks():
    recs = recommend(GRID.snapshot(), (0.33, -0.48), "match", 4)
    d = sorted(dist(t, (0.33, -0.48)) for t in GRID.tracks())
    assert [r.reason["distance"] for r in recs] == pytest.approx(d[:4], abs=1e-4)
    assert all(r.reason["steps"] == 0 for r in recs)


@pytest.mark.parametrize("policy", ["uplift", "calm"])
def test_iso_path_starts_at_the_mood_and_moves_in_bounded_steps(policy):
    mood = (-0.7, -0.5) if policy == "uplift" else (-0.6, 0.8)
    goal = POLICY_TARGETS[Policy(policy)]
    recs = recommend(GRID.snapshot(), mood, policy, 12)
    assert dist(recs[0].track, mood) <= 0.08  # first track meets the listener
    steps = recs[0].reason["steps"]
    assert steps == math.ceil(math.dist(mood, goal) / 0.25)
    for a, b in zip(recs, recs[1:], strict=False):  # each next one a bounded step onward
        assert math.dist((a.track.valence, a.track.arousal), (b.track.valence, b.track.arousal)) \
            <= 0.25 + 2 * 0.08
    to_goal = [dist(r.track, goal) for r in recs[: steps + 1]]
    assert to_goal[-1] <= 0.08 and to_goal[0] > to_goal[-1] + 1.0
    assert all(r.reason["target"] == list(goal) for r in recs)


def test_target_policy_and_argument_errors():
    recs = recommend(GRID.snapshot(), (0.0, 0.0), "target", 6, target=(0.0, -1.0))
    assert [r.reason["step"] for r in recs] == [0, 1, 2, 3, 4, 4]  # then holds the target
    assert dist(recs[4].track, (0.0, -1.0)) == pytest.approx(0.0)
    assert dist(recs[5].track, (0.0, -1.0)) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="needs a target"):
        recommend(GRID.snapshot(), (0, 0), "target")
    with pytest.raises(ValueError, match="only applies to policy 'target'"):
        recommend(GRID.snapshot(), (0, 0), "calm", target=(0, 0))
    with pytest.raises(ValueError, match="mood must lie in"):
        recommend(GRID.snapshot(), (1.5, 0), "match")
    with pytest.raises(ValueError):
        recommend(GRID.snapshot(), (0, 0), "party")
    with Catalog(":memory:") as empty, pytest.raises(CatalogError, match="empty"):
        recommend(empty.snapshot(), (0, 0))


# --- no repeat, diversity, feedback ---------------------------------------------------

def test_recent_plays_are_not_repeated_within_the_window():
    cat = grid_catalog()
    rec = Recommender(cat, RecommenderParams(repeat_window=5))
    first = rec.recommend((0.0, 0.0), n=3)
    for r in first:
        rec.played(r.track.uri)
    second = rec.recommend((0.0, 0.0), n=3)
    assert not {r.track.uri for r in first} & {r.track.uri for r in second}
    for r in second:
        rec.played(r.track.uri)
    third = rec.recommend((0.0, 0.0), n=3)  # first[0] fell out of the 5-play window
    assert first[0].track.uri in {r.track.uri for r in third}


def test_artist_diversity_within_a_batch_and_across_plays():
    cat = grid_catalog(artists=2)  # neighbours alternate between two artists
    recs = Recommender(cat, RecommenderParams(artist_window=1)).recommend((0.0, 0.0), n=6)
    artists = [r.track.artist for r in recs]
    assert all(a != b for a, b in zip(artists, artists[1:], strict=False))


def test_constraints_relax_when_nothing_else_is_left():
    cat = Catalog(":memory:")
    cat.add_tracks([Track(f"u{i}", "T", "same", 0.1 * i, 0.0) for i in range(3)])
    rec = Recommender(cat)
    recs = rec.recommend((0.0, 0.0), n=5)
    assert len(recs) == 3  # never more than the catalogue holds
    assert recs[1].reason["relaxed"] == ["artist"]
    for r in recs:
        rec.played(r.track.uri)
    again = rec.recommend((0.0, 0.0), n=1)
    assert again[0].reason["relaxed"] == ["artist", "repeat"]


def test_dislike_demotes_the_track():
    rec = Recommender(grid_catalog())
    mood = (0.3, 0.3)
    top = rec.recommend(mood, n=1)[0].track
    rec.feedback(top.uri, "dislike")
    now = rec.recommend(mood, n=1)[0]
    assert now.track.uri != top.uri and dist(now.track, mood) == pytest.approx(0.1)


def test_like_promotes_the_track_and_its_neighbours():
    rec = Recommender(grid_catalog())
    mood = (0.5, 0.0)  # (0.5, 0) at 0, then four tracks tied at 0.1
    before = rec.recommend(mood, n=2)
    assert before[1].track.uri != "grid:15:9" and before[1].reason["feedback"] == 0.0
    liked = "grid:15:7"  # (0.5, -0.3)
    rec.feedback(liked, "like")
    rec.feedback(liked, "like")
    assert rec.recommend((0.5, -0.2), n=1)[0].track.uri == liked  # beats the nearest
    rec.played(liked)
    after = rec.recommend(mood, n=2)
    assert after[0].track.uri == before[0].track.uri
    assert after[1].track.uri == "grid:15:9"  # (0.5, -0.1), nearest the liked track
    assert after[1].reason["feedback"] > 0.05


def test_skip_is_milder_than_dislike():
    scores = {}
    for kind in ("skip", "dislike"):
        cat = grid_catalog()
        rec = Recommender(cat)
        rec.feedback("grid:10:10", kind)
        scores[kind] = rec.recommend((0.0, 0.0), n=1)[0]
    assert scores["skip"].reason["feedback"] > scores["dislike"].reason["feedback"]


# --- quality over the shared catalogues ----------------------------------------------

@pytest.mark.data
@pytest.mark.skipif(not MUSIC.is_dir(),
                    reason=f"shared music data not found at {MUSIC} (../shared/data/music)")
@pytest.mark.parametrize("files", [
    [("data_moods.csv", "spotify")],
    [("pmemo_static_va.csv", "pmemo")],
    [("data_moods.csv", "spotify"), ("pmemo_static_va.csv", "pmemo")],
])
def test_match_is_at_least_twice_as_close_as_random(files):
    with Catalog(":memory:") as cat:
        for name, fmt in files:
            cat.import_csv(MUSIC / name, fmt)
        snap = cat.snapshot()
        rng = np.random.default_rng(0)
        moods = rng.uniform(-1.0, 1.0, size=(200, 2))
        n = 5
        chosen, random = [], []
        for mood in moods:
            recs = recommend(snap, tuple(mood), "match", n)
            chosen += [dist(r.track, mood) for r in recs]
            picks = rng.choice(len(snap), size=n, replace=False)
            random += np.hypot(*(snap.va[picks] - mood).T).tolist()
        ratio = float(np.mean(chosen) / np.mean(random))
        assert ratio <= 0.5, f"match/random distance ratio {ratio:.3f}"
