"""The recommender stage: owns the catalogue (SQLite lives on this thread), chooses and
publishes ``tracks``, and runs the commands the command table gives this thread."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.config import TracksConfig
from edge.daemon.base import DropQueue, Sink, SourceStatus, StageStats, Worker
from edge.daemon.state import State
from edge.mood.fusion import MoodEstimate
from edge.music.catalog import Catalog, CatalogError
from edge.music.recommend import Policy, Recommender, RecommenderParams
from edge.publish.payloads import tracks_payload

log = logging.getLogger(__name__)


class TracksWorker(Worker):
    """Publishes ``tracks`` for the first mood, then when the policy or target changes,
    on ``recommend``, or when the mood (with confidence >= ``min_confidence``) moved
    ``min_move`` from the mood the last list was chosen for, but never more than once
    per ``min_interval_s`` (a request inside the interval waits).  Policy and target
    are read from the daemon's :class:`~edge.daemon.state.State`.

    After :meth:`end_of_input` it publishes what is pending (when the interval allows
    within a second), then sets ``drained``.
    """

    def __init__(self, stop: threading.Event, cfg: TracksConfig, params: RecommenderParams,
                 catalogue: Path, sink: Sink, stats: StageStats, status: SourceStatus,
                 state: State) -> None:
        super().__init__("tracks", stop)
        self.cfg, self.params, self.catalogue_path = cfg, params, catalogue
        self.sink, self.stats, self.status, self.state = sink, stats, status, state
        self.jobs = DropQueue(32, stats)  # commands handed over by the dispatcher
        self.wake = threading.Event()
        self._mood: MoodEstimate | None = None
        self.mood: MoodEstimate | None = None
        self.pending: str | None = None
        self.last_time: float | None = None
        self.last_point: tuple[float, float] | None = None
        self.recommender: Recommender | None = None
        self._ending = False
        self.drained = threading.Event()
        self.now: Callable[[], float] = time.monotonic  # the interval's clock (tests set their own)

    # called from other threads
    def offer_mood(self, est: MoodEstimate) -> None:
        self._mood = est
        self.wake.set()

    def submit(self, job: Callable[[], None]) -> bool:
        """Run ``job()`` on this thread before the next list (False: the queue is full)."""
        ok = self.jobs.offer(job)
        self.wake.set()
        return ok

    def end_of_input(self) -> None:
        self._ending = True
        self.wake.set()

    # on this thread
    def setup(self) -> None:
        try:
            catalog = Catalog(self.catalogue_path)
            n = catalog.ensure_tracks()
        except (CatalogError, OSError, Exception) as exc:  # noqa: BLE001 - sqlite3 errors too
            self.status.set("catalogue", "absent", f"{self.catalogue_path}: {exc}")
            self.finished = True
            return
        self.recommender = Recommender(catalog, self.params)
        self.status.set("catalogue", "running", f"{n} tracks in {self.catalogue_path}")

    def teardown(self) -> None:
        if self.recommender is not None:
            self.recommender.catalog.close()

    def step(self) -> None:
        self.wake.wait(0.5)
        self.wake.clear()
        ending = self._ending  # read first: a mood offered before the end is seen below
        while (job := self.jobs.get(timeout=0)) is not None:
            job()
        est, self._mood = self._mood, None
        if est is not None:
            self.mood = est
            point = (est.valence, est.arousal)
            if self.last_point is None:
                self.pending = self.pending or "first mood"
            elif (est.confidence >= self.cfg.min_confidence
                  and math.dist(point, self.last_point) >= self.cfg.min_move):
                self.pending = self.pending or "mood moved"
        self.maybe_publish()
        if ending and not (self.pending is not None and self.wait_s() < 1.0):
            self.drained.set()

    def wait_s(self) -> float:
        if self.last_time is None:
            return 0.0
        return max(0.0, self.cfg.min_interval_s - (self.now() - self.last_time))

    def request(self, reason: str) -> dict[str, Any]:
        """Publish a new list as soon as the interval allows."""
        self.pending = reason
        return {"tracks_in_s": round(self.wait_s(), 1)}

    def set_policy(self, policy: Policy, target: tuple[float, float] | None) -> dict[str, Any]:
        """``set_policy``/``set_target``: ValueError when policy target has no target."""
        if policy is Policy.TARGET and target is None:
            target = self.state.target
            if target is None:
                raise ValueError("policy 'target' needs a target: send "
                                 '{"cmd": "set_target", "valence": …, "arousal": …}')
        elif policy is not Policy.TARGET:
            target = None
        changed = self.state.set_policy(policy, target)
        if changed:
            self.pending = "policy changed"
        return {"policy": policy.value, "target": list(target) if target else None,
                "tracks_in_s": round(self.wait_s(), 1) if changed else None}

    def maybe_publish(self) -> None:
        if self.pending is None or self.wait_s() > 0:
            return
        reason, self.pending = self.pending, None
        est = self.mood
        point = (est.valence, est.arousal) if est is not None else (0.0, 0.0)
        t = time.perf_counter()
        assert self.recommender is not None
        policy, target = self.state.policy, self.state.target
        try:
            recs = self.recommender.recommend(point, policy, self.cfg.count, target=target)
        except (CatalogError, ValueError) as exc:
            self.stats.count("errors")
            log.error("tracks: cannot recommend: %s", exc)
            return
        self.stats.processed(time.perf_counter() - t)
        self.sink.publish("tracks", tracks_payload(recs, policy, target, reason, est, time.time()))
        self.stats.count("published")
        self.last_time, self.last_point = self.now(), point
