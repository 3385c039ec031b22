"""The device daemon: wires sources, recognisers, fusion, recommender and publisher.

Threads (each a :class:`~edge.workers.base.Worker` with a heartbeat)::

    audio ──q──► speech ──┐
                          ├─q─► fusion ──► tracks ──► publisher (MQTT, paho's thread)
    camera ──q──► face ───┘

The main thread handles signals, publishes ``…/stats`` and feeds the systemd watchdog
(``sd_notify`` over ``$NOTIFY_SOCKET``; no dependency) only while every worker is
alive and beating.  A missing model turns its modality off (``absent`` in the stats);
a missing or failing device is retried with backoff while the other keeps working.

The main thread also (re)loads ``calibration.json`` from the state directory, at start,
on SIGHUP and on ``{"cmd": "reload_calibration"}``, and hands the new settings to the
speech and fusion workers, which apply them between items.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import platform
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge import __version__
from edge import calibrate as C
from edge.audio.vad import VadParams
from edge.config import Config
from edge.manifest import ModelError
from edge.mood.fusion import FusionParams, MoodEstimate
from edge.music.recommend import Policy
from edge.publish.commands import Command, CommandError, parse_command
from edge.workers.base import DropQueue, Sink, SourceStatus, StageStats, Worker
from edge.workers.stages import (
    AudioWorker,
    CameraWorker,
    FaceRecogniser,
    FaceWorker,
    MoodWorker,
    SpeechLike,
    SpeechWorker,
    TracksWorker,
)

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
MAX_SILENCE_S = 15.0  # a worker that has not beaten this long is stuck


# -- systemd notify -----------------------------------------------------------------


def sd_notify(message: str, env: dict[str, str] | None = None) -> bool:
    """Send ``message`` (e.g. ``READY=1``) to systemd; False when not run by systemd."""
    addr = (os.environ if env is None else env).get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):  # abstract namespace
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(addr)
            s.sendall(message.encode())
        return True
    except OSError as exc:
        log.warning("sd_notify(%s) failed: %s", message.split("\n")[0], exc)
        return False


def watchdog_interval(env: dict[str, str] | None = None) -> float | None:
    """Half of systemd's ``WatchdogSec`` (seconds), or None when there is no watchdog."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.1, int(usec) / 2e6)
    except ValueError:
        return None


# -- process metrics ------------------------------------------------------------------


