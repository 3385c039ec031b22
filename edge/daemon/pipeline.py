"""The pipeline's stages and the queues between them, built from the config and the
run options (file input and how it is replayed), ready to start."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.config import Config
from edge.daemon.base import DropQueue, Sink, SourceStatus, StageStats, Worker
from edge.daemon.calibration import Calibrated
from edge.daemon.clock import Clock, Replay
from edge.daemon.sources import AudioWorker, CameraWorker
from edge.daemon.stages import FaceWorker, MoodWorker, SpeechWorker
from edge.daemon.state import State
from edge.daemon.tracks import TracksWorker
from edge.mood.fusion import FusionParams


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


class Pipeline:
    """audio → speech, camera → face, both → fusion → tracks: the workers, unstarted.
    A modality without input, or without its recogniser (``why[0]``, ``why[1]``: why
    not), is ``disabled`` or ``absent`` in the source status."""

    def __init__(self, c: Config, o: RunOptions, speech: Any, face: Any, sink: Sink,
                 state: State, status: SourceStatus, st: Mapping[str, StageStats],
                 stop: threading.Event, fusion: FusionParams, why: tuple[str, str],
                 on_music: Callable[[bool], None] | None = None) -> None:
        self.status, self.speech = status, speech
        self.speech_worker: SpeechWorker | None = None
        paused = state.paused
        clock, qsize = o.clock(), c.daemon.queue_size
        fused = DropQueue(qsize * 4, st["fusion"])
        common = dict(stop=stop, status=status, stall_s=c.daemon.stall_s,
                      retry=(c.daemon.retry_min_s, c.daemon.retry_max_s))
        audio_on = bool(o.audio_files) if o.file_mode else c.audio.enabled
        camera_on = bool(o.image_dir or o.video_file) if o.file_mode else c.camera.enabled
        sources: list[Worker] = []
        recognisers: list[Worker] = []
        if not audio_on:
            status.set("audio", "disabled", "no --audio-file" if o.file_mode
                       else "audio.enabled = false")
        elif speech is None:
            status.set("audio", "absent", why[0])
        else:
            windows = DropQueue(qsize, st["speech"])
            sources.append(AudioWorker(speech.params, c.audio, o.audio_files, windows, clock,
                                       paused=paused["audio"], stats=st["audio"], **common))
            self.speech_worker = SpeechWorker(speech, c.audio.music, on_music, stop=stop,
                                              inq=windows, out=fused,
                                              stats=st["speech"], paused=paused["audio"],
                                              clock=clock)
            recognisers.append(self.speech_worker)
        if not camera_on:
            status.set("camera", "disabled", "no --image-dir/--video-file" if o.file_mode
                       else "camera.enabled = false")
        elif face is None:
            status.set("camera", "absent", why[1])
        else:
            frames = DropQueue(max(1, qsize // 4), st["face"])
            sources.append(CameraWorker(c.camera, o.image_dir, o.video_file, frames, clock,
                                        paused=paused["camera"], stats=st["camera"], **common))
            recognisers.append(FaceWorker(face, stop=stop, inq=frames, out=fused,
                                          stats=st["face"], paused=paused["camera"], clock=clock))
        tracks = self.tracks = TracksWorker(
            stop, c.tracks, c.recommender, c.catalogue_path(), sink,
            st["tracks"], status, state)
        self.mood = MoodWorker(stop, fusion, c.mood, fused, sink,
                               st["fusion"], tracks.offer_mood, clock, len(recognisers),
                               tracks.end_of_input if o.exit_when_done else None)
        self.sources = sources
        self.workers: list[Worker] = [*sources, *recognisers, self.mood, tracks]

    def apply(self, calibrated: Calibrated) -> None:
        """Hand new settings to the running stages (any thread)."""
        if self.speech_worker is not None:
            self.speech_worker.set_vad(calibrated.vad)
        elif self.speech is not None:  # no speech thread to race with
            self.speech.vad = calibrated.vad
        self.mood.set_params(calibrated.fusion)

    def done(self) -> bool:
        """The end of the input has been published (for ``exit_when_done``)."""
        return self.mood.drained.is_set() and (self.tracks.drained.is_set()
                                               or not self.tracks.is_alive())
