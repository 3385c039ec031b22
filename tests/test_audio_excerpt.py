"""edge.audio.sources.decode_excerpt: the middle of a long track, resampled, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from edge.audio.sources import AudioFileError, decode_excerpt


def test_middle_excerpt_of_a_long_stereo_track_resampled(tmp_path):
    """60 s at 44.1 kHz stereo: 20 s of 200 Hz, 20 s of 1 kHz, 20 s of 3 kHz; the middle
    20 s at 16 kHz mono is the 1 kHz part, and the duration is the whole track's."""
    sr = 44100
    t = np.arange(20 * sr) / sr
    x = np.concatenate([0.3 * np.sin(2 * np.pi * f * t) for f in (200, 1000, 3000)])
    path = tmp_path / "long.flac"
    sf.write(path, np.column_stack([x, x]).astype(np.float32), sr)
    audio, duration = decode_excerpt(path, 16000, 20.0, 5.0)
    assert audio.dtype == np.float32 and audio.shape == (320000,)
    assert duration == pytest.approx(60.0)
    spec = np.abs(np.fft.rfft(audio[16000:-16000]))
    assert np.fft.rfftfreq(len(audio) - 32000, 1 / 16000)[spec.argmax()] == pytest.approx(1000, abs=2)
    assert np.sqrt(np.mean(audio**2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.02)


def test_refusals_name_the_reason(tmp_path):
    sr = 16000
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(3 * sr, np.float32), sr)
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    text = tmp_path / "notes.ogg"
    text.write_text("not audio\n" * 50)
    m4a = tmp_path / "song.m4a"
    m4a.write_bytes(b"\0" * 100)
    for path, why in ((short, "too short"), (empty, "empty file"), (text, "unreadable"),
                      (m4a, "no decoder for M4A/AAC"), (tmp_path / "gone.flac", "file not found")):
        with pytest.raises(AudioFileError, match=why) as exc:
            decode_excerpt(path, sr, 20.0, 5.0)
        assert exc.value.path == str(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_float_file_with_samples_that_are_not_numbers_is_refused(tmp_path, bad):
    """Regression: a 32-bit float WAV holding NaN or infinity decoded "fine": `library scan`
    gave it a valence and arousal from garbage int8 input and stored it as a track, and
    `predict` called it silence. Both decoders now refuse it, naming the file and how many."""
    from edge.audio.sources import load_audio

    sr = 16000
    x = (0.3 * np.sin(2 * np.pi * 220 * np.arange(30 * sr) / sr)).astype(np.float32)
    x[sr: sr + 10] = bad
    path = tmp_path / "corrupt.wav"
    sf.write(path, x, sr, subtype="FLOAT")
    with pytest.raises(AudioFileError, match=r"10 samples are not finite numbers") as exc:
        decode_excerpt(path, sr, 40.0, 5.0)
    assert exc.value.path == str(path)
    with pytest.raises(AudioFileError, match=r"10 samples are not finite numbers"):
        load_audio(path, sr)
    x[sr: sr + 10] = 0.0  # the same file, finite: decoded
    sf.write(path, x, sr, subtype="FLOAT")
    assert np.isfinite(load_audio(path, sr)).all() and decode_excerpt(path, sr, 40.0, 5.0)[1] == 30.0
