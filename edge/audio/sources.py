"""Audio sources: decoded files and the microphone (sounddevice), as float32 mono.
The only code that opens microphones and audio files (the daemon's workers add pacing
and retries only): whole files for speech (:func:`load_audio`), a bounded excerpt of a
music track for the library scanner and the music model (:func:`decode_excerpt`).

Nothing here writes audio anywhere: blocks go to the feature extractor in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.lograte import RepeatLog

log = logging.getLogger(__name__)

# What libsndfile decodes for us: WAV, FLAC and Ogg (Vorbis or Opus; Opus decodes at 16 kHz).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus")
#: What the music scanner offers to :func:`decode_excerpt` (MP3 since libsndfile 1.1;
#: M4A/AAC has no libsndfile decoder: refused with that reason, so the user knows why).
MUSIC_SUFFIXES = AUDIO_SUFFIXES + (".mp3", ".m4a", ".aac", ".aif", ".aiff")
UNDECODABLE = {".m4a": "M4A/AAC", ".aac": "AAC"}


class MicrophoneError(RuntimeError):
    """The microphone cannot be opened or read (sounddevice's ``PortAudioError``, which is
    not a RuntimeError in sounddevice 0.5, is raised as this); the daemon retries it."""


class AudioFileError(ValueError):
    """An audio file that cannot be used; the message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class SampleRateError(AudioFileError):
    """A file at another rate than asked for, where the caller does not resample; a command
    that can resample on request adds how (``edge-cli predict --resample``)."""


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioFileError(path, "file not found")
    if path.is_dir():
        raise AudioFileError(path, "is a directory, expected an audio file")
    if path.stat().st_size == 0:
        raise AudioFileError(path, "empty file (0 bytes)")


def _check_finite(path: Path, data: np.ndarray) -> None:
    """A float file can hold NaN or infinity, which no microphone records: refuse it (the
    features and the int8 model would turn them into an answer)."""
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise AudioFileError(path, f"{bad} samples are not finite numbers (NaN or infinity): "
                                   "a corrupt floating-point file")


def _mono(data: np.ndarray) -> np.ndarray:
    return data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]