def rss_bytes() -> int:
    """Resident set size now (Linux /proc; else the peak from getrusage)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class CpuMeter:
    """Process CPU time over wall time since the last call, in % of one core."""

    def __init__(self) -> None:
        self._last = (self._cpu(), time.monotonic())

    @staticmethod
    def _cpu() -> float:
        t = os.times()
        return t.user + t.system

    def percent(self) -> float:
        cpu, wall = self._cpu(), time.monotonic()
        (c0, w0), self._last = self._last, (cpu, wall)
        return round(100.0 * (cpu - c0) / max(wall - w0, 1e-6), 2)


def versions(interpreter: str | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {"moodedge": __version__, "python": platform.python_version()}
    for name, module in (("numpy", "numpy"), ("paho_mqtt", "paho.mqtt")):
        try:
            out[name] = importlib.import_module(module).__version__
        except (ImportError, AttributeError):
            out[name] = None
    out["interpreter"] = interpreter
    return out


# -- persistent state -------------------------------------------------------------------


@dataclass
class DaemonState:
    """What commands change and a restart keeps: policy, target, privacy pauses."""

    policy: Policy
    target: tuple[float, float] | None
    paused: set[str] = field(default_factory=set)

    def to_json(self) -> str:
        return json.dumps({"policy": self.policy.value,
                           "target": list(self.target) if self.target else None,
                           "paused": sorted(self.paused)})

    @classmethod
    def load(cls, path: Path, default: DaemonState) -> DaemonState:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            policy = Policy(data["policy"])
            target = data.get("target")
            target = (float(target[0]), float(target[1])) if target else None
            if policy is Policy.TARGET and target is None:
                raise ValueError("policy target without a target")
            paused = {p for p in data.get("paused", []) if p in ("audio", "camera")}
            return cls(policy, target, paused)
        except FileNotFoundError:
            return default
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            log.warning("%s: ignoring unreadable state (%s)", path, exc)
            return default

    def save(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(self.to_json(), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("%s: cannot save state: %s", path, exc)


# -- calibration --------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibrated:
    """What the pipeline runs with: the config's VAD and fusion settings with the
    calibration laid over them (``calibration`` None: the config's alone)."""

    vad: VadParams
    fusion: FusionParams
    calibration: C.Calibration | None = None
    created: datetime | None = None  # aware; a naive ``created`` is taken as local time

    @classmethod
    def of(cls, config: Config, cal: C.Calibration | None, where: str = C.FILE_NAME
           ) -> Calibrated:
        """Defaults < the TOML file < the calibration, key by key: the calibration's VAD
        threshold, and its offset and reliability for each modality it measured, replace
        the config's; everything else stays.  CalibrationError when a value does not fit."""
        vad, fusion = config.audio.vad, config.fusion
        if cal is None:
            return cls(vad, fusion)
        try:
            created = datetime.fromisoformat(cal.created)
            if "threshold_db" in cal.vad:
                vad = replace(vad, threshold_db=float(cal.vad["threshold_db"]))
            offsets = {m: (float(v), float(a)) for m, (v, a) in cal.offsets.items()}
            reliability = {m: float(r) for m, r in cal.reliability.items()}
            fusion = replace(
                fusion, calibration_offset={**fusion.calibration_offset, **offsets},
                reliability={**fusion.reliability, **reliability})
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise C.CalibrationError(f"{where}: {exc}") from None
        return cls(vad, fusion, cal, created if created.tzinfo else created.astimezone())

    @classmethod
    def load(cls, config: Config, state_dir: Path) -> Calibrated:
        """From ``<state_dir>/calibration.json`` (absent: the config's settings)."""
        where = str(state_dir / C.FILE_NAME)
        try:
            cal = C.load_calibration(state_dir)
        except (OSError, ValueError, TypeError, AttributeError) as exc:  # beyond its own checks
            raise C.CalibrationError(f"{where}: {exc}") from None
        return cls.of(config, cal, where)

    def stats(self, now: float | None = None) -> dict[str, Any]:
        """The ``calibration`` object of ``…/stats``: when, and the settings in effect."""
        created = self.created
        return {
            "calibrated_at": created.astimezone(UTC).isoformat(timespec="seconds")
            if created else None,
            "age_s": round(C.age_s(self.calibration, now), 1) if self.calibration else None,
            "vad_threshold_db": self.vad.threshold_db,
            "offsets": {m: list(self.fusion.offset_of(m))
                        for m in sorted(self.fusion.calibration_offset)},
            "reliability": {m: self.fusion.reliability_of(m)
                            for m in sorted(self.fusion.reliability)},
        }


# -- the daemon -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    """File sources for tests and demos.  With any of them, only file input is used."""

    audio_files: tuple[Path, ...] = ()
    image_dir: Path | None = None
    video_file: Path | None = None
    fast: bool = False  # file sources as fast as the pipeline goes, not real time
    loop: bool = False  # replay file sources forever
    exit_when_done: bool = False  # stop once file input is processed and published

    @property
    def file_mode(self) -> bool:
        return bool(self.audio_files or self.image_dir or self.video_file)


def load_face_recogniser(spec: str, model: Path | None) -> tuple[FaceRecogniser | None, str]:
    """(recogniser, "") or (None, why not).  ``spec`` is ``module:factory``."""
    module, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr or "face_recogniser")
    except (ImportError, AttributeError) as exc:
        return None, f"no face recogniser installed ({spec}: {exc})"
    try:
        rec = factory(model)
    except (ModelError, ValueError, OSError, LookupError) as exc:
        return None, f"face model unavailable: {exc}"
    if not callable(getattr(rec, "classify_frame", None)):
        return None, f"{spec} returned {type(rec).__name__} without classify_frame()"
    return rec, ""


def load_speech(config: Config) -> tuple[SpeechLike | None, str]:
    from edge.predict import speech_recogniser

    cfg = config.audio
    try:
        rec = speech_recogniser(cfg.speech_model)
    except (ModelError, OSError, ValueError) as exc:
        return None, f"speech model unavailable: {exc}"
    return rec, ""  # the Daemon sets rec.vad: the config's, with the calibration over it


