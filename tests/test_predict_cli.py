"""edge-cli predict on real files, folders and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
from conftest import needs_data, ravdess_clip, run_cli

from edge.labels import VOCABULARY


def parse_lines(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@needs_data
def test_predict_json_on_files_and_folders(tmp_path):
    folder = tmp_path / "clips" / "nested"
    folder.mkdir(parents=True)
    for emo in ("03", "04"):
        src = ravdess_clip(21, emo)
        (folder / src.name).write_bytes(src.read_bytes())
    one = ravdess_clip(19, "05")
    res = run_cli("predict", "--json", str(one), str(tmp_path / "clips"))
    assert res.returncode == 0, res.stderr
    objs = parse_lines(res.stdout)
    assert [o["path"] for o in objs][0] == str(one)
    assert len(objs) == 3
    for o in objs:
        assert o["modality"] == "speech"
        assert o["label"] in VOCABULARY
        assert set(o["probabilities"]) == set(VOCABULARY)
        assert math.isclose(sum(o["probabilities"].values()), 1.0, abs_tol=1e-3)
        assert o["label"] == max(o["probabilities"], key=o["probabilities"].get)
        assert -1 <= o["valence"] <= 1 and -1 <= o["arousal"] <= 1


def test_predict_silence_gives_no_guess(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(3 * 16000, np.float32), 16000)
    res = run_cli("predict", "--json", str(path))
    assert res.returncode == 0, res.stderr
    (obj,) = parse_lines(res.stdout)
    assert obj["label"] is None and obj["probabilities"] == {} and obj["valence"] is None


@needs_data
def test_bad_inputs_are_named_and_the_rest_still_run(tmp_path):
    good = ravdess_clip(19, "05")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 20)
    truncated = tmp_path / "truncated.flac"
    truncated.write_bytes(good.read_bytes()[:3000])
    rate = tmp_path / "cd.wav"
    sf.write(rate, np.zeros(44100, np.float32), 44100)
    missing = tmp_path / "missing.wav"
    res = run_cli("predict", "--json", str(empty), str(text), str(truncated), str(rate),
                  str(missing), str(good))
    assert res.returncode == 1
    objs = parse_lines(res.stdout)
    assert len(objs) == 6
    errors = {o["path"]: o["error"] for o in objs if "error" in o}
    assert "empty file" in errors[str(empty)]
    assert "not a readable WAV/FLAC" in errors[str(text)]
    assert "truncated" in errors[str(truncated)] or "corrupt" in errors[str(truncated)]
    assert "44100 Hz, expected 16000 Hz" in errors[str(rate)]
    assert "file not found" in errors[str(missing)]
    assert objs[-1]["label"] in VOCABULARY
    for path in errors:
        assert path in res.stderr


def test_a_folder_with_nothing_to_recognise_is_an_error_not_a_silent_success(tmp_path):
    """Regression: ``predict FOLDER`` on a folder holding neither audio nor images (a
    wrong folder, music in a format it does not read) printed nothing and exited 0, as
    if it had been given something to say. Now the folder is named with what was looked
    for, exit 1, and the other paths still run."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "song.mp4").write_bytes(b"\x00" * 64)
    res = run_cli("predict", "--json", str(folder), str(ravdess_clip(19, "05")))
    assert res.returncode == 1
    objs = parse_lines(res.stdout)
    assert objs[0] == {"path": str(folder), "error": objs[0]["error"]}
    assert "no audio (.wav/.flac/.ogg/.oga/.opus) or image (" in objs[0]["error"]
    assert f"error: {folder}: no audio" in res.stderr
    assert objs[1]["label"] in VOCABULARY


def test_human_output_and_missing_model(tmp_path):
    res = run_cli("predict", "--speech-model", str(tmp_path / "nope.tflite"), "x.wav")
    assert res.returncode == 2
    assert "nope.json: manifest not found" in res.stderr


@needs_data
def test_resample_other_rates_on_request(tmp_path):
    """A real clip stored at 48 kHz and 44.1 kHz: an error by default, and with --resample
    nearly the 16 kHz file's prediction."""
    from edge.audio.resample import resample

    src = ravdess_clip(20, "05")
    x, rate = sf.read(src, dtype="float32")
    assert rate == 16000
    for hz in (48000, 44100):
        sf.write(tmp_path / f"clip_{hz}.wav", resample(x, 16000, hz), hz, subtype="PCM_16")
    low = tmp_path / "phone.wav"
    sf.write(low, resample(x, 16000, 8000), 8000, subtype="PCM_16")
    res = run_cli("predict", "--json", str(tmp_path / "clip_48000.wav"))
    assert res.returncode == 1 and "pass --resample" in res.stderr
    res = run_cli("predict", "--json", "--resample", str(src), str(tmp_path))
    assert res.returncode == 0, res.stderr
    ref, *others = parse_lines(res.stdout)
    assert [o["path"] for o in others] == [str(tmp_path / n) for n in
                                           ("clip_44100.wav", "clip_48000.wav", "phone.wav")]
    for o in others[:2]:
        assert o["label"] == ref["label"]
        diff = max(abs(o["probabilities"][k] - ref["probabilities"][k]) for k in VOCABULARY)
        assert diff < 0.02, (o["path"], diff)
    assert "8000 Hz resampled up to 16000 Hz" in res.stderr  # said, not hidden


