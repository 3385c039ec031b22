"""Choosing tracks in arousal/valence space: policies, iso-principle paths, feedback.

Policies:

- ``match``: tracks near the current mood (every pick aims at the mood itself);
- ``uplift``: toward ``CIRCUMPLEX["happy"]`` (positive, energetic);
- ``calm``: toward ``CIRCUMPLEX["calm"]`` (positive, low arousal);
- ``target``: toward any point the caller gives.

Every non-``match`` policy follows the music-therapy *iso principle*: the first track
sits at the listener's current mood, and each next one moves at most ``step`` (A/V
units, Euclidean) toward the target, which the path reaches exactly and then holds
(:func:`plan_path`).

Ranking of candidate tracks ``i`` for waypoint ``p`` is vectorised over the whole
catalogue:

    cost_i = |va_i − p| − bias_i

``bias_i`` (A/V units, positive favours the track) is listener feedback on the track
itself plus feedback on its neighbours, spread with a Gaussian kernel:

    bias_i = feedback_weight · tanh(f_i)
             + neighbour_weight · tanh(Σ_{j≠i} f_j · exp(−|va_i − va_j|² / (2 σ²)))

where ``f_j`` sums feedback values on track j (like +1, skip −0.5, dislike −1.5) and
σ = ``feedback_radius``.  Tracks among the last ``repeat_window`` plays, or already
chosen in this batch, are excluded; so are artists among the last ``artist_window``
plays and picks.  When the constraints leave nothing, they are relaxed in that order
(artist first) and the reason says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.labels import CIRCUMPLEX
from edge.music.tracks import CatalogError, CatalogSnapshot, Track
from edge.num import rnd

if TYPE_CHECKING:
    from edge.music.catalog import Catalog

Point = tuple[float, float]


class Policy(str, Enum):
    MATCH = "match"
    UPLIFT = "uplift"
    CALM = "calm"
    TARGET = "target"


#: Where the named non-``match`` policies lead.
POLICY_TARGETS: dict[Policy, Point] = {
    Policy.UPLIFT: CIRCUMPLEX["happy"],
    Policy.CALM: CIRCUMPLEX["calm"],
}


MAX_DISTANCE = 3.0  # more than the A/V square's diagonal (2√2)
MAX_WINDOW = 10_000


@dataclass(frozen=True)
class RecommenderParams:
    """Recommender settings with documented defaults.

    - ``step`` (0.25): largest A/V distance between consecutive waypoints.
    - ``repeat_window`` (50): no track among the last N plays is chosen again.
    - ``artist_window`` (3): no artist among the last N plays/picks is chosen again.
    - ``feedback_weight`` (0.3): A/V distance that saturated feedback on a track itself
      adds (dislikes, skips) to or removes (likes) from its cost.
    - ``neighbour_weight`` (0.1): the same for feedback on nearby tracks.
    - ``feedback_radius`` (0.15): σ of the Gaussian spreading feedback to nearby tracks.
    """

    step: float = 0.25
    repeat_window: int = 50
    artist_window: int = 3
    feedback_weight: float = 0.3
    neighbour_weight: float = 0.1
    feedback_radius: float = 0.15

    def __post_init__(self) -> None:
        # distances and weights are in A/V units: the square's diagonal is 2√2
        if not 0 < self.step <= MAX_DISTANCE:
            raise ValueError(f"RecommenderParams.step must be in (0, {MAX_DISTANCE:g}], got {self.step!r}")
        for name in ("repeat_window", "artist_window"):
            if not 0 <= getattr(self, name) <= MAX_WINDOW:
                raise ValueError(f"RecommenderParams.{name} must be in [0, {MAX_WINDOW}] plays, "
                                 f"got {getattr(self, name)!r}")
        if not 0 < self.feedback_radius <= MAX_DISTANCE:
            raise ValueError(f"RecommenderParams.feedback_radius must be in (0, {MAX_DISTANCE:g}], "
                             f"got {self.feedback_radius!r}")
        for name in ("feedback_weight", "neighbour_weight"):  # negative: a like would push away
            if not 0 <= getattr(self, name) <= MAX_DISTANCE:
                raise ValueError(f"RecommenderParams.{name} must be in [0, {MAX_DISTANCE:g}], "
                                 f"got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Recommendation:
    """A chosen track and a short machine-readable reason (policy, step, distance, …)."""

    track: Track
    reason: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape of a recommendation (``…/tracks`` and ``edge-cli recommend``)."""
        t = self.track
        return {"uri": t.uri, "title": t.title, "artist": t.artist, "valence": rnd(t.valence),
                "arousal": rnd(t.arousal), "reason": dict(self.reason)}


