"""Frame sources: image files and folders, video files, USB webcams (OpenCV) and the
Raspberry Pi camera (picamera2, imported only when used).  The only code that opens
cameras and decodes images: predict, calibrate, training and the daemon all read
frames through it (the daemon's workers add pacing and retries only).

Nothing here writes frames anywhere: they go to the face recogniser in memory.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from edge.vision.faces import import_cv2, to_gray_u8

log = logging.getLogger(__name__)

# ``.npy``: a uint8 (H, W) or (H, W, 3) BGR array saved with numpy (tests, demos)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp",
                  ".npy")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".h264", ".mjpeg")
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_PIXELS = 64_000_000  # refuse to decode more than this (a 8000×8000 image)
MAX_SIDE = 1920  # decoded frames larger than this are shrunk (area filter) before detection


class ImageError(ValueError):
    """An image that cannot be used; the message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class CameraError(RuntimeError):
    """A camera that is missing or busy; the message says what to do."""


def image_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, BMP or GIF header, without decoding; None if unknown."""
    try:
        if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
            return struct.unpack(">II", head[16:24])
        if head[:2] == b"BM" and len(head) >= 26:
            w, h = struct.unpack("<ii", head[18:26])
            return abs(w), abs(h)
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", head[6:10])
        if head[:2] == b"\xff\xd8":
            i = 2
            while i + 9 < len(head):
                if head[i] != 0xFF:
                    i += 1
                    continue
                marker = head[i + 1]
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                    i += 2
                    continue
                seg = struct.unpack(">H", head[i + 2 : i + 4])[0]
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    h, w = struct.unpack(">HH", head[i + 5 : i + 9])
                    return w, h
                i += 2 + seg
    except struct.error:
        return None
    return None


def shrink(image: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """Shrink an image so that its longer side is at most ``max_side`` (area filter)."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    cv2 = import_cv2()
    s = max_side / max(h, w)
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA)


def load_image(path: Path | str, gray: bool = True, max_side: int | None = MAX_SIDE) -> np.ndarray:
    """Decode an image file to grayscale uint8 (H, W) (or BGR uint8 with gray=False).

    Colour, palette, RGBA (alpha dropped), 16-bit and float images are converted;
    images larger than ``max_side`` are shrunk.  Every problem is an ImageError that
    names the file: missing, a folder, empty, too big, unreadable or corrupt.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(path, "file not found")
    if path.is_dir():
        raise ImageError(path, "is a directory, expected an image file")
    size = path.stat().st_size
    if size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise ImageError(path, f"file too large ({size / 2**20:.0f} MiB; limit "
                               f"{MAX_FILE_BYTES // 2**20} MiB)")
    img = _load_npy(path) if path.suffix.lower() == ".npy" else _decode(path)
    try:
        return as_frame(img, gray=gray, max_side=max_side)
    except ValueError as exc:
        raise ImageError(path, str(exc)) from None


def _load_npy(path: Path) -> np.ndarray:
    """A saved array, as it is (no decoder, no header to check)."""
    try:
        img = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ImageError(path, f"not a readable .npy array ({exc})") from None
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ImageError(path, f"expected uint8 (H, W) or (H, W, 3), got {img.dtype} {img.shape}")
    if img.size == 0:
        raise ImageError(path, "image has no pixels")
    return img


def _decode(path: Path) -> np.ndarray:
    """An image file decoded by OpenCV, after the checks of its header and size."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImageError(path, f"cannot read file ({exc.strerror or exc})") from None
    dims = image_size(raw[:65536])
    if dims is not None and dims[0] * dims[1] > MAX_PIXELS:
        raise ImageError(path, f"image too large to decode: {dims[0]}×{dims[1]} pixels (limit "
                               f"{MAX_PIXELS // 1_000_000} megapixels); shrink it first")
    if dims is not None and (dims[0] == 0 or dims[1] == 0):
        raise ImageError(path, f"image has no pixels ({dims[0]}×{dims[1]})")
    if raw[:2] == b"\xff\xd8" and b"\xff\xd9" not in raw[-64:]:
        # libjpeg would fill the missing rows with grey and carry on
        raise ImageError(path, "truncated JPEG (no end-of-image marker): re-copy or re-save it")
    cv2 = import_cv2()
    try:
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageError(path, f"not a readable image ({str(exc).strip().splitlines()[-1]})") from None
    if img is None:
        kind = "truncated or corrupt image" if dims is not None else "not a readable image"
        raise ImageError(path, f"{kind} (OpenCV could not decode it; supported: "
                               f"{', '.join(IMAGE_SUFFIXES)})")
    if img.size == 0:
        raise ImageError(path, "image has no pixels")
    return img