def test_resampler_keeps_a_tone_and_the_length():
    from edge.audio.resample import resample

    for rate_in in (48000, 44100, 24414, 22050):
        t = np.arange(int(rate_in * 17.3)) / rate_in  # long enough for several blocks
        x = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 3000 * t)
             + 0.2 * np.sin(2 * np.pi * 9000 * t)).astype(np.float32)  # 9 kHz: above 8 kHz
        y = resample(x, rate_in, 16000)
        assert len(y) == round(len(x) * 16000 / rate_in)
        to = np.arange(len(y)) / 16000
        want = 0.5 * np.sin(2 * np.pi * 440 * to) + 0.3 * np.sin(2 * np.pi * 3000 * to)
        assert np.abs(y - want)[16000:-16000].max() < 1e-3, rate_in  # 9 kHz removed
    assert len(resample(np.zeros(5, np.float32), 48000, 16000)) == 2


def test_a_short_clip_is_resampled_without_drifting_in_time():
    """Regression: a clip shorter than a block (under ~8.5 s) at 22.05 or 11.025 kHz was
    resampled in one piece padded to a length the rate ratio does not divide, so the output
    drifted by up to half a sample towards its end (a 1 kHz tone off by 0.24)."""
    from edge.audio.resample import resample

    for rate_in in (22050, 11025, 24414, 44100, 48000, 8000):
        for seconds in (0.7, 2.0, 5.3):
            t = np.arange(int(rate_in * seconds)) / rate_in
            y = resample(np.sin(2 * np.pi * 1000 * t).astype(np.float32), rate_in, 16000)
            assert len(y) == round(len(t) * 16000 / rate_in)
            want = np.sin(2 * np.pi * 1000 * np.arange(len(y)) / 16000)
            assert np.abs(y - want)[800:-800].max() < 2e-3, (rate_in, seconds)


@needs_data
def test_predict_reads_ogg_opus_files_and_folders(tmp_path):
    """Regression: a folder of .opus clips (the newer corpora) was skipped silently, exit 0."""
    from conftest import DATA

    src = sorted((DATA / "speech" / "ased" / "angry").glob("*.opus"))[:2]
    folder = tmp_path / "opus"
    folder.mkdir()
    for p in src:
        (folder / p.name).write_bytes(p.read_bytes())
    res = run_cli("predict", "--json", str(folder))
    assert res.returncode == 0, res.stderr
    objs = parse_lines(res.stdout)
    assert sorted(o["path"] for o in objs) == sorted(str(folder / p.name) for p in src)
    assert all(o["modality"] == "speech" and o["windows"] >= 1 for o in objs)


@pytest.mark.parametrize("argv", [
    ["predict", ""],
    ["predict", "--annotate", "", "x.png"],
    ["library", "scan", ""],
    ["library", "scan", "--db", " ", "music"],
    ["run", "--audio-file", ""],
    ["demo", "--image-dir", ""],
    ["calibrate", "--state-dir", ""],
    ["catalog", "import", ""],
    ["config", "check", ""],
])
def test_an_empty_path_argument_is_refused_not_taken_for_the_current_folder(argv, capsys):
    """Regression: Path("") is the current folder, so `edge-cli predict "$CLIPS"` or
    `library scan "$MUSIC"` with an unset variable went through whatever lay in the working
    folder, recursively, and exited 0 (and `calibrate --state-dir ""` wrote there). Every
    file or folder argument now refuses an empty string: exit 2 naming the argument."""
    from edge.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "expected a file or folder, got an empty string" in err
    assert "argument" in err


