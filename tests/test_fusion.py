"""Unit and property tests for edge.mood.fusion (pure, timestamp-driven)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.labels import CIRCUMPLEX, VOCABULARY
from edge.mood.fusion import (
    FACE,
    NEUTRAL,
    QUADRANT_LABELS,
    VOICE,
    FusionParams,
    MoodFuser,
    Observation,
    freshness,
    modality_weight,
    quadrant,
)

unit = st.floats(-1.0, 1.0, allow_nan=False)
conf = st.floats(0.0, 1.0, allow_nan=False)
modality = st.sampled_from([FACE, VOICE, "other"])
probs = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=len(VOCABULARY),
                 max_size=len(VOCABULARY)).map(lambda ps: dict(zip(VOCABULARY, ps, strict=True)))


@st.composite
def streams(draw, modalities=modality, max_size=30):
    """A time-ordered stream of observations with irregular gaps."""
    n = draw(st.integers(1, max_size))
    t = 0.0
    out = []
    for _ in range(n):
        t += draw(st.floats(0.0, 8.0, allow_nan=False))
        out.append(Observation(draw(modalities), t, draw(unit), draw(unit), draw(conf)))
    return out


def one_hot(label: str) -> dict[str, float]:
    return {lab: (1.0 if lab == label else 0.0) for lab in VOCABULARY}


def test_from_probabilities_one_hot_is_the_table_point_with_full_confidence():
    obs = Observation.from_probabilities(FACE, 1.0, one_hot("sad"))
    assert (obs.valence, obs.arousal) == CIRCUMPLEX["sad"]
    assert obs.confidence == pytest.approx(1.0)


def test_from_probabilities_uniform_has_zero_confidence_and_rejects_unknown_labels():
    obs = Observation.from_probabilities(VOICE, 0.0, {lab: 1.0 for lab in VOCABULARY})
    assert obs.confidence == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="unknown label"):
        Observation.from_probabilities(VOICE, 0.0, {"bored": 1.0})


@pytest.mark.parametrize("kwargs", [
    {"valence": 1.5}, {"arousal": -1.01}, {"confidence": 1.2}, {"confidence": math.nan},
    {"ts": math.inf}, {"modality": ""},
])
def test_observation_rejects_bad_values(kwargs):
    base = {"modality": FACE, "ts": 0.0, "valence": 0.0, "arousal": 0.0, "confidence": 0.5}
    with pytest.raises(ValueError):
        Observation(**{**base, **kwargs})


def test_params_reject_bad_values():
    with pytest.raises(ValueError, match="half_life_s"):
        FusionParams(half_life_s=0.0)
    with pytest.raises(ValueError, match="reliability"):
        FusionParams(reliability={FACE: 2.0})


def test_freshness_halves_each_half_life_and_is_zero_past_max_age():
    p = FusionParams(half_life_s=4.0, max_age_s=10.0)
    assert freshness(0.0, p) == 1.0
    assert freshness(4.0, p) == pytest.approx(0.5)
    assert freshness(8.0, p) == pytest.approx(0.25)
    assert freshness(10.0001, p) == 0.0
    assert modality_weight(0.8, 0.5, 4.0, p) == pytest.approx(0.8 * 0.5 * 0.5)


def test_no_observation_gives_neutral_zero_confidence():
    est = MoodFuser().estimate(100.0)
    assert (est.valence, est.arousal, est.confidence, est.quadrant) == (0.0, 0.0, 0.0, NEUTRAL)
    assert est.contributions == {}


def test_reliability_weights_modalities():
    p = FusionParams(reliability={FACE: 1.0, VOICE: 0.25})
    f = MoodFuser(p)
    f.observe(Observation(FACE, 0.0, 1.0, 0.0, 1.0))
    f.observe(Observation(VOICE, 0.0, -1.0, 0.0, 1.0))
    est = f.estimate(0.0)
    # (1·1 + 0.25·(−1)) / 1.25 = 0.6
    assert est.valence == pytest.approx(0.6)
    assert est.contributions[FACE].share == pytest.approx(0.8)
    assert est.contributions[VOICE].share == pytest.approx(0.2)


def test_calibration_offset_is_subtracted_per_modality():
    p = FusionParams(calibration_offset={VOICE: (-0.2, 0.3)})
    f = MoodFuser(p)
    est = f.update(Observation(VOICE, 0.0, 0.1, 0.1, 0.9))
    assert (est.valence, est.arousal) == pytest.approx((0.3, -0.2))
    g = MoodFuser(p)  # another modality is not shifted
    assert g.update(Observation(FACE, 0.0, 0.1, 0.1, 0.9)).valence == pytest.approx(0.1)


def test_smoothing_weights_older_observations_by_age():
    f = MoodFuser(FusionParams(smoothing_half_life_s=2.0))
    f.observe(Observation(FACE, 0.0, 1.0, 0.0, 1.0))
    est = f.update(Observation(FACE, 2.0, -1.0, 0.0, 1.0))
    # the older one counts 0.5: (0.5·1 + 1·(−1)) / 1.5 = −1/3
    assert est.valence == pytest.approx(-1.0 / 3.0)


def test_out_of_order_observation_is_dropped():
    f = MoodFuser()
    assert f.observe(Observation(FACE, 5.0, 0.5, 0.5, 1.0))
    assert not f.observe(Observation(FACE, 4.0, -0.5, -0.5, 1.0))
    assert f.estimate(5.0).valence == pytest.approx(0.5)


def test_disagreement_lowers_confidence():
    f = MoodFuser(FusionParams(reliability={FACE: 1.0, VOICE: 1.0}))
    f.observe(Observation(FACE, 0.0, 0.8, 0.5, 0.9))
    agree = f.estimate(0.0).confidence
    f.observe(Observation(VOICE, 0.0, -0.6, 0.8, 0.9))
    disagree = f.estimate(0.0).confidence
    assert agree == pytest.approx(0.9 / 2.0)  # one observation, evidence_prior = 1
    assert disagree < agree


@pytest.mark.parametrize(("v", "a", "label"), [
    (0.5, 0.5, "excited"), (-0.5, 0.5, "tense"), (-0.5, -0.5, "sad"), (0.5, -0.5, "relaxed"),
    (0.05, -0.05, NEUTRAL),
])
def test_quadrant_without_history(v, a, label):
    assert quadrant(v, a) == label


def test_quadrant_hysteresis_holds_near_boundaries():
    assert quadrant(-0.05, 0.6, previous="excited", margin=0.1) == "excited"
    assert quadrant(-0.15, 0.6, previous="excited", margin=0.1) == "tense"
    assert quadrant(0.25, 0.0, previous=NEUTRAL, margin=0.1, neutral_radius=0.2) == NEUTRAL
    assert quadrant(0.35, 0.05, previous=NEUTRAL, margin=0.1, neutral_radius=0.2) == "excited"
    assert quadrant(0.15, 0.0, previous="excited", margin=0.1, neutral_radius=0.2) == "excited"
    assert quadrant(0.05, 0.0, previous="excited", margin=0.1, neutral_radius=0.2) == NEUTRAL


def test_jitter_around_an_axis_does_not_flicker_the_label():
    f = MoodFuser(FusionParams(smoothing_half_life_s=0.01))
    labels = [
        f.update(Observation(FACE, t * 0.5, 0.06 * (-1) ** t, 0.6, 1.0)).quadrant
        for t in range(40)
    ]
    assert len(set(labels)) == 1


# --- properties ---------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(streams(), st.floats(0.0, 60.0, allow_nan=False))
def test_outputs_stay_in_bounds(stream, extra):
    f = MoodFuser()
    for obs in stream:
        f.observe(obs)
    est = f.estimate(stream[-1].ts + extra)
    assert -1.0 <= est.valence <= 1.0 and -1.0 <= est.arousal <= 1.0
    assert 0.0 <= est.confidence <= 1.0
    assert est.quadrant in QUADRANT_LABELS
    shares = [c.share for c in est.contributions.values()]
    assert all(0.0 <= s <= 1.0 for s in shares)
    assert sum(shares) == pytest.approx(1.0) or sum(shares) == 0.0


@settings(max_examples=200, deadline=None)
@given(probs, st.floats(0, 10, allow_nan=False))
def test_probabilities_map_into_bounds(ps, ts):
    obs = Observation.from_probabilities(FACE, ts, ps)
    assert -1 <= obs.valence <= 1 and -1 <= obs.arousal <= 1 and 0 <= obs.confidence <= 1


@settings(max_examples=200, deadline=None)
@given(modality, unit, unit, st.floats(0.01, 1.0), st.floats(0.0, 19.0))
def test_one_modality_fuses_to_that_modality(m, v, a, c, age):
    f = MoodFuser()
    f.observe(Observation(m, 0.0, v, a, c))
    est = f.estimate(age)
    assert est.valence == pytest.approx(v, abs=1e-12)
    assert est.arousal == pytest.approx(a, abs=1e-12)
    assert est.contributions[m].share == pytest.approx(1.0)
    assert est.confidence == pytest.approx(est.contributions[m].confidence * 0.5 ** (age / 5.0))
    assert est.contributions[m].confidence == pytest.approx(c / 2.0)  # evidence_prior = 1


@settings(max_examples=100, deadline=None)
@given(streams(modalities=st.just(FACE)))
def test_one_modality_stream_equals_its_smoothed_estimate(stream):
    f = MoodFuser()
    for obs in stream:
        f.observe(obs)
    est = f.estimate(stream[-1].ts)
    c = est.contributions[FACE]
    if c.weight == 0.0:  # confidences so small (5e-324) that the weight underflows: no estimate
        assert (est.valence, est.arousal, est.confidence) == (0.0, 0.0, 0.0)
    else:
        assert (est.valence, est.arousal) == pytest.approx((c.valence, c.arousal))


@settings(max_examples=200, deadline=None)
@given(streams(), st.floats(0.0, 100.0, allow_nan=False))
def test_stale_modalities_weight_goes_to_zero(stream, later):
    p = FusionParams()
    f = MoodFuser(p)
    for obs in stream:
        f.observe(obs)
    now = stream[-1].ts
    weights = [f.estimate(now + dt).contributions for dt in (0.0, later, later + 1.0)]
    for m, c in weights[0].items():  # weight never grows while nothing new arrives
        later_w = [w[m].weight if m in w else 0.0 for w in weights[1:]]
        assert later_w[0] <= c.weight + 1e-12 and later_w[1] <= later_w[0] + 1e-12
    gone = f.estimate(now + p.max_age_s + 1e-6)
    assert gone.contributions == {}
    assert (gone.valence, gone.arousal, gone.confidence) == (0.0, 0.0, 0.0)


@settings(max_examples=100, deadline=None)
@given(streams(max_size=10), streams(max_size=10))
def test_replay_is_deterministic(a, b):
    stream = sorted(a + b, key=lambda o: o.ts)
    runs = []
    for _ in range(2):
        f = MoodFuser()
        runs.append([f.update(o) for o in stream])
    assert runs[0] == runs[1]
