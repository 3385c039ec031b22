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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.config import Config
from edge.daemon.base import DropQueue, Sink, SourceStatus, StageStats, Worker
from edge.daemon.calibration import Calibrated, Calibration
from edge.daemon.clock import Clock, Replay
from edge.daemon.control import DaemonControl, Dispatcher, Events
from edge.daemon.health import Health, sd_notify, watchdog_interval
from edge.daemon.sources import AudioWorker, CameraWorker
from edge.daemon.stages import FaceRecogniser, FaceWorker, MoodWorker, SpeechLike, SpeechWorker
from edge.daemon.state import STATE_FILE, State
from edge.daemon.tracks import TracksWorker
from edge.recognisers import load_recogniser

log = logging.getLogger(__name__)

STAGES = ("audio", "speech", "camera", "face", "fusion", "tracks", "commands")


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

    def clock(self) -> Clock:
        return Replay(self.fast, self.loop) if self.file_mode else Clock()


class Daemon:
    """Build with a validated :class:`Config`; ``run()`` blocks until stopped."""

    def __init__(self, config: Config, options: RunOptions = RunOptions(),
                 sink: Sink | None = None, speech: SpeechLike | None | str = "load",
                 face: FaceRecogniser | None | str = "load") -> None:
        self.config, self.options = config, options
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
                                           lambda p, t: self.dispatcher.on_command(p, t))
            sink = self.publisher
        self.sink = sink
        self.speech, self.speech_why = (
            load_recogniser("speech", config.audio.recogniser, config.audio.speech_model)
            if speech == "load" else (speech, "no speech model"))
        self.face, self.face_why = (
            load_recogniser("face", config.camera.recogniser, config.camera.face_model)
            if face == "load" else (face, "no face recogniser"))
        self.workers: list[Worker] = []
        self.mood: MoodWorker | None = None
        self.speech_worker: SpeechWorker | None = None
        self.events = Events(sink.publish, self.connected)
        self.calibration = Calibration(config, state_dir, self.events)
        self.calibration.apply = self._apply_calibration
        if self.speech is not None:
            self.speech.vad = self.calibrated.vad
        self.control = DaemonControl(self.state, self.status, self.calibration, lambda: bool(
            self.publisher is not None and self.publisher.connected))
        self.dispatcher = Dispatcher(self.control, self.events, self.stats["commands"])
        self.on_command = self.dispatcher.on_command

    # -- wiring -------------------------------------------------------------------------
    def build(self) -> None:
        c, o, st, paused = self.config, self.options, self.stats, self.state.paused
        clock, qsize = o.clock(), c.daemon.queue_size
        fused = DropQueue(qsize * 4, st["fusion"])
        common = dict(stop=self.stop_event, status=self.status, stall_s=c.daemon.stall_s,
                      retry=(c.daemon.retry_min_s, c.daemon.retry_max_s))
        audio_on = bool(o.audio_files) if o.file_mode else c.audio.enabled
        camera_on = bool(o.image_dir or o.video_file) if o.file_mode else c.camera.enabled
        sources: list[Worker] = []
        recognisers: list[Worker] = []
        if not audio_on:
            self.status.set("audio", "disabled", "no --audio-file" if o.file_mode
                            else "audio.enabled = false")
        elif self.speech is None:
            self.status.set("audio", "absent", self.speech_why)
        else:
            windows = DropQueue(qsize, st["speech"])
            sources.append(AudioWorker(self.speech.params, c.audio, o.audio_files, windows, clock,
                                       paused=paused["audio"], stats=st["audio"], **common))
            self.speech_worker = SpeechWorker(self.speech, stop=self.stop_event, inq=windows,
                                              out=fused, stats=st["speech"],
                                              paused=paused["audio"], clock=clock)
            recognisers.append(self.speech_worker)
        if not camera_on:
            self.status.set("camera", "disabled", "no --image-dir/--video-file" if o.file_mode
                            else "camera.enabled = false")
        elif self.face is None:
            self.status.set("camera", "absent", self.face_why)
        else:
            frames = DropQueue(max(1, qsize // 4), st["face"])
            sources.append(CameraWorker(c.camera, o.image_dir, o.video_file, frames, clock,
                                        paused=paused["camera"], stats=st["camera"], **common))
            recognisers.append(FaceWorker(self.face, stop=self.stop_event, inq=frames, out=fused,
                                          stats=st["face"], paused=paused["camera"], clock=clock))
        tracks = self.control.tracks = TracksWorker(
            self.stop_event, c.tracks, c.recommender, c.catalogue_path(), self.sink,
            st["tracks"], self.status, self.state)
        self.mood = MoodWorker(self.stop_event, self.calibrated.fusion, c.mood, fused, self.sink,
                               st["fusion"], tracks.offer_mood, clock, len(recognisers),
                               tracks.end_of_input if o.exit_when_done else None)
        self.workers = self.health.workers = [*sources, *recognisers, self.mood, tracks]

    def _apply_calibration(self, calibrated: Calibrated) -> None:
        if self.speech_worker is not None:
            self.speech_worker.set_vad(calibrated.vad)
        elif self.speech is not None:  # no speech thread to race with
            self.speech.vad = calibrated.vad
        if self.mood is not None:
            self.mood.set_params(calibrated.fusion)

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
                                                        connected=self.publisher.connected)
        return self.health.payload(interp, lambda: {
            "paused": self.state.paused_list(), "policy": self.state.policy,
            "calibration": self.calibration.stats()}, mqtt)

    def done(self) -> bool:
        """The end of the input has been published (for ``exit_when_done``)."""
        tracks = self.control.tracks
        return (self.mood is not None and self.mood.drained.is_set() and tracks is not None
                and (tracks.drained.is_set() or not tracks.is_alive()))

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
            if self.options.exit_when_done and self.done():
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
