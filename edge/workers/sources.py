"""Where the daemon's samples and frames come from: microphone, camera, or files.

Audio comes as float32 mono blocks, frames as uint8 BGR (H, W, 3; OpenCV's order, as
:mod:`edge.vision` expects) or grey (H, W) arrays; both stay in memory (nothing here
writes audio or images anywhere).  File sources are paced in real time unless
``fast``; ``loop`` replays them forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.audio.sources import iter_audio_files, load_audio, microphone_blocks
from edge.config import CameraConfig

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".npy")


class SourceError(RuntimeError):
    """A device or file source failed; the daemon retries it with backoff."""


class ImageError(ValueError):
    """An image file that cannot be used; the message names the file."""


class Pacer:
    """Sleeps so that media time ``t`` is reached at start + ``t`` (no-op when fast)."""

    def __init__(self, realtime: bool, stop: threading.Event) -> None:
        self.realtime = realtime
        self.stop = stop
        self.start = time.monotonic()

    def wait(self, media_t: float) -> bool:
        """False when stopping."""
        if self.realtime:
            delay = self.start + media_t - time.monotonic()
            if delay > 0:
                return not self.stop.wait(delay)
        return not self.stop.is_set()


@dataclass(frozen=True)
class Chunk:
    samples: np.ndarray
    end_of_file: bool = False


def audio_file_list(paths: Sequence[Path]) -> list[Path]:
    files = list(iter_audio_files(list(paths)))
    if not files:
        raise SourceError(f"no .wav/.flac files in {', '.join(map(str, paths))}")
    return files


def file_chunks(files: Sequence[Path], sample_rate: int, block_s: float, loop: bool,
                pacer: Pacer) -> Iterator[Chunk]:
    """Blocks of each file in turn (the last one of a file marked), paced by ``pacer``."""
    n = max(1, int(round(block_s * sample_rate)))
    media_t = 0.0
    while True:
        for path in files:
            x = load_audio(path, sample_rate)  # AudioFileError names the file
            for i in range(0, len(x), n):
                block = x[i : i + n]
                media_t += len(block) / sample_rate
                if not pacer.wait(media_t):
                    return
                yield Chunk(block, end_of_file=i + n >= len(x))
        if not loop:
            return


def reinit_portaudio() -> None:
    """Make PortAudio scan devices again (one plugged in after start is otherwise unseen)."""
    try:
        import sounddevice as sd

        sd._terminate()
        sd._initialize()
    except Exception as exc:  # noqa: BLE001 - best effort; the next open reports the error
        log.debug("PortAudio re-initialisation failed: %s", exc)


def microphone_chunks(device: str, sample_rate: int, block_s: float,
                      stop: Callable[[], bool]) -> Iterator[Chunk]:
    """Microphone blocks until ``stop()``; import and device errors become SourceError."""
    try:
        for block in microphone_blocks(device or None, sample_rate, block_s, stop=stop):
            yield Chunk(block)
    except (OSError, LookupError, RuntimeError, ValueError) as exc:
        # sounddevice.PortAudioError is a RuntimeError ("Error querying device -1" at boot)
        raise SourceError(f"microphone {device or '(default)'}: {exc}") from exc


# -- images ----------------------------------------------------------------------------


def _read_netpbm(path: Path) -> np.ndarray:
    data = path.read_bytes()
    tokens: list[bytes] = []
    pos = 0
    while len(tokens) < 4:
        while pos < len(data) and data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        start = pos
        while pos < len(data) and not data[pos : pos + 1].isspace():
            pos += 1
        if start == pos:
            raise ImageError(f"{path}: truncated PGM/PPM header")
        tokens.append(data[start:pos])
    magic, w, h, maxval = tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3])
    if magic not in (b"P5", b"P6") or maxval != 255:
        raise ImageError(f"{path}: only binary 8-bit PGM (P5) / PPM (P6) are supported")
    ch = 1 if magic == b"P5" else 3
    pix = np.frombuffer(data, np.uint8, count=w * h * ch, offset=pos + 1)
    return pix.reshape((h, w) if ch == 1 else (h, w, 3)).copy()


def load_image(path: Path) -> np.ndarray:
    """An image file as uint8 BGR (H, W, 3) or grey (H, W); ImageError names the file.

    ``.npy`` arrays are taken as they are (BGR or grey); PPM files are RGB and reversed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            img = np.load(path, allow_pickle=False)
        elif suffix in (".pgm", ".ppm"):
            img = _read_netpbm(path)
            img = np.ascontiguousarray(img[..., ::-1]) if img.ndim == 3 else img
        else:
            img = _decode_with_library(path)
    except ImageError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise ImageError(f"{path}: not a readable image ({exc})") from None
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ImageError(f"{path}: expected uint8 (H, W) or (H, W, 3), got {img.dtype} "
                         f"{img.shape}")
    return img


