"""Time-aware fusion of the recognisers' guesses into one mood estimate.

Everything here is deterministic given the timestamps passed in: no clocks, threads
or I/O, so tests can replay scripted observation streams.

The maths, in the order the data flows:

1. **Observation → (v, a, c).**  A recogniser's probability distribution over the
   shared vocabulary becomes its expected position on the circumplex,
   ``(v, a) = Σ p_k · CIRCUMPLEX[k]``, and a confidence ``c = 1 − H(p)/log K``
   (see :mod:`edge.labels`).  A per-modality calibration offset (the listener's
   resting baseline) is subtracted and the result clipped back to [-1, 1]².

2. **Per-modality smoothing.**  Each modality keeps a confidence-weighted,
   exponentially age-weighted mean of its observations.  An observation seen ``Δt``
   seconds before the newest one counts ``0.5 ** (Δt / smoothing_half_life_s)``
   times its confidence, so irregular frame rates and gaps are handled exactly:

       S_w ← k·S_w + c,   S_x ← k·S_x + c·x,   x̂ = S_x / S_w,   k = 0.5 ** (Δt / h_s)

   The modality's confidence is the age-weighted mean of its confidences, shrunk by
   ``evidence_prior`` pseudo-observations of confidence zero,

       c_m = Σ k·c / (Σ k + evidence_prior)

   so one observation (a single shout) is weak evidence, and a modality earns its
   confidence by repeating itself: a face seen at 5 fps reaches ~94 % of its
   per-frame confidence, a voice heard every 2 s ~67 %, a lone shout 50 %.

3. **Freshness.**  At query time ``now`` a modality whose newest observation is
   ``age`` seconds old gets the weight

       w = c · reliability · 0.5 ** (age / half_life_s),   and w = 0 when age > max_age_s

   so a modality that stops reporting (no face in frame, nobody speaking) fades out
   instead of freezing its last guess.

4. **Fusion.**  ``(v, a) = Σ w_m x̂_m / Σ w_m``.  With one modality the fused point is
   exactly that modality's estimate.  The fused confidence combines the evidence and
   the agreement between modalities:

       evidence  = 1 − Π_m (1 − c_m · 0.5 ** (age_m / half_life_s))
       spread    = sqrt(Σ w_m |x̂_m − x̄|² / Σ w_m)        (0 … √2 in the unit square)
       confidence = evidence · (1 − spread / √2)

   One fresh modality therefore reports its own confidence ``c_m``; two that disagree
   (a happy face, an angry voice) report less than either.

5. **Quadrant with hysteresis.**  See :func:`quadrant`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from edge.labels import check_labels, confidence, expected_va
from edge.num import clip

log = logging.getLogger(__name__)

FACE = "face"
VOICE = "voice"

NEUTRAL = "neutral"
#: Quadrant labels by (valence ≥ 0, arousal ≥ 0), after Russell's circumplex.
QUADRANTS: dict[tuple[bool, bool], str] = {
    (True, True): "excited",
    (False, True): "tense",
    (False, False): "sad",
    (True, False): "relaxed",
}
QUADRANT_LABELS: tuple[str, ...] = (NEUTRAL, *QUADRANTS.values())

_SQRT2 = math.sqrt(2.0)


def _check_unit(name: str, x: float, lo: float) -> float:
    x = float(x)
    if not (lo <= x <= 1.0):  # also rejects NaN
        raise ValueError(f"{name} must be in [{lo:g}, 1], got {x!r}")
    return x


def _normalised(probabilities: Mapping[str, float], where: str) -> dict[str, float]:
    """Non-negative probabilities summing to 1, with negligible (< 1e-12) ones zeroed.

    Zeroing keeps ``confidence`` away from ``log(0)`` when a tiny (subnormal)
    probability underflows during its own normalisation.
    """
    ps = {k: float(p) for k, p in probabilities.items()}
    if not all(math.isfinite(p) and p >= 0.0 for p in ps.values()):
        raise ValueError(f"{where}: probabilities must be finite and >= 0, got {ps}")
    total = sum(ps.values())
    if total <= 0.0:
        return {k: 0.0 for k in ps}
    return {k: (p / total if p / total >= 1e-12 else 0.0) for k, p in ps.items()}


@dataclass(frozen=True)
class Observation:
    """One recogniser's guess at time ``ts`` (seconds, any monotonic clock).

    Build it from class probabilities with :meth:`from_probabilities`, or give
    ``valence``/``arousal``/``confidence`` directly (e.g. a regression model).
    """

    modality: str
    ts: float
    valence: float
    arousal: float
    confidence: float
    probabilities: Mapping[str, float] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.modality:
            raise ValueError("Observation.modality must be a non-empty string")
        if not math.isfinite(float(self.ts)):
            raise ValueError(f"Observation.ts must be finite, got {self.ts!r}")
        _check_unit("Observation.valence", self.valence, -1.0)
        _check_unit("Observation.arousal", self.arousal, -1.0)
        _check_unit("Observation.confidence", self.confidence, 0.0)

    @classmethod
    def from_probabilities(
        cls, modality: str, ts: float, probabilities: Mapping[str, float]
    ) -> Observation:
        """Expected (valence, arousal) and 1 − normalised entropy of a distribution."""
        check_labels(list(probabilities), where=f"{modality} probabilities")
        ps = _normalised(probabilities, where=f"{modality} probabilities")
        v, a = expected_va(ps)
        return cls(modality, ts, v, a, confidence(ps), ps)


@dataclass(frozen=True)
class FusionParams:
    """Fusion settings; every field has a documented default a config file may override.

    - ``half_life_s`` (5 s): a modality's weight halves for every ``half_life_s``
      seconds since its newest observation.
    - ``max_age_s`` (20 s): beyond this age a modality's weight is exactly zero.
    - ``smoothing_half_life_s`` (2 s): within a modality, an observation's say in the
      smoothed estimate halves every ``smoothing_half_life_s`` seconds it is older than
      the newest one.
    - ``reliability`` (face 1.0, voice 0.8): how much each modality is trusted relative
      to the others, in [0, 1]; calibration may set it.  A face model sees the
      listener continuously; acted-speech models transfer less well to real rooms.
    - ``default_reliability`` (0.5): for modalities not named in ``reliability``.
    - ``calibration_offset`` (none = (0, 0)): per modality, a resting-baseline
      (valence, arousal) subtracted from that modality's observations.
    - ``hysteresis`` (0.1): how far (in A/V units) the point must cross a quadrant
      boundary, or the neutral circle, before the quadrant label changes.
    - ``neutral_radius`` (0.2): points nearer the origin than this are ``neutral``.
    - ``music_voice_factor`` (0.5): while the hub says music is playing (the ``playback``
      command), the voice's reliability is multiplied by this.
    - ``evidence_prior`` (1.0): zero-confidence pseudo-observations each modality's
      confidence is shrunk by, so a single observation counts as weak evidence.
    """

    half_life_s: float = 5.0
    max_age_s: float = 20.0
    smoothing_half_life_s: float = 2.0
    reliability: Mapping[str, float] = field(
        default_factory=lambda: {FACE: 1.0, VOICE: 0.8}
    )
    default_reliability: float = 0.5
    calibration_offset: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    hysteresis: float = 0.1
    neutral_radius: float = 0.2
    evidence_prior: float = 1.0
    # While the hub says music is playing, the voice's reliability is multiplied by this:
    # the microphone hears the music too, and talking over it is harder to read.
    music_voice_factor: float = 0.5

    def __post_init__(self) -> None:
        for name in ("half_life_s", "max_age_s", "smoothing_half_life_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"FusionParams.{name} must be > 0")
        if not self.evidence_prior >= 0:
            raise ValueError("FusionParams.evidence_prior must be >= 0")
        # distances in the [-1, 1]² plane: at 1 or more every mood is neutral, or a label never moves
        for name in ("hysteresis", "neutral_radius"):
            _check_unit(f"FusionParams.{name}", getattr(self, name), 0.0)
        _check_unit("FusionParams.default_reliability", self.default_reliability, 0.0)
        _check_unit("FusionParams.music_voice_factor", self.music_voice_factor, 0.0)
        for m, r in self.reliability.items():
            _check_unit(f"FusionParams.reliability[{m!r}]", r, 0.0)
        for m, off in self.calibration_offset.items():
            # a resting baseline is a point of the valence/arousal square
            if len(off) != 2 or not all(-1.0 <= float(x) <= 1.0 for x in off):
                raise ValueError(f"FusionParams.calibration_offset[{m!r}] must be (dv, da) "
                                 f"in [-1, 1], got {list(off)!r}")

    def reliability_of(self, modality: str) -> float:
        return float(self.reliability.get(modality, self.default_reliability))

    def offset_of(self, modality: str) -> tuple[float, float]:
        dv, da = self.calibration_offset.get(modality, (0.0, 0.0))
        return float(dv), float(da)


def while_music(params: FusionParams) -> FusionParams:
    """``params`` with the voice's reliability scaled by ``music_voice_factor``."""
    voice = params.reliability_of(VOICE) * params.music_voice_factor
    return replace(params, reliability={**params.reliability, VOICE: voice})


