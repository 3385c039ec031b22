"""Scripted observation streams replayed through MoodFuser with default parameters.

Each scenario states how the mood is documented to move (edge/mood/fusion.py) and
checks it: a confident, fresh modality dominates; a modality that stops reporting
fades out over ``half_life_s`` and is gone after ``max_age_s``; a lone outlier
moves the estimate briefly without flipping the quadrant; with nobody present the
estimate returns to neutral with zero confidence.
"""

from __future__ import annotations

import pytest

from edge.labels import CIRCUMPLEX, VOCABULARY
from edge.mood.fusion import FACE, NEUTRAL, VOICE, FusionParams, MoodFuser, Observation

P = FusionParams()


def leaning(label: str, p: float = 0.85) -> dict[str, float]:
    """A distribution with ``p`` on ``label`` and the rest spread evenly."""
    rest = (1.0 - p) / (len(VOCABULARY) - 1)
    return {lab: (p if lab == label else rest) for lab in VOCABULARY}


def stream(modality: str, label: str, start: float, stop: float, every: float):
    t = start
    while t < stop - 1e-9:
        yield Observation.from_probabilities(modality, round(t, 6), leaning(label))
        t += every


def replay(observations, until: float, dt: float = 0.1):
    """Feed observations in time order; return {t: estimate} sampled every ``dt``."""
    fuser = MoodFuser(P)
    obs = sorted(observations, key=lambda o: (o.ts, o.modality))
    out, i, k = {}, 0, 0
    while k * dt <= until + 1e-9:
        t = round(k * dt, 6)
        while i < len(obs) and obs[i].ts <= t:
            fuser.observe(obs[i])
            i += 1
        out[t] = fuser.estimate(t)
        k += 1
    return out


def test_happy_face_angry_voice_then_face_leaves():
    """Face says happy (5 fps) for 10 s, the voice says angry every 2 s for 40 s.

    - While both report, the estimate lies between them (positive valence: the face is
      more reliable and always fresh), and its confidence is lower than the face's
      alone would be, because the two disagree.
    - After the face leaves (t = 10 s) its share halves every 5 s; the valence crosses
      to negative and the quadrant turns ``tense`` (the voice's quadrant).
    - From t = 10 + max_age_s the face no longer contributes and the estimate is the
      voice's own.
    - When the voice also stops (t = 40 s), the estimate is neutral with zero
      confidence max_age_s later.
    """
    face = list(stream(FACE, "happy", 0.0, 10.0, 0.2))
    voice = list(stream(VOICE, "angry", 0.0, 40.0, 2.0))
    est = replay(face + voice, until=65.0)
    happy_v, angry_v = CIRCUMPLEX["happy"][0], CIRCUMPLEX["angry"][0]

    both = est[9.0]
    assert angry_v < 0.0 < both.valence < happy_v
    assert both.quadrant == "excited"
    assert both.contributions[FACE].share > both.contributions[VOICE].share
    face_alone = replay(face, until=9.0)[9.0]
    assert both.confidence < face_alone.confidence  # they disagree

    shares = [est[t].contributions[FACE].share for t in (10.0, 15.0, 20.0, 25.0)]
    assert shares == sorted(shares, reverse=True) and shares[-1] < 0.2
    valence = [est[t].valence for t in (10.0, 15.0, 20.0, 25.0, 29.0)]
    assert valence == sorted(valence, reverse=True)
    assert est[20.0].valence < 0.0 and est[20.0].quadrant == "tense"

    late = est[31.0]
    assert FACE not in late.contributions
    v_only = late.contributions[VOICE]
    assert (late.valence, late.arousal) == pytest.approx((v_only.valence, v_only.arousal))
    assert late.quadrant == "tense"

    # label changes exactly once in 0..40 s (no flicker), excited -> tense
    labels = [est[t].quadrant for t in sorted(est) if 1.0 <= t <= 40.0]
    changes = [(a, b) for a, b in zip(labels, labels[1:], strict=False) if a != b]
    assert changes == [("excited", "tense")]

    assert est[38.0 + P.max_age_s + 0.1].quadrant == NEUTRAL
    assert est[38.0 + P.max_age_s + 0.1].confidence == 0.0


def test_a_single_shout_moves_the_mood_briefly_without_flipping_it():
    """Calm face throughout; one angry shout at t = 5 s.

    One observation is weak evidence (``evidence_prior``), so the shout pulls the
    estimate toward the centre (``neutral``) but never into the shout's own quadrant
    (``tense``); the pull shrinks as the shout ages, the label returns to ``relaxed``
    and after max_age_s the estimate is the face's alone.
    """
    face = list(stream(FACE, "calm", 0.0, 40.0, 0.2))
    shout = Observation.from_probabilities(VOICE, 5.0, leaning("angry", 0.95))
    est = replay([*face, shout], until=39.0)
    before, at, later = est[4.9].valence, est[5.0].valence, est[15.0].valence
    assert at < before - 0.1
    assert at < later < before
    labels = [est[t].quadrant for t in sorted(est) if t >= 1.0]
    assert set(labels) == {"relaxed", NEUTRAL}
    assert all(est[t].quadrant == "relaxed" for t in est if t < 5.0 or t >= 20.0)
    assert est[5.0].contributions[VOICE].confidence == pytest.approx(shout.confidence / 2)
    assert est[5.0 + P.max_age_s + 1.0].valence == pytest.approx(before, abs=1e-6)


def test_face_alone_is_reported_as_is_and_fades_to_neutral_when_it_leaves():
    """Only a sad face for 3 s: the estimate is the face's own point; 20 s later neutral."""
    face = list(stream(FACE, "sad", 0.0, 3.0, 0.2))
    est = replay(face, until=30.0)
    obs = face[-1]
    assert (est[2.8].valence, est[2.8].arousal) == pytest.approx((obs.valence, obs.arousal))
    assert est[2.8].quadrant == "sad"
    conf = [est[t].confidence for t in (2.8, 8.0, 13.0, 18.0)]
    assert conf == sorted(conf, reverse=True)
    assert conf[0] == pytest.approx(est[2.8].contributions[FACE].confidence)
    assert 0.8 * obs.confidence < conf[0] < obs.confidence  # 15 frames of evidence
    assert conf[1] == pytest.approx(conf[0] * 0.5 ** ((8.0 - 2.8) / P.half_life_s))
    assert est[23.0].quadrant == NEUTRAL and est[23.0].confidence == 0.0


def test_resting_baseline_calibration_recentres_a_modality():
    """A listener whose resting voice reads slightly sad: after calibration it is neutral."""
    rest = Observation.from_probabilities(VOICE, 0.0, leaning("sad", 0.3))
    plain = MoodFuser(P).update(rest)
    calibrated = MoodFuser(FusionParams(calibration_offset={VOICE: (rest.valence, rest.arousal)}))
    est = calibrated.update(rest)
    assert plain.valence < 0.0
    assert (est.valence, est.arousal) == pytest.approx((0.0, 0.0), abs=1e-12)
    assert est.quadrant == NEUTRAL