def _point(p: Sequence[float], name: str) -> Point:
    if len(p) != 2:
        raise ValueError(f"{name} must be (valence, arousal)")
    v, a = float(p[0]), float(p[1])
    if not (-1.0 <= v <= 1.0 and -1.0 <= a <= 1.0):
        raise ValueError(f"{name} must lie in [-1, 1]², got ({v}, {a})")
    return v, a


def plan_path(start: Sequence[float], target: Sequence[float], step: float) -> list[Point]:
    """Waypoints from ``start`` to ``target``, each at most ``step`` from the last.

    The first waypoint is ``start``, the last is exactly ``target``; there are
    ``1 + ceil(|target − start| / step)`` of them, evenly spaced on the segment.
    """
    if not step > 0:
        raise ValueError("step must be > 0")
    (sv, sa), (tv, ta) = _point(start, "start"), _point(target, "target")
    dist = math.hypot(tv - sv, ta - sa)
    k = math.ceil(dist / step - 1e-12)
    if k <= 0:
        return [(tv, ta)]
    return [(sv + (tv - sv) * i / k, sa + (ta - sa) * i / k) for i in range(k)] + [(tv, ta)]


def resolve_target(policy: Policy | str, mood: Point, target: Sequence[float] | None) -> Point:
    """The point a policy leads to: the mood for ``match``, a table entry, or ``target``."""
    policy = Policy(policy)
    if policy is Policy.TARGET:
        if target is None:
            raise ValueError("policy 'target' needs a target (valence, arousal)")
        return _point(target, "target")
    if target is not None:
        raise ValueError(f"a target point only applies to policy 'target', not {policy.value!r}")
    return mood if policy is Policy.MATCH else POLICY_TARGETS[policy]


def feedback_bias(snapshot: CatalogSnapshot, params: RecommenderParams) -> np.ndarray:
    """Per-track feedback bias in A/V units (formula in the module docstring)."""
    f = snapshot.feedback
    nz = np.flatnonzero(f)
    if nz.size == 0:
        return np.zeros(len(snapshot), dtype=np.float64)
    x, y = snapshot.va, snapshot.va[nz]
    d2 = np.sum(x * x, axis=1)[:, None] + np.sum(y * y, axis=1)[None, :] - 2.0 * (x @ y.T)
    kernel = np.exp(-np.maximum(d2, 0.0) / (2.0 * params.feedback_radius**2))
    neighbours = kernel @ f[nz] - f  # the track's own kernel entry is exp(0) = 1
    return params.feedback_weight * np.tanh(f) + params.neighbour_weight * np.tanh(neighbours)