def freshness(age_s: float, params: FusionParams) -> float:
    """``0.5 ** (age / half_life)`` for ``0 ≤ age ≤ max_age``, 0 beyond (negative age → 1)."""
    age = max(0.0, float(age_s))
    if age > params.max_age_s:
        return 0.0
    return 0.5 ** (age / params.half_life_s)


def modality_weight(
    confidence_: float, reliability: float, age_s: float, params: FusionParams
) -> float:
    """Fusion weight ``w = confidence · reliability · freshness(age)``."""
    return float(confidence_) * float(reliability) * freshness(age_s, params)


def quadrant(
    valence: float,
    arousal: float,
    previous: str | None = None,
    margin: float = 0.1,
    neutral_radius: float = 0.2,
) -> str:
    """Quadrant label of ``(valence, arousal)``, sticky around boundaries.

    Without a ``previous`` label (or from ``neutral``) the label follows the signs of
    the coordinates, and ``neutral`` inside the circle of radius ``neutral_radius``.
    With hysteresis ``margin`` m:

    - leaving ``neutral`` needs radius > ``neutral_radius + m``;
      entering it needs radius < ``neutral_radius − m``;
    - from a quadrant, a coordinate changes sign only once it is more than m past
      zero on the other side, so noise around an axis does not flicker the label.
    """
    r = math.hypot(valence, arousal)
    if previous == NEUTRAL:
        if r <= neutral_radius + margin:
            return NEUTRAL
        previous = None
    elif previous is not None and r < max(0.0, neutral_radius - margin):
        return NEUTRAL
    if previous is None or previous not in QUADRANT_LABELS:
        if r < neutral_radius:
            return NEUTRAL
        return QUADRANTS[(valence >= 0.0, arousal >= 0.0)]
    pv, pa = next(k for k, lab in QUADRANTS.items() if lab == previous)
    sv = (valence >= 0.0) if abs(valence) > margin else pv
    sa = (arousal >= 0.0) if abs(arousal) > margin else pa
    return QUADRANTS[(sv, sa)]