class Daemon:
    """Build with a validated :class:`Config`; ``run()`` blocks until stopped."""

    def __init__(self, config: Config, options: RunOptions = RunOptions(),
                 sink: Sink | None = None,
                 speech: SpeechLike | None | str = "load",
                 face: FaceRecogniser | None | str = "load") -> None:
        self.config, self.options = config, options
        self.stop_event = threading.Event()
        self.status = SourceStatus()
        self.started = time.monotonic()
        self.cpu = CpuMeter()
        self.stats = {n: StageStats(n) for n in
                      ("audio", "speech", "camera", "face", "fusion", "tracks", "commands")}
        self.paused = {"audio": threading.Event(), "camera": threading.Event()}
        self.state_dir = config.state_dir()
        self.state_path = self.state_dir / STATE_FILE
        self.state = DaemonState.load(
            self.state_path, DaemonState(config.tracks.policy, config.tracks.target))
        for what in self.state.paused:
            self.paused[what].set()
        self._state_lock = threading.Lock()
        self.publisher = None
        if sink is None:
            from edge.publish.mqtt import MqttPublisher

            self.publisher = MqttPublisher(config.mqtt, config.homeassistant, self.on_command)
            sink = self.publisher
        self.sink = sink
        self.speech, self.speech_why = (load_speech(config) if speech == "load"
                                        else (speech, "no speech model"))
        self.face, self.face_why = (
            load_face_recogniser(config.camera.recogniser, config.camera.face_model)
            if face == "load" else (face, "no face recogniser"))
        self.workers: list[Worker] = []
        self.tracks: TracksWorker | None = None
        self.mood: MoodWorker | None = None
        self.speech_worker: SpeechWorker | None = None
        self.sources: list[Worker] = []
        # Reload requests (SIGHUP, commands) are served on the main thread; events
        # from before the broker connected wait in _held_events.
        self._requests: queue.SimpleQueue[tuple[str, Command | None]] = queue.SimpleQueue()
        self._held_events: list[dict[str, Any]] = []
        self.calibration_error: str | None = None
        try:
            self.calibrated = Calibrated.load(config, self.state_dir)
        except C.CalibrationError as exc:
            self.calibrated = Calibrated.of(config, None)
            self._calibration_failed(exc, "start", None, "running uncalibrated")
        else:
            self._log_calibration()
        if self.speech is not None:
            self.speech.vad = self.calibrated.vad

    # -- wiring -------------------------------------------------------------------------
    def _clock(self) -> Callable[[float], float]:
        if self.options.fast:
            t0 = time.monotonic()
            return lambda media_s: t0 + media_s
        return lambda media_s: time.monotonic()

    def build(self) -> None:
        c, o, st = self.config, self.options, self.stats
        qsize = c.daemon.queue_size
        fused = DropQueue(qsize * 4, st["fusion"])
        common = dict(stop=self.stop_event, status=self.status,
                      retry=(c.daemon.retry_min_s, c.daemon.retry_max_s),
                      stall_s=c.daemon.stall_s, loop=o.loop)
        audio_on = bool(o.audio_files) if o.file_mode else c.audio.enabled
        camera_on = bool(o.image_dir or o.video_file) if o.file_mode else c.camera.enabled
        if not audio_on:
            self.status.set("audio", "disabled", "no --audio-file" if o.file_mode
                            else "audio.enabled = false")
        elif self.speech is None:
            self.status.set("audio", "absent", self.speech_why)
        else:
            windows = DropQueue(qsize, st["speech"])
            self.sources.append(AudioWorker(
                self.speech.params, c.audio, o.audio_files, o.fast, windows, self._clock(),
                paused=self.paused["audio"], stats=st["audio"], **common))
            self.speech_worker = SpeechWorker(
                self.speech, stop=self.stop_event, inq=windows, out=fused, stats=st["speech"],
                paused=self.paused["audio"], fast=o.fast)
            self.workers.append(self.speech_worker)
        if not camera_on:
            self.status.set("camera", "disabled", "no --image-dir/--video-file" if o.file_mode
                            else "camera.enabled = false")
        elif self.face is None:
            self.status.set("camera", "absent", self.face_why)
        else:
            frames = DropQueue(max(1, qsize // 4), st["face"])
            self.sources.append(CameraWorker(
                c.camera, o.image_dir, o.video_file, o.fast, frames, self._clock(),
                paused=self.paused["camera"], stats=st["camera"], **common))
            self.workers.append(FaceWorker(
                self.face, stop=self.stop_event, inq=frames, out=fused, stats=st["face"],
                paused=self.paused["camera"], fast=o.fast))
        self.tracks = TracksWorker(
            self.stop_event, c.tracks, c.recommender, c.catalogue_path(), self.sink,
            st["tracks"], self.status, self.reply, self.state.policy, self.state.target,
            self._policy_changed)
        self.mood = MoodWorker(self.stop_event, self.calibrated.fusion, c.mood, fused, self.sink,
                               st["fusion"], self._mood_estimated, o.fast)
        self.workers = [*self.sources, *self.workers, self.mood, self.tracks]

    def _mood_estimated(self, est: MoodEstimate) -> None:
        if self.tracks is not None:
            self.tracks.offer_mood(est)

    def _policy_changed(self, policy: Policy, target: tuple[float, float] | None) -> None:
        with self._state_lock:
            self.state.policy, self.state.target = policy, target
            self.state.save(self.state_path)

    # -- commands -----------------------------------------------------------------------
    def on_command(self, payload: bytes, topic: str = "cmd") -> None:
        """Called for each ``…/cmd`` message (on the MQTT thread): answer every one."""
        st = self.stats["commands"]
        try:
            cmd = parse_command(payload)
        except CommandError as exc:
            st.count("rejected")
            self._event(exc.id, exc.cmd, False, f"{topic}: {exc}")
            return
        st.processed(0.0)
        if cmd.cmd in ("pause", "resume"):
            self.reply(cmd, True, self._pause(cmd.what, cmd.cmd == "pause"))
        elif cmd.cmd == "status":
            self.reply(cmd, True, {"sources": self.status.snapshot(),
                                   "paused": sorted(self.state.paused),
                                   "policy": self.state.policy.value,
                                   "calibration": self.calibration_stats(),
                                   "mqtt_connected": bool(self.publisher
                                                          and self.publisher.connected)})
        elif cmd.cmd == "reload_calibration":
            self._requests.put(("cmd", cmd))  # file I/O and the hand-over: main thread
        elif self.tracks is None or not self.tracks.is_alive():
            self.reply(cmd, False, "the recommender is not running")
        elif not self.tracks.submit(cmd):
            self.reply(cmd, False, "busy: too many commands queued; try again")

    def _pause(self, what: Sequence[str], pause: bool) -> dict[str, Any]:
        with self._state_lock:
            for w in what:
                (self.paused[w].set if pause else self.paused[w].clear)()
                (self.state.paused.add if pause else self.state.paused.discard)(w)
            self.state.save(self.state_path)
            log.info("%s %s (privacy)", "paused" if pause else "resumed", ", ".join(what))
            return {"paused": sorted(self.state.paused)}

    def reply(self, cmd: Command, ok: bool, result: dict[str, Any] | str) -> None:
        self._event(cmd.id, cmd.cmd, ok, result)

    def _event(self, ident: Any, cmd: str | None, ok: bool, result: Any,
               hold: bool = False, **extra: Any) -> None:
        """Publish an answer on ``…/events``; ``hold``: once the broker is connected."""
        payload: dict[str, Any] = {"ts": round(time.time(), 3), "id": ident, "cmd": cmd, "ok": ok}
        payload["result" if ok else "error"] = result
        payload.update(extra)
        if not ok:
            log.info("command %s rejected: %s", cmd or "?", result)
        if hold:
            self._held_events.append(payload)
        else:
            self.sink.publish_event(payload)

    # -- calibration ------------------------------------------------------------------------
    def request_reload(self, *_: Any) -> None:
        """SIGHUP: reload the calibration (served by the main loop)."""
        self._requests.put(("SIGHUP", None))

    def serve_requests(self) -> bool:
        """On the main thread: send held events, serve reloads.  True if any reload ran."""
        if self._held_events and (self.publisher is None or self.publisher.connected):
            held, self._held_events = self._held_events, []
            for payload in held:
                self.sink.publish_event(payload)
        served = False
        while True:
            try:
                trigger, cmd = self._requests.get_nowait()
            except queue.Empty:
                return served
            self.reload_calibration(trigger, cmd)
            served = True

    def reload_calibration(self, trigger: str = "call", cmd: Command | None = None) -> bool:
        """Re-read calibration.json and hand it to the running stages; answer on events.
        A bad file keeps the calibration in use (and says why)."""
        ident = cmd.id if cmd is not None else None
        try:
            calibrated = Calibrated.load(self.config, self.state_dir)
        except C.CalibrationError as exc:
            self._calibration_failed(exc, trigger, ident, "keeping the calibration in use")
            return False
        self.calibration_error = None
        self.calibrated = calibrated
        if self.speech_worker is not None:
            self.speech_worker.set_vad(calibrated.vad)
        elif self.speech is not None:  # no speech thread to race with
            self.speech.vad = calibrated.vad
        if self.mood is not None:
            self.mood.set_params(calibrated.fusion)
        self._log_calibration()
        self._event(ident, "reload_calibration", True, self.calibration_stats(), trigger=trigger)
        return True

    def _calibration_failed(self, exc: Exception, trigger: str, ident: Any, doing: str) -> None:
        self.calibration_error = f"{exc}; {doing}"
        log.warning("calibration: %s", self.calibration_error)
        self._event(ident, "reload_calibration", False, self.calibration_error,
                    hold=trigger == "start", trigger=trigger)

    def _log_calibration(self) -> None:
        c = self.calibrated.stats()
        if c["calibrated_at"] is None:
            log.info("calibration: none in %s; using the config's settings", self.state_dir)
        else:
            log.info("calibration of %s: VAD threshold %g dBFS, offsets %s, reliability %s",
                     c["calibrated_at"], c["vad_threshold_db"], c["offsets"], c["reliability"])

    def calibration_stats(self) -> dict[str, Any]:
        return {**self.calibrated.stats(), "error": self.calibration_error}

    # -- health and stats ------------------------------------------------------------------
    def healthy(self) -> bool:
        return bool(self.workers) and all(w.healthy(MAX_SILENCE_S) for w in self.workers)

    def stats_payload(self) -> dict[str, Any]:
        interp = getattr(getattr(self.speech, "model", None), "interpreter_module", None)
        payload: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "uptime_s": round(time.monotonic() - self.started, 1),
            "cpu_percent": self.cpu.percent(),
            "rss_mb": round(rss_bytes() / 2**20, 1),
            "threads": threading.active_count(),
            "healthy": self.healthy(),
            "stages": {n: s.snapshot() for n, s in self.stats.items()},
            "sources": self.status.snapshot(),
            "paused": sorted(self.state.paused),
            "policy": self.state.policy.value,
            "calibration": self.calibration_stats(),
            "interpreter": interp,
            "versions": versions(interp),
        }
        if self.publisher is not None:
            payload["mqtt"] = dict(self.publisher.counters, connected=self.publisher.connected)
        failed = {w.name: w.failed for w in self.workers if w.failed}
        if failed:
            payload["failed"] = failed
        return payload

    def _done(self) -> bool:
        """File input ended and every stage drained (for --exit-when-done)."""
        return all(w.finished for w in self.sources)

    # -- running --------------------------------------------------------------------------
    def request_stop(self, *_: Any) -> None:
        self.stop_event.set()

    def run(self, install_signals: bool = True) -> int:
        if install_signals:
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
            signal.signal(signal.SIGHUP, self.request_reload)
        self.build()
        if self.publisher is not None:
            self.publisher.start()
        for w in self.workers:
            w.start()
        wd = watchdog_interval()
        sd_notify("READY=1\nSTATUS=running")
        log.info("daemon running: %s", ", ".join(
            f"{k}={v['state']}" for k, v in self.status.snapshot().items()))
        next_stats = time.monotonic() + min(5.0, self.config.stats.interval_s)
        next_wd = time.monotonic()
        rc = 0
        while not self.stop_event.wait(0.25):
            if self.serve_requests():
                next_stats = 0.0  # show the new calibration now
            now = time.monotonic()
            if wd is not None and now >= next_wd:
                if self.healthy():
                    sd_notify("WATCHDOG=1")
                else:
                    log.error("pipeline unhealthy: not feeding the watchdog")
                next_wd = now + wd
            if now >= next_stats:
                self.sink.publish_stats(self.stats_payload())
                next_stats = now + self.config.stats.interval_s
            if self.options.exit_when_done and self._done():
                self._drain()
                break
            if any(w.failed for w in self.workers) and wd is None:
                log.error("a worker failed and no watchdog will restart us: exiting")
                rc = 1
                break
        self.shutdown()
        return rc

    def _drain(self) -> None:
        """Let queued windows reach fusion, publish a final mood and tracks."""
        deadline = time.monotonic() + 10
        time.sleep(0.3)
        if self.mood is not None and self.mood.is_alive():
            self.mood.flush_request.set()
            self.mood.flushed.wait(max(0.0, deadline - time.monotonic()))
        tracks = self.tracks
        if tracks is not None:
            start = tracks.steps
            while tracks.is_alive() and time.monotonic() < deadline and (
                    tracks.steps < start + 2
                    or (tracks.pending is not None and tracks.wait_s() < 1.0)):
                tracks.wake.set()
                time.sleep(0.05)
        self.sink.publish_stats(self.stats_payload())

    def shutdown(self) -> None:
        sd_notify("STOPPING=1")
        self.stop_event.set()
        if self.publisher is not None:
            self.publisher.stop(timeout=1.0)
        deadline = time.monotonic() + 0.7
        for w in self.workers:
            w.join(max(0.0, deadline - time.monotonic()))
        log.info("daemon stopped")