def _decode_with_library(path: Path) -> np.ndarray:
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise ImageError(f"{path}: not a readable image")
        return img
    try:
        from PIL import Image
    except ImportError:
        raise ImageError(f"{path}: decoding {path.suffix} needs OpenCV or Pillow "
                         "(or use .pgm/.ppm/.npy)") from None
    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB"))[..., ::-1])


def image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SourceError(f"{folder}: not a directory")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SourceError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def dir_frames(folder: Path, fps: float, loop: bool, pacer: Pacer,
               on_error: Callable[[str], None]) -> Iterator[np.ndarray]:
    """The folder's images in name order at ``fps``; unreadable files are reported, skipped."""
    media_t = 0.0
    while True:
        for path in image_files(folder):
            media_t += 1.0 / fps
            if not pacer.wait(media_t):
                return
            try:
                yield load_image(path)
            except ImageError as exc:
                on_error(str(exc))
        if not loop:
            return


def video_frames(path: Path, fps: float, loop: bool, pacer: Pacer) -> Iterator[np.ndarray]:
    """Frames of a video file resampled to ``fps`` (needs OpenCV)."""
    try:
        import cv2
    except ImportError:
        raise SourceError(f"{path}: reading video needs OpenCV (pip install "
                          "opencv-python-headless, or apt install python3-opencv)") from None
    media_t = 0.0
    while True:
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise SourceError(f"{path}: cannot open video")
        try:
            src_fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
            every = max(1, int(round(src_fps / fps)))
            i = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                if i % every == 0:
                    media_t += every / src_fps
                    if not pacer.wait(media_t):
                        return
                    yield frame
                i += 1
        finally:
            cap.release()
        if not loop:
            return


def camera_frames(cfg: CameraConfig, stop: threading.Event) -> Iterator[np.ndarray]:
    """Live frames at ``cfg.fps`` from picamera2 or OpenCV; failures are SourceError."""
    backend = cfg.backend
    if backend in ("auto", "picamera2"):
        try:
            from picamera2 import Picamera2  # apt: python3-picamera2
        except ImportError as exc:
            if backend == "picamera2":
                raise SourceError(f"picamera2 is not installed ({exc}); on Raspberry Pi OS: "
                                  "apt install python3-picamera2 and a venv made with "
                                  "--system-site-packages") from None
        else:
            yield from _picamera2_frames(Picamera2, cfg, stop)
            return
    yield from _opencv_frames(cfg, stop)


def _picamera2_frames(cls, cfg: CameraConfig, stop: threading.Event) -> Iterator[np.ndarray]:
    try:
        cam = cls()
        cam.configure(cam.create_preview_configuration(
            main={"size": (cfg.width, cfg.height), "format": "RGB888"}))
        cam.start()
    except Exception as exc:  # noqa: BLE001 - libcamera raises many types
        raise SourceError(f"picamera2: cannot start the camera: {exc}") from None
    try:
        while not stop.is_set():
            t = time.monotonic()
            try:
                frame = cam.capture_array()
            except Exception as exc:  # noqa: BLE001
                raise SourceError(f"picamera2: capture failed: {exc}") from None
            yield frame  # picamera2's "RGB888" is B, G, R in memory: OpenCV's BGR
            stop.wait(max(0.0, 1.0 / cfg.fps - (time.monotonic() - t)))
    finally:
        try:
            cam.stop()
            cam.close()
        except Exception:  # noqa: BLE001
            log.debug("picamera2: error on close", exc_info=True)


def _opencv_frames(cfg: CameraConfig, stop: threading.Event) -> Iterator[np.ndarray]:
    try:
        import cv2
    except ImportError:
        raise SourceError("no camera library: install python3-picamera2 (Raspberry Pi camera) "
                          "or opencv-python-headless (USB camera)") from None
    cap = cv2.VideoCapture(cfg.device)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"OpenCV: cannot open camera {cfg.device}")
    try:
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        while not stop.is_set():
            t = time.monotonic()
            ok, frame = cap.read()
            if not ok:
                raise SourceError(f"OpenCV: camera {cfg.device} returned no frame (unplugged?)")
            yield frame
            stop.wait(max(0.0, 1.0 / cfg.fps - (time.monotonic() - t)))
    finally:
        cap.release()
