"""The device daemon's wiring: sources, recognisers, fusion, recommender and publisher.

Threads (each a :class:`~edge.daemon.base.Worker` with a heartbeat)::

    audio ──q──► speech ──┐
                          ├─q─► fusion ──► tracks ──► publisher (MQTT, paho's thread)
    camera ──q──► face ───┘

The main thread handles signals, serves the commands the command table gives it
(calibration reloads), publishes ``…/stats`` and feeds the systemd watchdog only while
every worker is alive and beating.  A missing model turns its modality off (``absent``
in the stats); a missing or failing device is retried with backoff while the other
keeps working.  With ``exit_when_done`` the run ends when :data:`~edge.daemon.base.END`
has flowed from the file sources through fusion and the recommender.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from edge.config import Config
from edge.daemon.base import Sink, SourceStatus, StageStats, Worker
from edge.daemon.calibration import Calibrated, Calibration
from edge.daemon.control import DaemonControl, Dispatcher, Events
from edge.daemon.health import Health, sd_notify, watchdog_interval
from edge.daemon.pipeline import Pipeline, RunOptions
from edge.daemon.stages import FaceRecogniser, MoodWorker, SpeechLike
from edge.daemon.state import STATE_FILE, State
from edge.recognisers import load_recogniser, model_sha
from edge.vision.expression import FaceOptions

log = logging.getLogger(__name__)

STAGES = ("audio", "speech", "camera", "face", "fusion", "tracks", "commands")


def load_speech(config: Config) -> tuple[SpeechLike | None, str]:
    """The microphone's recogniser with the config's model, or why there is none."""
    return load_recogniser("speech", config.audio.recogniser, config.audio.speech_model)


def load_face(config: Config) -> tuple[FaceRecogniser | None, str]:
    """The camera's recogniser with the config's ``[face]`` options, or why there is none."""
    return load_recogniser("face", config.camera.recogniser, config.camera.face_model,
                           config.face, FaceOptions())


class Daemon:
    """Build with a validated :class:`Config`; ``run()`` blocks until stopped."""

    def __init__(self, config: Config, options: RunOptions | None = None,
                 sink: Sink | None = None, speech: SpeechLike | None | str = "load",
                 face: FaceRecogniser | None | str = "load") -> None:
        self.config, self.options = config, options or RunOptions()
        self.stop_event = threading.Event()
        self.status = SourceStatus()
        self.stats = {n: StageStats(n) for n in STAGES}
        self.health = Health(self.stats, self.status)
        state_dir = config.state_dir()
        self.state = State(state_dir / STATE_FILE, config.tracks.policy, config.tracks.target)
        self.publisher = None
        if sink is None:
            from edge.publish.mqtt import MqttPublisher

            self.publisher = MqttPublisher(config.mqtt, config.homeassistant,
                                           lambda p, t: self.dispatcher.on_command(p, t),
                                           lambda p, t: self.dispatcher.on_retained(p, t))
            sink = self.publisher
        self.sink = sink
        self.speech, self.speech_why = (
            load_speech(config) if speech == "load" else (speech, "no speech model"))
        self.face, self.face_why = (
            load_face(config) if face == "load" else (face, "no face recogniser"))
        self.pipeline: Pipeline | None = None  # by build()
        self.workers: list[Worker] = []
        self.mood: MoodWorker | None = None
        self.events = Events(sink.publish, self.connected)
        self.calibration = Calibration(config, state_dir, self.events,
                                       {"speech": model_sha(self.speech), "face": model_sha(self.face)})
        self.calibration.apply = self._apply_calibration
        if self.speech is not None:
            self.speech.vad = self.calibrated.vad
        self.control = DaemonControl(self.state, self.status, self.calibration, lambda: bool(
            self.publisher is not None and self.publisher.connected))
        self.dispatcher = Dispatcher(self.control, self.events, self.stats["commands"])
        self.on_command = self.dispatcher.on_command

    # -- wiring -------------------------------------------------------------------------
    def build(self) -> None:
        p = self.pipeline = Pipeline(self.config, self.options, self.speech, self.face,
                                     self.sink, self.state, self.status, self.stats,
                                     self.stop_event, self.calibrated.fusion,
                                     (self.speech_why, self.face_why), self.control.set_heard)
        if p.speech_worker is not None and p.speech_worker.music is not None:
            self.state.set_heard(False, time.time())  # listening for music, none heard yet
        self.control.tracks, self.mood, self.workers = p.tracks, p.mood, p.workers
        self.control.mood = p.mood
        self.health.workers = p.workers

    def _apply_calibration(self, calibrated: Calibrated) -> None:
        if self.pipeline is not None:
            self.pipeline.apply(calibrated)
        elif self.speech is not None:  # no speech thread to race with
            self.speech.vad = calibrated.vad

    # -- the main thread's services ----------------------------------------------------------
    @property
    def calibrated(self) -> Calibrated:
        return self.calibration.current

    @property
    def paused(self) -> dict[str, threading.Event]:
        return self.state.paused

    def connected(self) -> bool:
        return self.publisher is None or self.publisher.connected

    def calibration_stats(self) -> dict[str, Any]:
        return self.calibration.stats()

    def reload_calibration(self, trigger: str = "call", ident: Any = None) -> bool:
        return self.calibration.reload(trigger, ident)

    def request_reload(self, *_: Any) -> None:
        """SIGHUP: reload the calibration (served by the main loop)."""
        self.dispatcher.on_main(lambda: self.calibration.reload("SIGHUP"))

    def serve_requests(self) -> bool:
        """On the main thread: send held events, run handed-over jobs (True if any ran)."""
        self.events.release()
        return self.dispatcher.serve_main()

    def healthy(self) -> bool:
        return self.health.healthy()

    def stats_payload(self) -> dict[str, Any]:
        interp = getattr(getattr(self.speech, "model", None), "interpreter_module", None)
        mqtt = None if self.publisher is None else dict(self.publisher.counters,
                                                        connected=self.publisher.connected,
                                                        error=self.publisher.last_error)
        return self.health.payload(interp, lambda: {
            "paused": self.state.paused_list(), "policy": self.state.policy,
            "calibration": self.calibration.stats(), "playback": dict(self.state.playback),
            "music_heard": None if self.state.heard is None else dict(self.state.heard),
            "face_detector": getattr(self.face, "detections", lambda: None)()}, mqtt)

    # -- running --------------------------------------------------------------------------
    def request_stop(self, *_: Any) -> None:
        self.stop_event.set()

    def run(self, install_signals: bool = True) -> int:
        if install_signals:
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
            signal.signal(signal.SIGHUP, self.request_reload)
        self.build()
        if self.options.exit_when_done and not self.pipeline.sources:
            why = "; ".join(f"{k} {v['state']} ({v['detail']})"
                            for k, v in self.status.snapshot().items())
            log.error("--exit-when-done: nothing to run: %s", why or "no input")
            return 2
        for w in self.workers:  # running before the device says online and takes commands
            w.start()
        if self.publisher is not None:
            self.publisher.start()
        wd = watchdog_interval()
        sd_notify("READY=1\nSTATUS=running")
        log.info("daemon running: %s", ", ".join(
            f"{k}={v['state']}" for k, v in self.status.snapshot().items()))
        next_stats = time.monotonic() + min(5.0, self.config.stats.interval_s)
        next_wd, rc = time.monotonic(), 0
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
                self.sink.publish("stats", self.stats_payload())
                next_stats = now + self.config.stats.interval_s
            if self.options.exit_when_done and self.pipeline.done():
                self.sink.publish("stats", self.stats_payload())
                break
            if self.health.failed() and wd is None:
                log.error("a worker failed and no watchdog will restart us: exiting")
                rc = 1
                break
        self.shutdown()
        return rc

    def shutdown(self) -> None:
        sd_notify("STOPPING=1")
        self.stop_event.set()
        if self.publisher is not None:
            self.publisher.stop(timeout=1.0)
        deadline = time.monotonic() + 0.7
        for w in self.workers:
            w.join(max(0.0, deadline - time.monotonic()))
        log.info("daemon stopped")
