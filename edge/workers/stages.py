"""The pipeline stages: audio → speech windows, camera → faces, fusion, recommender.

Each stage is a :class:`~edge.workers.base.Worker` reading a bounded queue.  Live
sources never block on a slow stage: a full queue drops the item and counts it.  File
sources run with ``fast`` wait for room instead (there is no real time to keep up with).
Stages know nothing of MQTT: results go to a :class:`~edge.workers.base.Sink`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge.audio.features import FeatureParams, StreamingMFCC
from edge.audio.sources import AudioFileError
from edge.audio.vad import VadParams
from edge.config import AudioConfig, CameraConfig, MoodConfig, TracksConfig
from edge.mood.fusion import FACE, VOICE, FusionParams, MoodEstimate, MoodFuser, Observation
from edge.music.catalog import Catalog, CatalogError
from edge.music.recommend import Policy, Recommender, RecommenderParams
from edge.publish.commands import Command
from edge.workers.base import DropQueue, Sink, SourceStatus, StageStats, Worker, backoff
from edge.workers.sources import (
    Chunk,
    Pacer,
    SourceError,
    camera_frames,
    dir_frames,
    file_chunks,
    microphone_chunks,
    reinit_portaudio,
    video_frames,
)

log = logging.getLogger(__name__)

Clock = Callable[[float], float]  # media time (s) → observation timestamp


class FaceResultLike(Protocol):
    label: str | None  # None: no face in the frame
    probabilities: Mapping[str, float]
    valence: float | None
    arousal: float | None
    confidence: float


class FaceRecogniser(Protocol):
    """What the camera path needs from a face model (edge.vision provides one)."""

    def classify_frame(self, image: np.ndarray) -> FaceResultLike: ...


class SpeechLike(Protocol):
    params: FeatureParams
    vad: VadParams  # which windows count as speech (the speech stage may replace it)

    def classify_window(self, feats_window: np.ndarray) -> Any: ...


@dataclass(frozen=True)
class Labelled:
    """An observation for fusion and the label it came from (for the mood's ``sources``)."""

    obs: Observation
    label: str | None


def _round(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)


# -- sources --------------------------------------------------------------------------


class SourceWorker(Worker):
    """Opens a source, reads it, retries with backoff when it fails or stalls.

    Subclasses give ``open()`` (an iterator of items) and ``handle(item)``.
    """

    modality = "source"

    def __init__(self, stop: threading.Event, status: SourceStatus, paused: threading.Event,
                 stats: StageStats, retry: tuple[float, float], stall_s: float,
                 files: bool, loop: bool) -> None:
        super().__init__(self.modality, stop)
        self.status, self.paused, self.stats = status, paused, stats
        self.retry, self.stall_s = retry, stall_s
        self.files, self.loop = files, loop
        self._delays = backoff(*retry)
        self.retries = 0
        self.running = False
        self.last_item = time.monotonic()

    def open(self) -> Iterator[Any]:
        raise NotImplementedError

    def handle(self, item: Any) -> None:
        raise NotImplementedError

    def on_retry(self) -> None:
        """Called before a retry (e.g. to rescan devices)."""

    def should_stop(self) -> bool:
        return (self.stop_event.is_set() or self.paused.is_set()
                or (not self.files and time.monotonic() - self.last_item > self.stall_s))

    def step(self) -> None:
        if self.paused.is_set():
            self.status.set(self.modality, "paused", "privacy: paused by command")
            self.stop_event.wait(0.2)
            return
        if self.retries == 0:
            self.status.set(self.modality, "starting")
        self.last_item = time.monotonic()
        self.running = False
        try:
            for item in self.open():
                self.beat()
                self.last_item = time.monotonic()
                if not self.running:
                    self.running, self.retries = True, 0
                    self._delays = backoff(*self.retry)
                    self.status.set(self.modality, "running", self.describe())
                self.handle(item)
                if self.should_stop():
                    break
        except (SourceError, AudioFileError, OSError) as exc:
            self._wait_retry(str(exc))
            return
        if self.stop_event.is_set() or self.paused.is_set():
            return
        if self.files:
            self.end_of_input()
            if not self.loop:
                self.status.set(self.modality, "finished", "end of input files")
                self.finished = True
            return
        self._wait_retry(f"no data (stream ended, or quiet for {self.stall_s:g} s; unplugged?)")

    def describe(self) -> str:
        return ""

    def end_of_input(self) -> None:
        """The files ended (before a replay with ``loop``)."""

    def _wait_retry(self, detail: str) -> None:
        self.retries += 1
        self.stats.count("errors")
        delay = next(self._delays)
        self.status.set(self.modality, "retrying", f"{detail}; retry in {delay:g} s",
                        self.retries)
        end = time.monotonic() + delay
        while not self.stop_event.is_set() and time.monotonic() < end:
            self.beat()
            self.stop_event.wait(min(0.5, max(0.0, end - time.monotonic())))
        self.on_retry()


class AudioWorker(SourceWorker):
    """Microphone or files → streaming MFCC → model windows (every ``hop_frames``)."""

    modality = "audio"

    def __init__(self, params: FeatureParams, cfg: AudioConfig, files: Sequence[Path],
                 fast: bool, out: DropQueue, clock: Clock, **kw: Any) -> None:
        super().__init__(files=bool(files), **kw)
        self.p, self.cfg, self.file_list, self.fast = params, cfg, list(files), fast
        self.out, self.clock = out, clock
        self.media_s = 0.0
        self._reset()

    def _reset(self) -> None:
        self.mfcc = StreamingMFCC(self.p)
        self.buf = np.zeros((0, self.p.n_features), np.float32)
        self.recent = self.buf
        self.emitted = 0

    def describe(self) -> str:
        return (f"{len(self.file_list)} file(s)" if self.files
                else f"microphone {self.cfg.device or '(default)'}")

    def open(self) -> Iterator[Chunk]:
        self._reset()
        if self.files:
            return file_chunks(self.file_list, self.p.sample_rate, self.cfg.block_s, self.loop,
                               Pacer(not self.fast, self.stop_event))
        return microphone_chunks(self.cfg.device, self.p.sample_rate, self.cfg.block_s,
                                 self.should_stop)

    def on_retry(self) -> None:
        if not self.files:
            reinit_portaudio()

    def handle(self, chunk: Chunk) -> None:
        t = time.perf_counter()
        self.media_s += len(chunk.samples) / self.p.sample_rate
        self._add(self.mfcc.push(chunk.samples))
        if chunk.end_of_file:
            self._add(self.mfcc.flush())
            self._end_of_utterance()
        self.stats.processed(time.perf_counter() - t)

    def _add(self, frames: np.ndarray) -> None:
        if frames.shape[0] == 0:
            return
        w, h = self.p.window_frames, self.p.hop_frames
        self.buf = np.concatenate([self.buf, frames])
        self.recent = np.concatenate([self.recent, frames])[-w:]
        while self.buf.shape[0] >= w:
            self._emit(self.buf[:w].copy())
            self.buf = self.buf[h:]

    def _end_of_utterance(self) -> None:
        """Like :func:`edge.audio.features.windows`: tile a short clip, end-align the tail."""
        w, h = self.p.window_frames, self.p.hop_frames
        if self.emitted == 0 and self.recent.shape[0]:
            self._emit(np.resize(self.recent, (w, self.p.n_features)))
        elif self.buf.shape[0] > w - h:
            self._emit(self.recent.copy())
        self._reset()

    def _emit(self, window: np.ndarray) -> None:
        self.emitted += 1
        self.stats.count("windows")
        self.out.push((window, self.clock(self.media_s)), self.files and self.fast,
                      self.stop_event)


class CameraWorker(SourceWorker):
    """Camera, image folder or video file → frames at ``fps``."""

    modality = "camera"

    def __init__(self, cfg: CameraConfig, image_dir: Path | None, video_file: Path | None,
                 fast: bool, out: DropQueue, clock: Clock, **kw: Any) -> None:
        super().__init__(files=bool(image_dir or video_file), **kw)
        self.cfg, self.image_dir, self.video_file, self.fast = cfg, image_dir, video_file, fast
        self.out, self.clock = out, clock
        self.frames = 0

    def describe(self) -> str:
        if self.image_dir:
            return f"images in {self.image_dir}"
        return f"video {self.video_file}" if self.video_file else f"camera ({self.cfg.backend})"

    def open(self) -> Iterator[np.ndarray]:
        pacer = Pacer(not self.fast, self.stop_event)
        if self.image_dir is not None:
            return dir_frames(self.image_dir, self.cfg.fps, self.loop, pacer, self._bad_image)
        if self.video_file is not None:
            return video_frames(self.video_file, self.cfg.fps, self.loop, pacer)
        return camera_frames(self.cfg, self.stop_event)

    def _bad_image(self, message: str) -> None:
        self.stats.count("errors")
        log.warning("camera: skipping %s", message)

    def handle(self, frame: np.ndarray) -> None:
        self.frames += 1
        self.stats.processed(0.0)
        self.out.push((frame, self.clock(self.frames / self.cfg.fps)), self.files and self.fast,
                      self.stop_event)


# -- recognisers ----------------------------------------------------------------------


class RecogniserWorker(Worker):
    """Takes (input, ts) items, classifies them, offers Labelled observations to fusion."""

    def __init__(self, name: str, stop: threading.Event, inq: DropQueue, out: DropQueue,
                 stats: StageStats, paused: threading.Event, fast: bool) -> None:
        super().__init__(name, stop)
        self.inq, self.out, self.stats, self.paused, self.fast = inq, out, stats, paused, fast

    def classify(self, x: np.ndarray, ts: float) -> Labelled | None:
        raise NotImplementedError

    def step(self) -> None:
        item = self.inq.get(timeout=0.5)
        self.run_pending()  # settings handed over while waiting apply to this item
        if item is None:
            return
        if self.paused.is_set():
            self.stats.count("discarded")
            return
        t = time.perf_counter()
        try:
            result = self.classify(*item)
        except (ValueError, TypeError, ArithmeticError) as exc:
            self.stats.count("errors")
            log.warning("%s: bad recogniser output, skipped: %s", self.name, exc)
            return
        self.stats.processed(time.perf_counter() - t)
        if result is None:
            self.stats.count("no_result")
            return
        self.out.push(result, self.fast, self.stop_event)


class SpeechWorker(RecogniserWorker):
    def __init__(self, recogniser: SpeechLike, **kw: Any) -> None:
        super().__init__("speech", **kw)
        self.rec = recogniser

    def set_vad(self, vad: VadParams) -> None:
        """Gate windows with ``vad`` from the next one on (any thread)."""
        self.call_soon(lambda: setattr(self.rec, "vad", vad))

    def classify(self, window: np.ndarray, ts: float) -> Labelled | None:
        r = self.rec.classify_window(window)
        if r.label is None:  # not speech (silence, steady noise)
            return None
        return Labelled(Observation.from_probabilities(VOICE, ts, r.probabilities), r.label)


class FaceWorker(RecogniserWorker):
    def __init__(self, recogniser: FaceRecogniser, **kw: Any) -> None:
        super().__init__("face", **kw)
        self.rec = recogniser

    def classify(self, frame: np.ndarray, ts: float) -> Labelled | None:
        r = self.rec.classify_frame(frame)
        if r.label is None:  # no face in the frame
            return None
        if r.probabilities:
            return Labelled(Observation.from_probabilities(FACE, ts, r.probabilities), r.label)
        return Labelled(Observation(FACE, ts, float(r.valence), float(r.arousal),
                                    float(r.confidence)), r.label)


# -- fusion ---------------------------------------------------------------------------


def mood_payload(est: MoodEstimate, labels: Mapping[str, str | None],
                 wall_ts: float) -> dict[str, Any]:
    """The ``…/mood`` JSON: the fused point and, per modality, label, confidence, age."""
    sources = {
        m: {"label": labels.get(m), "confidence": _round(c.confidence),
            "age_s": _round(c.age_s, 2), "valence": _round(c.valence),
            "arousal": _round(c.arousal), "share": _round(c.share)}
        for m, c in sorted(est.contributions.items())
    }
    live = [(c.share, m) for m, c in est.contributions.items() if c.weight > 0]
    emotion = labels.get(max(live)[1]) if live else None
    return {"ts": round(wall_ts, 3), "valence": _round(est.valence),
            "arousal": _round(est.arousal), "confidence": _round(est.confidence),
            "quadrant": est.quadrant, "emotion": emotion, "sources": sources}


class MoodWorker(Worker):
    """Fuses observations; every ``interval_s`` estimates the mood, publishes it when it
    changed (or every ``refresh_s``), and hands every estimate to ``on_estimate``."""

    def __init__(self, stop: threading.Event, params: FusionParams, cfg: MoodConfig,
                 inq: DropQueue, sink: Sink, stats: StageStats,
                 on_estimate: Callable[[MoodEstimate], None], fast: bool) -> None:
        super().__init__("fusion", stop)
        self.fuser = MoodFuser(params)
        self.cfg, self.inq, self.sink, self.stats = cfg, inq, sink, stats
        self.on_estimate, self.fast = on_estimate, fast
        self.labels: dict[str, str | None] = {}
        self.latest_ts: float | None = None
        self.next_tick = time.monotonic()
        self.last: dict[str, Any] | None = None
        self.last_time = 0.0
        self.flush_request = threading.Event()
        self.flushed = threading.Event()

    def set_params(self, params: FusionParams) -> None:
        """Fuse with ``params`` from the next observation on (any thread).  The smoothed
        history is kept: new offsets apply to new observations, new reliabilities at once."""
        self.call_soon(lambda: setattr(self.fuser, "params", params))

    def now(self) -> float:
        if self.fast and self.latest_ts is not None:
            return self.latest_ts
        return time.monotonic()

    def step(self) -> None:
        item = self.inq.get(timeout=max(0.0, min(0.5, self.next_tick - time.monotonic())))
        self.run_pending()
        if item is not None:
            t = time.perf_counter()
            self.fuser.observe(item.obs)
            self.labels[item.obs.modality] = item.label
            self.latest_ts = max(self.latest_ts or item.obs.ts, item.obs.ts)
            self.stats.processed(time.perf_counter() - t)
        flush = self.flush_request.is_set()
        if time.monotonic() >= self.next_tick or flush:
            self.next_tick = time.monotonic() + self.cfg.interval_s
            if self.latest_ts is not None:
                self.tick(force=flush)
        if flush and (item is None or self.inq.empty()):
            self.flush_request.clear()
            self.flushed.set()

    def tick(self, force: bool = False) -> None:
        est = self.fuser.estimate(self.now())
        payload = mood_payload(est, self.labels, time.time())
        if force or self._changed(payload):
            self.sink.publish_mood(payload)
            self.stats.count("published")
            self.last, self.last_time = payload, time.monotonic()
        self.on_estimate(est)

    def _changed(self, p: dict[str, Any]) -> bool:
        last = self.last
        if last is None or time.monotonic() - self.last_time >= self.cfg.refresh_s:
            return True
        if (p["quadrant"], p["emotion"]) != (last["quadrant"], last["emotion"]):
            return True
        return any(abs(p[k] - last[k]) >= self.cfg.min_change
                   for k in ("valence", "arousal", "confidence"))


# -- recommender ----------------------------------------------------------------------


Reply = Callable[[Command, bool, "dict[str, Any] | str"], None]


class TracksWorker(Worker):
    """Owns the catalogue (SQLite lives on this thread) and the music policy.

    Publishes ``tracks`` for the first mood, then when the policy or target changes, on
    ``recommend``, or when the mood (with confidence >= ``min_confidence``) moved
    ``min_move`` from the mood the last list was chosen for, but never
    more than once per ``min_interval_s`` (a request inside the interval waits).
    """

    def __init__(self, stop: threading.Event, cfg: TracksConfig, params: RecommenderParams,
                 catalogue: Path, sink: Sink, stats: StageStats, status: SourceStatus,
                 reply: Reply, policy: Policy, target: tuple[float, float] | None,
                 on_policy: Callable[[Policy, tuple[float, float] | None], None]) -> None:
        super().__init__("tracks", stop)
        self.cfg, self.params, self.catalogue_path = cfg, params, catalogue
        self.sink, self.stats, self.status, self.reply = sink, stats, status, reply
        self.policy, self.target, self.on_policy = policy, target, on_policy
        self.commands = DropQueue(32, stats)
        self.wake = threading.Event()
        self._mood: MoodEstimate | None = None
        self.mood: MoodEstimate | None = None
        self.pending: str | None = None
        self.last_time: float | None = None
        self.last_point: tuple[float, float] | None = None
        self.recommender: Recommender | None = None
        self.steps = 0  # completed steps (the daemon's drain waits on it)

    # called from other threads
    def offer_mood(self, est: MoodEstimate) -> None:
        self._mood = est
        self.wake.set()

    def submit(self, cmd: Command) -> bool:
        ok = self.commands.offer(cmd)
        self.wake.set()
        return ok

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
        while (cmd := self.commands.get(timeout=0)) is not None:
            self.handle(cmd)
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
        self.steps += 1

    def wait_s(self) -> float:
        if self.last_time is None:
            return 0.0
        return max(0.0, self.cfg.min_interval_s - (time.monotonic() - self.last_time))

    def maybe_publish(self) -> None:
        if self.pending is None or self.wait_s() > 0:
            return
        reason, self.pending = self.pending, None
        est = self.mood
        point = (est.valence, est.arousal) if est is not None else (0.0, 0.0)
        t = time.perf_counter()
        assert self.recommender is not None
        try:
            recs = self.recommender.recommend(point, self.policy, self.cfg.count,
                                              target=self.target)
        except (CatalogError, ValueError) as exc:
            self.stats.count("errors")
            log.error("tracks: cannot recommend: %s", exc)
            return
        self.stats.processed(time.perf_counter() - t)
        mood = {"valence": _round(point[0]), "arousal": _round(point[1]),
                "confidence": _round(est.confidence) if est else 0.0,
                "quadrant": est.quadrant if est else "neutral"}
        self.sink.publish_tracks({
            "ts": round(time.time(), 3), "policy": self.policy.value,
            "target": list(self.target) if self.target else None, "trigger": reason,
            "mood": mood,
            "tracks": [{"uri": r.track.uri, "title": r.track.title, "artist": r.track.artist,
                        "valence": _round(r.track.valence), "arousal": _round(r.track.arousal),
                        "reason": dict(r.reason)} for r in recs],
        })
        self.stats.count("published")
        self.last_time, self.last_point = time.monotonic(), point

    def handle(self, cmd: Command) -> None:
        if self.recommender is None:
            self.reply(cmd, False, "the music catalogue is unavailable (see stats.sources)")
            return
        try:
            result = self._apply(cmd)
        except (CatalogError, ValueError) as exc:
            self.reply(cmd, False, str(exc))
            return
        self.reply(cmd, True, result)

    def _apply(self, cmd: Command) -> dict[str, Any]:
        rec = self.recommender
        assert rec is not None
        if cmd.cmd in ("set_policy", "set_target"):
            assert cmd.policy is not None
            target = cmd.target if cmd.policy is Policy.TARGET else None
            if cmd.policy is Policy.TARGET and target is None:
                target = self.target
                if target is None:
                    raise ValueError("policy 'target' needs a target: send "
                                     '{"cmd": "set_target", "valence": …, "arousal": …}')
            changed = (cmd.policy, target) != (self.policy, self.target)
            self.policy, self.target = cmd.policy, target
            if changed:
                self.pending = "policy changed"
                self.on_policy(self.policy, self.target)
            return {"policy": self.policy.value, "target": list(target) if target else None,
                    "tracks_in_s": round(self.wait_s(), 1) if changed else None}
        if cmd.cmd == "feedback":
            assert cmd.uri is not None and cmd.kind is not None
            rec.feedback(cmd.uri, cmd.kind)
            return {"uri": cmd.uri, "kind": cmd.kind}
        if cmd.cmd == "played":
            assert cmd.uri is not None
            rec.played(cmd.uri)
            return {"uri": cmd.uri}
        if cmd.cmd == "recommend":
            self.pending = "requested"
            return {"tracks_in_s": round(self.wait_s(), 1)}
        raise ValueError(f"not a tracks command: {cmd.cmd}")