def recommend(
    snapshot: CatalogSnapshot,
    mood: Sequence[float],
    policy: Policy | str = Policy.MATCH,
    n: int = 5,
    *,
    target: Sequence[float] | None = None,
    recent: Sequence[str] = (),
    params: RecommenderParams | None = None,
    bias: np.ndarray | None = None,
) -> list[Recommendation]:
    """Choose up to ``n`` tracks for ``mood`` under ``policy`` (pure; no I/O).

    ``recent`` lists played URIs newest first.  ``bias`` defaults to :func:`feedback_bias` of the snapshot.
    """
    params = params if params is not None else RecommenderParams()
    if len(snapshot) == 0:
        raise CatalogError("the catalogue is empty; import tracks first (edge-cli catalog import)")
    if n < 1:
        raise ValueError("n must be >= 1")
    mood = _point(mood, "mood")
    policy = Policy(policy)
    goal = resolve_target(policy, mood, target)
    path = plan_path(mood, goal, params.step)
    bias = feedback_bias(snapshot, params) if bias is None else bias

    recent_idx = [snapshot.index[u] for u in recent[: params.repeat_window] if u in snapshot.index]
    v, a = snapshot.valence, snapshot.arousal
    base = -np.asarray(bias, dtype=np.float64)  # cost offsets; +inf marks a blocked track
    base[recent_idx] = np.inf
    artist_history = [int(snapshot.artist_ids[i]) for i in recent_idx]  # newest first
    artist_mask = np.zeros(int(snapshot.artist_ids.max()) + 1, dtype=bool)
    chosen: list[int] = []
    picks: list[Recommendation] = []
    dist = np.empty(0)
    last_waypoint = None
    for k in range(min(n, len(snapshot))):
        wv, wa = path[min(k, len(path) - 1)]
        if (wv, wa) != last_waypoint:
            dv, da = v - wv, a - wa
            dist = np.sqrt(dv * dv + da * da)
            last_waypoint = (wv, wa)
        cost = dist + base
        artist_mask[:] = False
        artist_mask[artist_history[: params.artist_window]] = True
        i = int(np.argmin(np.where(artist_mask[snapshot.artist_ids], np.inf, cost)))
        relaxed: list[str] = []
        if artist_mask[snapshot.artist_ids[i]] or math.isinf(base[i]):
            relaxed.append("artist")
            i = int(np.argmin(cost))
            if math.isinf(base[i]):
                relaxed.append("repeat")
                cost = dist - bias
                cost[chosen] = np.inf
                i = int(np.argmin(cost))
        base[i] = np.inf
        chosen.append(i)
        artist_history.insert(0, int(snapshot.artist_ids[i]))
        t = snapshot.tracks[i]
        reason: dict[str, Any] = {
            "policy": policy.value,
            "step": min(k, len(path) - 1),
            "steps": len(path) - 1,
            "waypoint": [rnd(wv), rnd(wa)],
            "distance": rnd(dist[i]),
            "mood_distance": rnd(math.hypot(t.valence - mood[0], t.arousal - mood[1])),
            "target": [rnd(goal[0]), rnd(goal[1])],
            "feedback": rnd(bias[i]),
        }
        if relaxed:
            reason["relaxed"] = relaxed
        picks.append(Recommendation(t, reason))
    return picks


class Recommender:
    """The library API the daemon uses: a :class:`Catalog` plus ranking state.

    Reads recent plays from the catalogue on each call; caches the feedback bias per
    catalogue snapshot (a new import or feedback invalidates both).
    """

    def __init__(self, catalog: Catalog, params: RecommenderParams | None = None) -> None:
        self.catalog = catalog
        self.params = params if params is not None else RecommenderParams()
        self._bias_for: CatalogSnapshot | None = None
        self._bias: np.ndarray | None = None

    def _snapshot_and_bias(self) -> tuple[CatalogSnapshot, np.ndarray]:
        snap = self.catalog.snapshot()
        if self._bias_for is not snap or self._bias is None:
            self._bias = feedback_bias(snap, self.params)
            self._bias_for = snap
        return snap, self._bias

    def recommend(
        self,
        mood: Sequence[float],
        policy: Policy | str = Policy.MATCH,
        n: int = 5,
        *,
        target: Sequence[float] | None = None,
        only: Callable[[Track], bool] | None = None,
    ) -> list[Recommendation]:
        """See :func:`recommend`; recent plays come from the catalogue. With ``only``, the
        choice is among the tracks it accepts (a playlist: those a player can open)."""
        snap, bias = self._snapshot_and_bias()
        if only is not None:
            keep = np.array([bool(only(t)) for t in snap.tracks], dtype=bool)
            if len(snap) and not keep.any():
                return []  # nothing it accepts (an empty catalogue is still an error)
            snap, bias = snap.subset(keep), bias[keep]
        recent = self.catalog.recent_plays(self.params.repeat_window)
        return recommend(snap, mood, policy, n, target=target, recent=recent,
                         params=self.params, bias=bias)

    def played(self, uri: str, ts: float | None = None) -> None:
        """Record that a track was played (feeds the no-repeat and artist windows)."""
        self.catalog.record_play(uri, ts)

    def feedback(self, uri: str, kind: str, ts: float | None = None) -> None:
        """Record ``like``/``skip``/``dislike``; future rankings of it and its neighbours change."""
        self.catalog.record_feedback(uri, kind, ts)