def load_audio(path: Path | str, sample_rate: int, resample: bool = False) -> np.ndarray:
    """Decode a WAV, FLAC or Ogg (Vorbis/Opus) file to float32 mono in [-1, 1] at ``sample_rate``.

    Multi-channel audio is averaged to mono. A different sample rate is an error unless
    ``resample`` (band-limited, :mod:`edge.audio.resample`); a lower rate than the
    model's is resampled with a warning, as the upper band is missing.
    """
    import soundfile as sf

    path = Path(path)
    _check_file(path)
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioFileError(path, f"not a readable WAV/FLAC/Ogg audio file ({exc})") from None
    if info.samplerate != sample_rate and not resample:
        raise SampleRateError(
            path,
            f"sample rate {info.samplerate} Hz, expected {sample_rate} Hz "
            f"(convert with: sox '{path.name}' -r {sample_rate} out.wav)",
        )
    try:
        data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioFileError(path, f"truncated or corrupt audio ({exc})") from None
    if data.shape[0] == 0:
        raise AudioFileError(path, "no audio samples in file")
    _check_finite(path, data)
    if info.frames > 0 and data.shape[0] < info.frames:
        raise AudioFileError(
            path, f"truncated audio: header says {info.frames} samples, decoded {data.shape[0]}"
        )
    mono = _mono(data)
    if info.samplerate != sample_rate:
        from edge.audio.resample import resample as band_limited

        if info.samplerate < sample_rate:
            log.warning("%s: %d Hz resampled up to %d Hz: nothing above %d Hz, the model "
                        "was trained with sound up to %d Hz", path, info.samplerate,
                        sample_rate, info.samplerate // 2, sample_rate // 2)
        mono = band_limited(mono, info.samplerate, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def decode_excerpt(path: Path | str, sample_rate: int, excerpt_s: float,
                   min_s: float) -> tuple[np.ndarray, float]:
    """(mono float32 excerpt at ``sample_rate``, full duration in seconds) of a music file.

    The excerpt is the middle ``excerpt_s`` seconds (all of a shorter track): the file is
    seeked, so only that much is decoded however long the track; another sample rate is
    resampled (band-limited).  :class:`AudioFileError` with the reason: empty, not audio,
    no decoder, truncated, too short.
    """
    import soundfile as sf

    path = Path(path)
    _check_file(path)
    if path.suffix.lower() in UNDECODABLE:
        raise AudioFileError(path, f"no decoder for {UNDECODABLE[path.suffix.lower()]} here "
                                   "(libsndfile reads WAV, FLAC, Ogg, Opus, MP3)")
    try:
        f = sf.SoundFile(str(path))
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioFileError(path, f"unreadable: not an audio stream libsndfile knows ({exc})") from None
    with f:
        sr, total = f.samplerate, f.frames
        duration = total / sr if total > 0 else 0.0
        if 0 < total < min_s * sr:
            raise AudioFileError(path, f"too short: {duration:.1f} s, need at least {min_s:g} s")
        want = int(round(excerpt_s * sr))
        start = max(0, (total - want) // 2) if total > 0 else 0
        try:
            if start:
                f.seek(start)
            data = f.read(min(want, total - start) if total > 0 else want, dtype="float32",
                          always_2d=True)
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise AudioFileError(path, f"truncated or corrupt audio ({exc})") from None
    expected = min(want, total - start) if total > 0 else 0
    if data.shape[0] == 0:
        raise AudioFileError(path, "no audio samples in file")
    if data.shape[0] < expected:
        raise AudioFileError(path, f"truncated audio: header says {total} samples, the excerpt "
                                   f"at {start} ended after {data.shape[0]} of {expected}")
    if data.shape[0] < min_s * sr:
        raise AudioFileError(path, f"too short: {data.shape[0] / sr:.1f} s of audio, need at "
                                   f"least {min_s:g} s")
    _check_finite(path, data)
    mono = _mono(data)
    if sr != sample_rate:
        from edge.audio.resample import resample

        mono = resample(mono, sr, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32), duration or data.shape[0] / sr


def iter_audio_files(paths: list[Path | str]) -> Iterator[Path]:
    """Files given, and audio files (AUDIO_SUFFIXES) found recursively in folders given, sorted."""
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.suffix.lower() in AUDIO_SUFFIXES)
        else:
            yield p


@dataclass(frozen=True)
class Chunk:
    """A block of samples; ``end_of_file`` marks the last block of a file."""

    samples: np.ndarray
    end_of_file: bool = False


def file_chunks(files: Sequence[Path], sample_rate: int, block_s: float = 0.1,
                on_error: Callable[[AudioFileError], None] | None = None) -> Iterator[Chunk]:
    """The files, and the audio files in folders given (:func:`iter_audio_files`), in
    turn as blocks, like the microphone gives (the last of each marked), at ``sample_rate``
    whatever the file's (resampled, as a microphone at another rate is).  Each file is
    decoded when its turn comes; one that cannot be used raises AudioFileError naming it,
    or, with ``on_error``, is handed to it and skipped."""
    n = max(1, int(round(block_s * sample_rate)))
    for path in iter_audio_files(list(files)):
        try:
            x = load_audio(path, sample_rate, resample=True)
        except AudioFileError as exc:
            if on_error is None:
                raise
            on_error(exc)
            continue
        for i in range(0, len(x), n):
            yield Chunk(x[i : i + n], end_of_file=i + n >= len(x))


def find_input_device(name: str | None) -> int | None:
    """Index of the first input device whose name contains ``name`` (case-insensitive).

    Indexes differ between a login shell and systemd, so the config names the device.
    ``None`` means the system default. Raises LookupError listing the inputs seen.
    """
    if not name:
        return None
    import sounddevice as sd

    devices = sd.query_devices()
    inputs = [(i, d["name"]) for i, d in enumerate(devices) if d["max_input_channels"] > 0]
    for i, dname in inputs:
        if name.lower() in dname.lower():
            return i
    raise LookupError(
        f"audio input device {name!r} not found; inputs are: "
        + (", ".join(repr(n) for _, n in inputs) or "none")
    )


def capture_rate(sd, index: int | None, rate: int) -> int:
    """``rate`` if the input records at it, else the input's own default rate (many I2S
    and some USB microphones take 44.1 or 48 kHz only; the caller resamples)."""
    try:
        sd.check_input_settings(device=index, channels=1, samplerate=rate, dtype="float32")
        return rate
    except Exception as exc:  # noqa: BLE001 - sounddevice.PortAudioError (not an OSError), ValueError
        try:
            own = int(round(float(sd.query_devices(index, "input")["default_samplerate"])))
        except Exception:  # noqa: BLE001 - no such input at all: the first error says why
            raise exc from None
        if own == rate:
            raise
        log.info("the microphone does not record at %d Hz: recording at its own %d Hz, "
                 "resampled to %d Hz", rate, own, rate)
        return own


def microphone_blocks(
    device: str | None, sample_rate: int, block_s: float = 0.1, stop=None
) -> Iterator[np.ndarray]:
    """Blocks of float32 mono audio at ``sample_rate`` from the microphone until ``stop()``
    is true; a microphone that does not record at that rate records at its own and is
    resampled as it streams (:class:`edge.audio.resample.StreamResampler`)."""
    import queue

    import sounddevice as sd

    q: queue.Queue[np.ndarray] = queue.Queue(maxsize=50)
    drops = RepeatLog(log)  # a line per dropped block flooded the journal (10 a second)

    def callback(indata, frames, time_info, status):  # runs on PortAudio's thread
        if status:
            log.debug("audio input status: %s", status)
        try:
            q.put_nowait(indata[:, 0].copy())
        except queue.Full:
            drops.report("full", "audio queue full: dropping blocks (the pipeline is behind)")

    try:
        index = find_input_device(device)
        rate = capture_rate(sd, index, sample_rate)
        convert = None
        if rate != sample_rate:
            from edge.audio.resample import StreamResampler

            convert = StreamResampler(rate, sample_rate)
        with sd.InputStream(
            device=index,
            channels=1,
            samplerate=rate,
            dtype="float32",
            blocksize=int(round(block_s * rate)),
            callback=callback,
        ):
            while stop is None or not stop():
                try:
                    block = q.get(timeout=0.5)
                except queue.Empty:
                    continue
                yield block if convert is None else convert.push(block)
    except sd.PortAudioError as exc:  # "Error querying device -1": no default input
        raise MicrophoneError(str(exc)) from exc


def reinit_portaudio() -> None:
    """Make PortAudio scan devices again (one plugged in after start is otherwise unseen)."""
    try:
        import sounddevice as sd

        sd._terminate()
        sd._initialize()
    except Exception as exc:  # noqa: BLE001 - best effort; the next open reports the error
        log.debug("PortAudio re-initialisation failed: %s", exc)