@dataclass(frozen=True)
class ModalityContribution:
    """What one modality added to a fused estimate; ``share`` sums to 1 over modalities."""

    valence: float
    arousal: float
    confidence: float
    age_s: float
    weight: float
    share: float


@dataclass(frozen=True)
class MoodEstimate:
    """The fused mood at time ``ts``: a point in [-1, 1]², a confidence in [0, 1]."""

    ts: float
    valence: float
    arousal: float
    confidence: float
    quadrant: str
    contributions: Mapping[str, ModalityContribution] = field(default_factory=dict)


@dataclass
class _ModalityState:
    """Age-weighted running sums for one modality (step 2 of the module docstring)."""

    ts: float
    sum_w: float  # Σ k·c
    sum_v: float  # Σ k·c·v
    sum_a: float  # Σ k·c·a
    sum_1: float  # Σ k
    sum_c: float  # Σ k·c

    @classmethod
    def first(cls, ts: float, v: float, a: float, c: float) -> _ModalityState:
        return cls(ts, c, c * v, c * a, 1.0, c)

    def add(self, ts: float, v: float, a: float, c: float, half_life_s: float) -> None:
        k = 0.5 ** ((ts - self.ts) / half_life_s)
        self.ts = ts
        self.sum_w = k * self.sum_w + c
        self.sum_v = k * self.sum_v + c * v
        self.sum_a = k * self.sum_a + c * a
        self.sum_1 = k * self.sum_1 + 1.0
        self.sum_c = k * self.sum_c + c

    def point(self, evidence_prior: float) -> tuple[float, float, float]:
        """Smoothed (valence, arousal, confidence); the origin when no confidence at all."""
        conf = clip(self.sum_c / (self.sum_1 + evidence_prior), 0.0, 1.0)
        if self.sum_w <= 0.0:
            return 0.0, 0.0, conf
        return clip(self.sum_v / self.sum_w), clip(self.sum_a / self.sum_w), conf


