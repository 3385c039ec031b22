"""Decode a bounded excerpt from the middle of a music file, 16 kHz mono float32.

Built on soundfile (libsndfile: WAV, FLAC, Ogg Vorbis/Opus, MP3 since 1.1) and the
project's band-limited resampler, like :func:`edge.audio.sources.load_audio`, but it
seeks: only ``excerpt_s`` seconds are read, however long the track.  (This belongs in
``edge/audio/sources.py`` once that module's restructuring lands.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.audio.sources import AudioFileError

#: What the scanner offers to the decoder (M4A/AAC has no libsndfile decoder: refused
#: with that reason, so the user knows why).
MUSIC_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif",
                  ".aiff")
UNDECODABLE = {".m4a": "M4A/AAC", ".aac": "AAC"}


def decode_excerpt(path: Path | str, sample_rate: int, excerpt_s: float,
                   min_s: float) -> tuple[np.ndarray, float]:
    """(mono float32 excerpt at ``sample_rate``, full duration in seconds).

    The excerpt is the middle ``excerpt_s`` seconds (all of a shorter track).
    :class:`AudioFileError` with the reason: empty, not audio, no decoder, truncated,
    too short.
    """
    import soundfile as sf

    path = Path(path)
    if path.stat().st_size == 0:
        raise AudioFileError(path, "empty file (0 bytes)")
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
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if sr != sample_rate:
        from edge.audio.resample import resample

        mono = resample(mono, sr, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32), duration or data.shape[0] / sr