def as_frame(img: np.ndarray, gray: bool = True, max_side: int | None = MAX_SIDE) -> np.ndarray:
    """Any decoded image → grayscale uint8 (H, W), or BGR uint8 (H, W, 3) with gray=False
    (in NumPy: a camera frame needs no OpenCV on its way to the detector)."""
    if img.ndim == 3 and img.shape[2] > 4:
        raise ValueError(f"unsupported image with {img.shape[2]} channels")
    if gray:
        out = to_gray_u8(img)
    elif img.ndim == 2 or img.shape[2] == 1:
        out = np.repeat(to_gray_u8(img)[:, :, None], 3, axis=2)
    else:
        x = img
        if x.dtype == np.uint16:
            x = (x >> 8).astype(np.uint8)
        elif x.dtype.kind == "f":
            x = np.clip(np.nan_to_num(x) * 255 + 0.5, 0, 255).astype(np.uint8)
        out = np.ascontiguousarray(x[:, :, :3])  # BGRA → BGR: the alpha dropped
    return shrink(out, max_side) if max_side else out


def iter_image_files(paths: list[Path | str]) -> Iterator[Path]:
    """Files given, and image files found recursively in folders given, sorted."""
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*")
                              if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield p


# ---------------------------------------------------------------- frame sources
class FrameSource:
    """Yields BGR uint8 frames; ``close()`` releases the device."""

    name = "frames"

    def frames(self) -> Iterator[np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageFiles(FrameSource):
    """Image files and folders as frames; unreadable files are skipped: handed to
    ``on_error`` (which reports them), else logged."""

    def __init__(self, paths: list[Path | str], on_error: Callable[[str], None] | None = None):
        self.paths = list(paths)
        self.name = "images"
        self.errors: list[str] = []
        self.on_error = on_error

    def frames(self) -> Iterator[np.ndarray]:
        for path in iter_image_files(self.paths):
            try:
                yield load_image(path, gray=False)
            except ImageError as exc:
                self.errors.append(str(exc))
                if self.on_error is not None:
                    self.on_error(str(exc))
                else:
                    log.warning("%s", exc)


class VideoFile(FrameSource):
    """A video file decoded with OpenCV."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.name = str(path)
        if not self.path.is_file():
            raise ImageError(self.path, "video file not found")
        cv2 = import_cv2()
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise ImageError(self.path, "not a readable video file (OpenCV could not open it)")
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 25.0)  # frames per second of video

    def frames(self) -> Iterator[np.ndarray]:
        while True:
            ok, frame = self._cap.read()
            if not ok:
                return
            yield as_frame(frame, gray=False)

    def close(self) -> None:
        self._cap.release()


class OpenCVCamera(FrameSource):
    """A USB webcam through OpenCV's VideoCapture (V4L2 on Linux)."""

    def __init__(self, index: int = 0, size: tuple[int, int] = (320, 240)):
        cv2 = import_cv2()
        self.name = f"/dev/video{index}"
        backend = cv2.CAP_V4L2 if os.name == "posix" and hasattr(cv2, "CAP_V4L2") else cv2.CAP_ANY
        self._cap = cv2.VideoCapture(index, backend)
        if not self._cap.isOpened():
            self._cap.release()
            raise CameraError(
                f"camera {self.name}: cannot open it. Check that a webcam is plugged in "
                f"(`ls /dev/video*`, `v4l2-ctl --list-devices`), that this user is in the "
                f"'video' group, and that no other program (another edge-cli, a browser, "
                f"motion) is using it; or pick another: camera.device = N in the daemon's "
                f"config, --camera N for edge-cli calibrate."
            )
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # always the newest frame, never a backlog

    def frames(self) -> Iterator[np.ndarray]:
        failures = 0
        while True:
            ok, frame = self._cap.read()
            if not ok:
                failures += 1
                if failures >= 10:
                    raise CameraError(f"camera {self.name}: stopped delivering frames "
                                      "(unplugged, or taken by another program?)")
                time.sleep(0.1)
                continue
            failures = 0
            yield as_frame(frame, gray=False)

    def close(self) -> None:
        self._cap.release()


PICAMERA2_MISSING = (
    "picamera2 is not installed in this Python: on Raspberry Pi OS run "
    "`sudo apt install python3-picamera2` and create the venv with --system-site-packages "
    "(pip cannot build it); or use a USB webcam: camera.backend = \"opencv\" in the "
    "daemon's config, --camera N for edge-cli calibrate"
)


def picamera2_error(exc: BaseException) -> CameraError:
    """A CameraError that says what to do, for an exception from Picamera2()."""
    msg = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if "in use" in msg.lower() or "busy" in msg.lower():
        return CameraError(
            f"the Pi camera is busy ({msg.strip()}): another process holds it. Stop it "
            f"(e.g. another edge-cli or the moodedge service: `sudo systemctl stop moodedge`; "
            f"rpicam-*/libcamera-* apps), find it with `sudo fuser -v /dev/media* /dev/video*`, "
            f"then try again."
        )
    if isinstance(exc, IndexError) or "no camera" in msg.lower() or "list index" in msg.lower():
        return CameraError(
            "no Pi camera found: check the ribbon cable and that the camera is enabled, "
            "then run `rpicam-hello --list-cameras` (older OS: `libcamera-hello "
            "--list-cameras`); or use a USB webcam: camera.backend = \"opencv\" in the "
            "daemon's config, --camera N for edge-cli calibrate"
        )
    return CameraError(f"the Pi camera could not be started: {msg}")


class PiCamera(FrameSource):
    """The Raspberry Pi camera through picamera2 (imported here, only when used)."""

    def __init__(self, size: tuple[int, int] = (320, 240), camera_num: int = 0):
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise CameraError(PICAMERA2_MISSING) from None
        self.name = f"picamera2:{camera_num}"
        try:
            self._cam = Picamera2(camera_num)
            config = self._cam.create_video_configuration(
                main={"size": tuple(size), "format": "RGB888"}, buffer_count=2)
            self._cam.configure(config)
            self._cam.start()
        except Exception as exc:  # noqa: BLE001 - libcamera raises many kinds
            raise picamera2_error(exc) from exc

    def frames(self) -> Iterator[np.ndarray]:
        while True:
            try:
                # picamera2's "RGB888" is B,G,R in memory: already OpenCV's order.
                frame = self._cam.capture_array("main")
            except Exception as exc:  # noqa: BLE001 - libcamera raises many kinds (a
                # RuntimeError killed the camera worker, and the daemon, instead of a retry)
                raise CameraError(f"camera picamera2: capture failed ({exc}); "
                                  "unplugged ribbon cable?") from exc
            yield frame

    def close(self) -> None:
        try:
            self._cam.stop()
            self._cam.close()
        except Exception:  # noqa: BLE001
            pass


def open_source(spec: str, size: tuple[int, int] = (320, 240)) -> FrameSource:
    """``picamera``, a webcam index (``0``), a video file, or an image file/folder."""
    if spec in ("pi", "picamera", "picamera2"):
        return PiCamera(size)
    if spec.isdigit():
        return OpenCVCamera(int(spec), size)
    path = Path(spec)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFiles([path])
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoFile(path)
    raise ValueError(f"{spec}: expected 'picamera', a webcam number, a video file or images")


def open_camera(backend: str = "auto", index: int = 0,
                size: tuple[int, int] = (320, 240)) -> FrameSource:
    """The camera ``backend`` names: ``picamera2``, ``opencv`` (webcam ``index``), or
    ``auto``: the Pi camera when picamera2 is installed, else the webcam."""
    if backend == "picamera2" or (backend == "auto" and _have_picamera2()):
        return PiCamera(size)
    return OpenCVCamera(index, size)


def _have_picamera2() -> bool:
    try:
        import picamera2  # noqa: F401 - apt: python3-picamera2
    except ImportError:
        return False
    return True
