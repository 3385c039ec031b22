"""The middle stages: speech windows and frames → recognisers → fusion.

Each stage is a :class:`~edge.daemon.base.Worker` reading a bounded queue; results go on
to the next queue or, from fusion, to a :class:`~edge.daemon.base.Sink`.  :data:`END`
passes through: fusion publishes a final mood once every input has ended.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edge.audio.features import FeatureParams
from edge.audio.music_heard import KINDS, MusicHeard, MusicHeardParams, window_kind
from edge.audio.vad import VadParams
from edge.config import MoodConfig
from edge.daemon.base import END, DropQueue, Sink, StageStats, Worker
from edge.daemon.clock import Clock
from edge.mood.fusion import (
    FACE,
    VOICE,
    FusionParams,
    MoodEstimate,
    MoodFuser,
    Observation,
    while_music,
)
from edge.publish.payloads import FrameFaces, mood_payload

log = logging.getLogger(__name__)


class FaceResultLike(Protocol):
    label: str | None  # None: no usable face in the frame (no guess)
    probabilities: Mapping[str, float]
    valence: float | None
    arousal: float | None
    confidence: float
    # For ``…/mood`` (read with getattr: a recogniser without them gives null there):
    faces: int  # faces detected in the frame
    classified: int  # of those, the faces given a guess
    reason: str | None  # why label is None ("no face", "face too small (…)", ...)


class FaceRecogniser(Protocol):
    """What the camera path needs from a face model (edge.vision provides one)."""

    def classify_frame(self, image: np.ndarray) -> FaceResultLike: ...


class SpeechLike(Protocol):
    params: FeatureParams
    vad: VadParams  # which windows count as speech (the speech stage may replace it)

    def classify_window(self, feats_window: np.ndarray) -> Any: ...


@dataclass(frozen=True)
class Labelled:
    """An observation for fusion and the label it came from (for the mood's ``sources``);
    from the camera also what its frame showed (``obs`` None: a frame with no guess) and
    the frame's timestamp ``ts``."""

    obs: Observation | None
    label: str | None
    faces: FrameFaces | None = None
    ts: float | None = None


def frame_faces(r: FaceResultLike) -> FrameFaces:
    """The faces of a frame as ``…/mood`` reports them."""
    def count(name: str) -> int | None:
        n = getattr(r, name, None)
        return None if n is None else int(n)

    reason = getattr(r, "reason", None) if r.label is None else None
    return FrameFaces(count("faces"), count("classified"), None if reason is None else str(reason))


class RecogniserWorker(Worker):
    """Takes (input, ts) items, classifies them, offers Labelled observations to fusion."""

    def __init__(self, name: str, stop: threading.Event, inq: DropQueue, out: DropQueue,
                 stats: StageStats, paused: threading.Event, clock: Clock) -> None:
        super().__init__(name, stop)
        self.inq, self.out, self.stats, self.paused, self.clock = inq, out, stats, paused, clock

    def classify(self, x: np.ndarray, ts: float) -> Labelled | None:
        raise NotImplementedError

    def while_paused(self) -> None:
        """Called on this worker's thread about every 0.5 s while its input is paused."""

    def step(self) -> None:
        item = self.inq.get(timeout=0.5)
        self.run_pending()  # settings handed over while waiting apply to this item
        if item is END:
            self.out.push(END, True, self.stop_event)
            return
        if self.paused.is_set():
            self.while_paused()
            if item is not None:
                self.stats.count("discarded")
            return
        if item is None:
            return
        t = time.perf_counter()
        try:
            result = self.classify(*item)
        except (ValueError, TypeError, ArithmeticError) as exc:
            self.stats.count("errors")
            log.warning("%s: bad recogniser output, skipped: %s", self.name, exc)
            return
        self.stats.processed(time.perf_counter() - t)
        if result is None or result.obs is None:
            self.stats.count("no_result")
        if result is not None:  # a frame with no guess still says how many faces it showed
            self.out.push(result, self.clock.wait_for_room, self.stop_event)


class SpeechWorker(RecogniserWorker):
    """Speech windows → voice observations; with ``music`` (enabled, and a model that can
    tell sound from speech) also whether the microphone hears music
    (:mod:`edge.audio.music_heard`), told to ``on_music(heard)`` when it changes."""

    def __init__(self, recogniser: SpeechLike, music: MusicHeardParams | None = None,
                 on_music: Callable[[bool], None] | None = None, **kw: Any) -> None:
        super().__init__("speech", **kw)
        self.rec = recogniser
        usable = music is not None and music.enabled and getattr(recogniser, "hears_music", False)
        self.music = MusicHeard(music, recogniser.params.hop_s) if usable else None
        self.on_music = on_music or (lambda heard: None)

    def while_paused(self) -> None:
        """A paused microphone hears nothing: music heard before the pause is forgotten,
        and the gate's stream starts again (its hangover ends)."""
        reset = getattr(self.rec, "reset_stream", None)
        if reset is not None:
            reset()
        if self.music is not None and self.music.on:
            self.music.reset()
            self.on_music(False)

    def set_vad(self, vad: VadParams) -> None:
        """Gate windows with ``vad`` from the next one on (any thread)."""
        self.call_soon(lambda: setattr(self.rec, "vad", vad))

    def classify(self, window: np.ndarray, ts: float) -> Labelled | None:
        r = self.rec.classify_window(window)
        heard = getattr(r, "heard", "")
        if self.music is not None and heard in KINDS:
            kind = window_kind(heard, getattr(r, "level_db", None), self.rec.vad.threshold_db,
                               self.music.params.loud_db)
            if self.music.update(kind):
                self.on_music(self.music.on)
        if r.label is None:  # not speech (silence, steady noise, music)
            return None
        return Labelled(Observation.from_probabilities(VOICE, ts, r.probabilities), r.label)


class FaceWorker(RecogniserWorker):
    def __init__(self, recogniser: FaceRecogniser, **kw: Any) -> None:
        super().__init__("face", **kw)
        self.rec = recogniser

    def classify(self, frame: np.ndarray, ts: float) -> Labelled | None:
        r = self.rec.classify_frame(frame)
        faces = frame_faces(r)
        if r.label is None:  # no usable face in the frame: no guess
            return Labelled(None, None, faces, ts)
        if r.probabilities:
            return Labelled(Observation.from_probabilities(FACE, ts, r.probabilities), r.label, faces, ts)
        return Labelled(Observation(FACE, ts, float(r.valence), float(r.arousal),
                                    float(r.confidence)), r.label, faces, ts)


class MoodWorker(Worker):
    """Fuses observations; every ``interval_s`` estimates the mood, publishes it when it
    changed (quadrant, emotion, the number of faces, or valence/arousal/confidence by
    ``min_change``; or every ``refresh_s``), and hands every estimate to ``on_estimate``.
    The faces it reports are the latest frame's while that frame is younger than fusion's
    ``max_age_s`` and the camera is not paused (:meth:`forget_faces`).

    With ``on_end``, once :data:`END` came from each of its ``inputs``, it publishes a
    final mood of everything observed, then calls ``on_end()`` (``drained`` is set)."""

    def __init__(self, stop: threading.Event, params: FusionParams, cfg: MoodConfig,
                 inq: DropQueue, sink: Sink, stats: StageStats,
                 on_estimate: Callable[[MoodEstimate], None], clock: Clock, inputs: int = 0,
                 on_end: Callable[[], None] | None = None) -> None:
        super().__init__("fusion", stop)
        self.fuser = MoodFuser(params)
        self.base_params, self.music = params, False
        self.cfg, self.inq, self.sink, self.stats = cfg, inq, sink, stats
        self.on_estimate, self.clock, self.on_end = on_estimate, clock, on_end
        self.open_inputs = inputs
        self.labels: dict[str, str | None] = {}
        self.faces: FrameFaces | None = None  # the latest camera frame's
        self.faces_ts: float | None = None  # its timestamp (None: no age known)
        self.latest_ts: float | None = None
        self.next_tick = time.monotonic() + cfg.interval_s  # a first tick due at once raced the first items
        self.last: dict[str, Any] | None = None
        self.last_time = 0.0
        self.drained = threading.Event()

    def set_params(self, params: FusionParams) -> None:
        """Fuse with ``params`` from the next observation on (any thread).  The smoothed
        history is kept: new offsets apply to new observations, new reliabilities at once."""
        def apply() -> None:
            self.base_params = params
            self.fuser.params = while_music(params) if self.music else params

        self.call_soon(apply)

    def set_music(self, playing: bool) -> None:
        """Music is (not) playing in the room: the voice weighs less (any thread)."""
        def apply() -> None:
            self.music = playing
            self.fuser.params = while_music(self.base_params) if playing else self.base_params

        self.call_soon(apply)

    def forget_faces(self) -> None:
        """The camera was paused: its last frame's faces are no longer reported (any thread)."""
        self.call_soon(lambda: setattr(self, "faces", None))

    def setup(self) -> None:
        if self.open_inputs == 0:
            self._end()

    def step(self) -> None:
        item = self.inq.get(timeout=max(0.0, min(0.5, self.next_tick - time.monotonic())))
        self.run_pending()
        if item is END:
            self.open_inputs -= 1
            if self.open_inputs == 0:
                self._end()
        elif item is not None:
            if item.faces is not None:
                self.faces, self.faces_ts = item.faces, item.ts
            if item.obs is not None:
                t = time.perf_counter()
                self.fuser.observe(item.obs)
                self.labels[item.obs.modality] = item.label
                self.latest_ts = max(self.latest_ts or item.obs.ts, item.obs.ts)
                self.stats.processed(time.perf_counter() - t)
        if time.monotonic() >= self.next_tick:
            self.next_tick = time.monotonic() + self.cfg.interval_s
            if self.latest_ts is not None:
                self.tick()

    def _end(self) -> None:
        if self.on_end is None:
            return
        if self.latest_ts is not None:
            self.tick(force=True)
        self.on_end()
        self.drained.set()

    def tick(self, force: bool = False) -> None:
        now = self.clock.now(self.latest_ts)
        est = self.fuser.estimate(now)
        if self.faces_ts is not None and now - self.faces_ts > self.base_params.max_age_s:
            self.faces = None  # the camera stopped delivering frames
        payload = mood_payload(est, self.labels, time.time(), self.faces)
        if force or self._changed(payload):
            self.sink.publish("mood", payload)
            self.stats.count("published")
            self.last, self.last_time = payload, time.monotonic()
        self.on_estimate(est)

    def _changed(self, p: dict[str, Any]) -> bool:
        last = self.last
        if last is None or time.monotonic() - self.last_time >= self.cfg.refresh_s:
            return True
        if (p["quadrant"], p["emotion"], p["faces"]) != (last["quadrant"], last["emotion"], last["faces"]):
            return True
        return any(abs(p[k] - last[k]) >= self.cfg.min_change
                   for k in ("valence", "arousal", "confidence"))
