"""The source stages: microphone or audio files → speech windows, camera, image folder or
video → frames.  Opening devices and files is :mod:`edge.audio.sources` and
:mod:`edge.vision.sources`; these workers add pacing, retries with backoff, and the
end of input.  Frames and samples stay in memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.audio import sources as audio
from edge.audio.features import FeatureParams, StreamingMFCC, StreamingWindows
from edge.config import AudioConfig, CameraConfig
from edge.daemon.base import END, DropQueue, SourceStatus, StageStats, Worker, backoff
from edge.daemon.clock import Clock
from edge.vision import sources as vision

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """A device or file source failed; the worker retries it with backoff."""


# what opening or reading a source raises when the device or file is not usable
RETRIED = (SourceError, audio.AudioFileError, vision.ImageError, vision.CameraError, OSError)


class SourceWorker(Worker):
    """Opens a source, reads it, retries with backoff when it fails or stalls; at the end
    of file input puts :data:`END` on its queue.

    Subclasses give ``open()`` (an iterator of items) and ``handle(item)``.
    """

    modality = "source"

    def __init__(self, out: DropQueue, clock: Clock, stop: threading.Event,
                 status: SourceStatus, paused: threading.Event, stats: StageStats,
                 retry: tuple[float, float], stall_s: float) -> None:
        super().__init__(self.modality, stop)
        self.out, self.clock = out, clock
        self.status, self.paused, self.stats = status, paused, stats
        self.retry, self.stall_s = retry, stall_s
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

    def describe(self) -> str:
        return ""

    def should_stop(self) -> bool:
        return (self.stop_event.is_set() or self.paused.is_set()
                or (not self.clock.files and time.monotonic() - self.last_item > self.stall_s))

    def emit(self, item: Any) -> None:
        self.out.push(item, self.clock.wait_for_room, self.stop_event)

    def step(self) -> None:
        if self.paused.is_set():
            self.status.set(self.modality, "paused", "privacy: paused by command")
            self.stop_event.wait(0.2)
            return
        if self.retries == 0:
            self.status.set(self.modality, "starting")
        self.last_item = time.monotonic()
        self.running = False
        items = self.open()
        try:
            for item in items:
                self.beat()
                self.last_item = time.monotonic()
                if not self.running:
                    self.running, self.retries = True, 0
                    self._delays = backoff(*self.retry)
                    self.status.set(self.modality, "running", self.describe())
                self.handle(item)
                if self.should_stop():
                    break
        except RETRIED as exc:
            self._wait_retry(str(exc))
            return
        finally:
            getattr(items, "close", lambda: None)()  # releases the device
        if self.stop_event.is_set() or self.paused.is_set():
            return
        if self.clock.files:
            if not self.clock.loop:
                self.emit(END)
                self.status.set(self.modality, "finished", "end of input files")
                self.finished = True
            return
        self._wait_retry(f"no data (stream ended, or quiet for {self.stall_s:g} s; unplugged?)")

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
                 out: DropQueue, clock: Clock, **kw: Any) -> None:
        super().__init__(out, clock, **kw)
        self.p, self.cfg, self.file_list = params, cfg, list(files)
        self.media_s = 0.0
        self.mfcc, self.windows = StreamingMFCC(params), StreamingWindows(params)
        self._bad: set[str] = set()  # files skipped (logged once each)

    def describe(self) -> str:
        return (f"{len(self.file_list)} file(s)" if self.clock.files
                else f"microphone {self.cfg.device or '(default)'}")

    def open(self) -> Iterator[audio.Chunk]:
        self.mfcc.reset()
        self.windows.reset()
        if self.clock.files:
            return self._files(self.clock.pacer(self.stop_event))
        return self._microphone()

    def _files(self, pacer: Any) -> Iterator[audio.Chunk]:
        """The files (folders read for their audio files) in turn, paced; a file that
        cannot be used is skipped (logged once, counted each time)."""
        media_t = 0.0
        while True:
            read = 0
            for chunk in audio.file_chunks(self.file_list, self.p.sample_rate, self.cfg.block_s,
                                           self._bad_file):
                read += 1
                media_t += len(chunk.samples) / self.p.sample_rate
                if not pacer.wait(media_t):
                    return
                yield chunk
            if not self.clock.loop:
                return
            if not read:  # replaying nothing would spin: retry with backoff instead
                raise SourceError(f"no readable audio in {', '.join(map(str, self.file_list))}")

    def _bad_file(self, exc: audio.AudioFileError) -> None:
        self.stats.count("errors")
        if exc.path not in self._bad:
            self._bad.add(exc.path)
            log.warning("audio: skipping %s", exc)

    def _microphone(self) -> Iterator[audio.Chunk]:
        try:
            for block in audio.microphone_blocks(self.cfg.device or None, self.p.sample_rate,
                                                 self.cfg.block_s, stop=self.should_stop):
                yield audio.Chunk(block)
        except (OSError, LookupError, RuntimeError, ValueError) as exc:
            # audio.MicrophoneError (a RuntimeError) carries sounddevice.PortAudioError
            raise SourceError(f"microphone {self.cfg.device or '(default)'}: {exc}") from exc

    def on_retry(self) -> None:
        if not self.clock.files:
            audio.reinit_portaudio()

    def handle(self, chunk: audio.Chunk) -> None:
        t = time.perf_counter()
        self.media_s += len(chunk.samples) / self.p.sample_rate
        wins = self.windows.push(self.mfcc.push(chunk.samples))
        if chunk.end_of_file:  # the end of an utterance, like edge.audio.features.windows
            wins += self.windows.push(self.mfcc.flush()) + self.windows.flush()
        for window in wins:
            self.stats.count("windows")
            self.emit((window, self.clock.stamp(self.media_s)))
        self.stats.processed(time.perf_counter() - t)


class CameraWorker(SourceWorker):
    """Camera, image folder or video file → frames at ``fps``."""

    modality = "camera"

    def __init__(self, cfg: CameraConfig, image_dir: Path | None, video_file: Path | None,
                 out: DropQueue, clock: Clock, **kw: Any) -> None:
        super().__init__(out, clock, **kw)
        self.cfg, self.image_dir, self.video_file = cfg, image_dir, video_file
        self.frames = 0
        self._bad: set[str] = set()  # images skipped (logged once each)

    def describe(self) -> str:
        if self.image_dir:
            return f"images in {self.image_dir}"
        return f"video {self.video_file}" if self.video_file else f"camera ({self.cfg.backend})"

    def open(self) -> Iterator[np.ndarray]:
        if self.clock.files:
            return self._files(self.clock.pacer(self.stop_event))
        return self._camera()

    def _files(self, pacer: Any) -> Iterator[np.ndarray]:
        """The folder's images, or the video resampled to ``fps``, paced."""
        media_t, fps = 0.0, self.cfg.fps
        while True:
            if self.image_dir is not None:
                if not any(vision.iter_image_files([self.image_dir])):
                    raise SourceError(f"{self.image_dir}: no images "
                                      f"({', '.join(vision.IMAGE_SUFFIXES)})")
                src: vision.FrameSource = vision.ImageFiles([self.image_dir], self._bad_image)
                src_fps = fps
            else:
                assert self.video_file is not None
                src = vision.VideoFile(self.video_file)
                src_fps = src.fps
            every = max(1, int(round(src_fps / fps)))
            read = 0
            with src:
                for i, frame in enumerate(src.frames()):
                    read += 1
                    if i % every == 0:
                        media_t += every / src_fps
                        if not pacer.wait(media_t):
                            return
                        yield frame
            if not self.clock.loop:
                return
            if not read:  # replaying nothing would spin: retry with backoff instead
                raise SourceError(f"{self.describe()}: no readable frames")

    def _camera(self) -> Iterator[np.ndarray]:
        """Live frames at ``fps``: the camera's newest frame, then a wait."""
        size = (self.cfg.width, self.cfg.height)
        with vision.open_camera(self.cfg.backend, self.cfg.device, size) as cam:
            t = time.monotonic()
            for frame in cam.frames():
                yield frame
                self.stop_event.wait(max(0.0, 1.0 / self.cfg.fps - (time.monotonic() - t)))
                t = time.monotonic()
                if self.stop_event.is_set():
                    return

    def _bad_image(self, message: str) -> None:
        self.stats.count("errors")
        if message not in self._bad:  # each bad file logged once, counted every time
            self._bad.add(message)
            log.warning("camera: skipping %s", message)

    def handle(self, frame: np.ndarray) -> None:
        self.frames += 1
        self.stats.processed(0.0)
        self.emit((frame, self.clock.stamp(self.frames / self.cfg.fps)))