@pytest.mark.parametrize(("args", "said"), [
    (["listen", "--timeout", "-5"], "argument --timeout: expected a number ≥ 0, got -5"),
    (["listen", "--count", "-1"], "argument --count: expected an integer ≥ 0, got -1"),
    (["listen", "--mqtt-port", "0"], "argument --mqtt-port: expected an integer in [1, 65535], got 0"),
    (["demo", "--timeout", "0"], "argument --timeout: expected a number > 0, got 0"),
    (["calibrate", "--seconds", "-1"], "argument --seconds: expected a number in (0, 600], got -1"),
    (["calibrate", "--seconds", "nan"], "argument --seconds: expected a number in (0, 600], got nan"),
    (["calibrate", "--sample-rate", "0"],
     "argument --sample-rate: expected an integer in [8000, 192000], got 0"),
    (["predict", "--vad-threshold-db", "nan", "x.wav"],
     "argument --vad-threshold-db: expected a number in [-120, 0], got nan"),
    (["library", "scan", "--workers", "0", "x"], "argument --workers: expected an integer ≥ 1, got 0"),
])
def test_numbers_a_command_cannot_use_are_refused_naming_the_argument(capsys, args, said):
    """A negative --timeout or --count, a NaN or negative --seconds, a zero --sample-rate
    were taken: listen ran forever or returned at once, calibrate recorded nothing and
    failed its steps as if the microphone had; now exit 2 naming the argument."""
    from edge.cli import build_parser

    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(args)
    assert e.value.code == 2 and said in capsys.readouterr().err


@pytest.mark.parametrize("rate_in", [48000, 44100, 32000, 22050])
def test_the_stream_resampler_is_the_same_however_the_blocks_fall_and_keeps_the_band(rate_in):
    """edge.audio.resample.StreamResampler (a microphone that records at 44.1 or 48 kHz
    only): output independent of the block sizes, a tone inside the band kept (and where
    it should be in time), one above 8 kHz removed."""
    from edge.audio.resample import StreamResampler

    t = np.arange(2 * rate_in) / rate_in
    x = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 3000 * t)
         + 0.2 * np.sin(2 * np.pi * 9000 * t * (rate_in > 18000))).astype(np.float32)
    whole = StreamResampler(rate_in, 16000).push(x)
    r, rng, parts, i = StreamResampler(rate_in, 16000), np.random.default_rng(1), [], 0
    while i < len(x):
        n = int(rng.integers(1, 6000))
        parts.append(r.push(x[i:i + n]))
        i += n
    blocks = np.concatenate(parts)
    assert blocks.shape == whole.shape  # the same samples, to rounding (BLAS sums in its order)
    np.testing.assert_allclose(blocks, whole, rtol=0, atol=1e-6)
    assert 32000 - len(whole) < 0.005 * 16000  # all but the filter's reach (about 1 ms)
    to = np.arange(len(whole)) / 16000
    want = 0.5 * np.sin(2 * np.pi * 440 * to) + 0.3 * np.sin(2 * np.pi * 3000 * to)
    assert np.abs(whole - want)[200:].max() < 2e-3, rate_in
    assert StreamResampler(rate_in, 16000).push(np.zeros(0, np.float32)).size == 0


def test_a_corpus_file_at_another_rate_is_named_without_a_flag_training_does_not_have(tmp_path):
    """Regression (the same kind as calibrate's and the daemon's file source): training's
    decoding said "pass --resample" for a wrong-rate corpus file, a flag training.speech does
    not have. The shared decoder now names the file, the rates and the sox command; only
    predict, which has the flag, adds it."""
    from edge.audio.sources import SampleRateError
    from training.datasets import Clip
    from training.speech import load_signals

    path = tmp_path / "03-01-05-01-01-01-01.wav"
    sf.write(path, np.zeros(44100, np.float32), 44100)
    clip = Clip(path=path, label="happy", speaker="01", corpus="ravdess")
    with pytest.raises(SampleRateError) as exc:
        load_signals([clip], 16000)
    assert str(path) in str(exc.value) and "44100 Hz, expected 16000 Hz" in str(exc.value)
    assert "--resample" not in str(exc.value) and "sox" in str(exc.value)


def test_annotate_naming_a_file_is_refused_by_name_before_any_file_runs(tmp_path):
    """Regression: ``predict --annotate FILE`` ended the run at the first image with
    "error: [Errno 17] File exists: …" (no option named; the files after it never ran)."""
    taken = tmp_path / "out.png"
    taken.write_bytes(b"not a folder")
    frame = tmp_path / "frame.npy"
    np.save(frame, np.full((120, 160, 3), 128, np.uint8))
    res = run_cli("predict", "--annotate", str(taken), str(frame), str(ravdess_clip(19, "05")))
    assert res.returncode == 2
    assert f"error: --annotate {taken}: is a file; expected a folder" in res.stderr, res.stderr
    assert "Errno" not in res.stderr and taken.read_bytes() == b"not a folder"