class MoodFuser:
    """Stateful fuser: feed :class:`Observation` s, ask for a :class:`MoodEstimate`.

    Observations older than the newest one already seen for their modality are
    dropped (logged at debug level), so replaying a stream is deterministic.
    ``estimate(now)`` also advances the quadrant hysteresis state.
    """

    def __init__(self, params: FusionParams | None = None) -> None:
        self.params = params if params is not None else FusionParams()
        self._states: dict[str, _ModalityState] = {}
        self._label: str | None = None

    def reset(self) -> None:
        self._states.clear()
        self._label = None

    def observe(self, obs: Observation) -> bool:
        """Add one observation; returns False if it was dropped as out of order."""
        dv, da = self.params.offset_of(obs.modality)
        v, a = clip(obs.valence - dv), clip(obs.arousal - da)
        c = float(obs.confidence)
        state = self._states.get(obs.modality)
        if state is None:
            self._states[obs.modality] = _ModalityState.first(float(obs.ts), v, a, c)
            return True
        if obs.ts < state.ts:
            log.debug("dropping out-of-order %s observation at %s < %s",
                      obs.modality, obs.ts, state.ts)
            return False
        state.add(float(obs.ts), v, a, c, self.params.smoothing_half_life_s)
        return True

    def update(self, obs: Observation) -> MoodEstimate:
        """``observe(obs)`` then ``estimate(obs.ts)``."""
        self.observe(obs)
        return self.estimate(obs.ts)

    def estimate(self, now: float) -> MoodEstimate:
        """The fused mood at ``now`` (see the module docstring for the formulas)."""
        p = self.params
        rows = []
        for m, state in sorted(self._states.items()):
            v, a, c = state.point(p.evidence_prior)
            age = max(0.0, now - state.ts)
            w = modality_weight(c, p.reliability_of(m), age, p)
            rows.append((m, v, a, c, age, freshness(age, p), w))
        total = sum(r[6] for r in rows)
        if total <= 0.0:
            fv = fa = conf = 0.0
        else:
            fv = clip(sum(r[1] * r[6] for r in rows) / total)
            fa = clip(sum(r[2] * r[6] for r in rows) / total)
            miss = math.prod(1.0 - r[3] * r[5] for r in rows)
            spread2 = sum(r[6] * ((r[1] - fv) ** 2 + (r[2] - fa) ** 2) for r in rows) / total
            conf = clip((1.0 - miss) * (1.0 - math.sqrt(spread2) / _SQRT2), 0.0, 1.0)
        label = NEUTRAL
        if total > 0:
            label = quadrant(fv, fa, self._label, p.hysteresis, p.neutral_radius)
        self._label = label
        contributions = {
            m: ModalityContribution(v, a, c, age, w, (w / total) if total > 0 else 0.0)
            for m, v, a, c, age, _fresh, w in rows
            if age <= p.max_age_s
        }
        return MoodEstimate(float(now), fv, fa, conf, label, contributions)
