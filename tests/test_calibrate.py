"""edge-cli calibrate on real recordings: thresholds, levels, baseline, safe writes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, SHIPPED_SPEECH, have_module, needs_data, ravdess_clip, run_cli

from edge import calibrate as C
from edge.audio import features as F
from edge.audio.sources import load_audio
from edge.audio.speech import window_levels
from edge.audio.vad import VadParams, is_voiced

P = F.FeatureParams()
SR = 16000


def room_noise(seconds: float, seed: int, level: float = 0.001, n: int | None = None) -> np.ndarray:
    """A quiet room (-60 dBFS RMS): fan rumble, some hiss and mains hum, its loudness drifting
    by ~12 dB (so the level gate, not the steady-noise rule, has to reject it)."""
    rng = np.random.default_rng(seed)
    n = n or int(seconds * SR)
    t = np.arange(n) / SR
    brown = np.cumsum(rng.standard_normal(n))
    brown -= np.convolve(brown, np.ones(400) / 400, mode="same")  # remove drift
    white = rng.standard_normal(n)
    x = brown / brown.std() + 0.3 * white + 0.3 * np.sin(2 * np.pi * 50 * t)
    drift = 10 ** ((6 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))) / 20)
    return (level * x / x.std() * drift).astype(np.float32)


def window_voiced(signal, vad):
    return [is_voiced(lv, vad) for lv in window_levels(F.mfcc(signal, P), P)]


@needs_data
def test_noise_threshold_rejects_noise_and_keeps_speech(tmp_path):
    noise_file = tmp_path / "room.wav"
    sf.write(noise_file, room_noise(10, seed=1), SR)
    step = C.noise_step(load_audio(noise_file, SR), P)
    assert step.status == C.PASS, step.line()
    vad = VadParams(threshold_db=step.data["threshold_db"])
    assert not is_voiced_default_rejects_all(room_noise(60, seed=2))  # the gate is needed

    noise_windows = window_voiced(room_noise(60, seed=2), vad)
    rejected = 1 - np.mean(noise_windows)
    speech_windows = []
    for actor in range(19, 25):
        for emo in ("01", "03", "04", "05"):
            x = load_audio(ravdess_clip(actor, emo, "01" if emo == "01" else "02"), SR)
            speech_windows += window_voiced(x + room_noise(0, seed=actor, n=len(x)), vad)
    kept = np.mean(speech_windows)
    print(f"threshold {vad.threshold_db:.1f} dBFS: noise rejected {rejected:.3f}, speech kept {kept:.3f}")
    assert rejected >= 0.95
    assert kept >= 0.90


def is_voiced_default_rejects_all(noise) -> bool:
    """True when the default VAD (no calibration) already rejects every noise window."""
    return not any(window_voiced(noise, VadParams(threshold_db=-100.0)))


def test_loud_room_warns():
    step = C.noise_step(room_noise(6, seed=3, level=0.2), P)
    assert step.status == C.WARN and "high for speech" in step.message and step.advice


@needs_data
def test_clipped_and_quiet_recordings_are_flagged():
    x = load_audio(ravdess_clip(20, "05"), SR)
    clipped = np.clip(x * 40, -1, 1)
    r = C.mic_step(clipped)
    assert r.status == C.FAIL and "clipped" in r.message and "lower the input gain" in r.advice
    quiet = x * 10 ** ((-40 - C.active_level_dbfs(x)) / 20)
    r = C.mic_step(quiet)
    assert r.status == C.WARN and "too quiet" in r.message
    assert r.data["active_level_dbfs"] == pytest.approx(-40, abs=0.1)
    assert r.data["suggested_gain_db"] == pytest.approx(14, abs=0.2)
    good = x * 10 ** ((-26 - C.active_level_dbfs(x)) / 20)
    assert C.mic_step(good).status == C.PASS


def test_a_silent_or_too_short_speech_recording_fails_instead_of_asking_for_154_db():
    """Regression: a recording of digital silence (a muted or wrong input) was "too quiet:
    speech at -180.0 dBFS" with "raise the input gain by about 154 dB", and 50 ms of audio
    was measured as speech at all. Both now fail with what to check."""
    r = C.mic_step(np.zeros(5 * SR, np.float32), sample_rate=SR)
    assert r.status == C.FAIL and "no signal" in r.message and "muted" in r.advice
    assert "dB" not in r.advice
    hiss = np.random.default_rng(0).normal(0, 1e-6, 5 * SR).astype(np.float32)  # -120 dBFS
    r = C.mic_step(hiss, sample_rate=SR)
    assert r.status == C.FAIL and "no signal" in r.message
    r = C.mic_step(np.full(800, 0.05, np.float32), sample_rate=SR)
    assert r.status == C.FAIL and "less than 1 s of audio" in r.message


def test_a_room_recorded_through_a_muted_microphone_fails_not_sets_the_gate_to_minus_120():
    """Regression, the same kind in the noise step: digital silence gave "noise floor -180.0
    dBFS, voice threshold set to -120.0 dBFS" (PASS), a gate every fan would pass later."""
    r = C.noise_step(np.zeros(6 * SR, np.float32), P)
    assert r.status == C.FAIL and "no signal" in r.message and "muted" in r.advice
    assert "threshold_db" not in r.data
    quiet = room_noise(6, seed=3, level=0.0005)  # a quiet room through a working microphone
    assert C.noise_step(quiet, P).status == C.PASS


def test_calibration_file_round_trip_history_and_restore(tmp_path):
    first = C.Calibration.from_steps([C.StepResult("room noise", C.PASS, "ok",
                                                   data={"threshold_db": -60.0})])
    C.save_calibration(tmp_path, first)
    second = C.Calibration.from_steps([C.StepResult("room noise", C.PASS, "ok",
                                                    data={"threshold_db": -50.0})])
    C.save_calibration(tmp_path, second)
    assert C.load_calibration(tmp_path).vad["threshold_db"] == -50.0
    assert len(C.history(tmp_path)) == 1
    C.restore(tmp_path)
    assert C.load_calibration(tmp_path).vad["threshold_db"] == -60.0
    assert len(C.history(tmp_path)) == 2  # the replaced one is kept too


def test_corrupt_file_is_moved_aside_not_overwritten(tmp_path):
    (tmp_path / C.FILE_NAME).write_text("{broken")
    moved = C.quarantine_corrupt(tmp_path)
    assert moved is not None and moved.read_text() == "{broken"
    assert not (tmp_path / C.FILE_NAME).exists()
    with pytest.raises(C.CalibrationError, match="offsets.voice"):
        C.parse_calibration(json.dumps({"version": 1, "created": "2026-01-01T00:00:00+00:00",
                                        "steps": [], "offsets": {"voice": [3, 0]}}), "x.json")


def test_unwritable_state_dir_fails_clearly(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = run_cli("calibrate", "--yes", "--skip", "camera", "--state-dir", str(blocker / "sub"),
                  "--noise-file", "x.wav")
    assert res.returncode == 2
    assert "cannot create the state directory" in res.stderr


@needs_data
def test_cli_from_files_json_and_report(tmp_path):
    noise = tmp_path / "noise.wav"
    sf.write(noise, room_noise(6, seed=4), SR)
    speech = [ravdess_clip(21, "01", "01", s, r) for s in ("01", "02") for r in ("01", "02")]
    report = have_module("matplotlib")  # the plot needs matplotlib (apt: python3-matplotlib)
    args = ["calibrate", "--yes", "--json", "--state-dir", str(tmp_path / "state"),
            "--noise-file", str(noise), "--skip", "camera"]
    args += ["--report", str(tmp_path / "c.png")] if report else []
    for s in speech:
        args += ["--speech-file", str(s)]
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    cal = out["calibration"]
    assert cal["vad"]["threshold_db"] < -40
    assert set(cal["offsets"]) == {"voice"} and 0.2 <= cal["reliability"]["voice"] <= 1
    # what it was measured through, so that a daemon running another model can tell
    assert cal["models"] == {"speech": json.loads(SHIPPED_SPEECH.with_suffix(".json").read_text())["sha256"]}
    if report:
        assert (tmp_path / "c.png").stat().st_size > 1000
    assert "[PASS] room noise" in res.stderr and "[SKIP" in res.stderr


@pytest.mark.parametrize(("name", "said"), [
    ("", "is a folder; expected a .png file name"),
    ("report.json", "expected a .png file name"),
    ("gone/report.png", "folder {tmp}/gone not found"),
])
def test_a_report_path_that_cannot_be_a_png_is_refused_before_anything_runs(tmp_path, name, said):
    """Regression: ``--report FOLDER`` wrote FOLDER.png beside the folder and said nothing;
    ``--report x.json`` failed in matplotlib ("Format 'json' is not supported") after the
    calibration had been saved, exit 2. Now refused naming --report before any step runs,
    and no calibration is written."""
    target = tmp_path / name if name else tmp_path
    res = run_cli("calibrate", "--yes", "--state-dir", str(tmp_path / "state"), "--skip", "noise",
                  "mic", "camera", "baseline", "--report", str(target))
    assert res.returncode == 2
    assert f"error: --report {target}: {said.format(tmp=tmp_path)}" in res.stderr, res.stderr
    assert not (tmp_path / "state" / "calibration.json").exists()
    assert not Path(f"{tmp_path}.png").exists()


def test_a_run_that_skips_or_fails_a_step_keeps_the_earlier_setting(tmp_path):
    """Redoing only the room noise (``--skip mic camera baseline``) wiped the personal
    baseline measured before, and a room step that failed wiped the VAD threshold: the
    new file held only what the run measured.  Now the settings of steps a run does not
    measure are kept from the calibration in effect, saying when they were measured."""
    state = tmp_path / "state"
    noise, louder = tmp_path / "noise.wav", tmp_path / "louder.wav"
    sf.write(noise, room_noise(6, seed=4), SR)
    sf.write(louder, room_noise(6, seed=5, level=0.004), SR)
    speech = [ravdess_clip(21, "01", "01", s, "01") for s in ("01", "02")]
    base = ["calibrate", "--yes", "--json", "--state-dir", str(state)]
    first = run_cli(*base, "--noise-file", str(noise), "--skip", "camera",
                    *[a for s in speech for a in ("--speech-file", str(s))])
    assert first.returncode == 0, first.stderr
    one = json.loads(first.stdout)["calibration"]
    assert "voice" in one["offsets"] and one["kept"] == {}

    second = run_cli(*base, "--noise-file", str(louder), "--skip", "mic", "camera", "baseline")
    assert second.returncode == 0, second.stderr
    two = json.loads(second.stdout)["calibration"]
    assert two["vad"]["threshold_db"] > one["vad"]["threshold_db"] + 6  # measured anew
    assert two["offsets"] == one["offsets"] and two["reliability"] == one["reliability"]
    assert two["kept"] == {"baseline (voice)": one["created"]} and two["models"] == one["models"]
    assert f"[KEPT] baseline (voice): as measured {one['created']}" in second.stderr

    third = run_cli(*base, "--noise-file", str(tmp_path / "gone.wav"),
                    "--skip", "mic", "camera", "baseline")
    assert third.returncode == 1 and "[FAIL] room noise" in third.stderr, third.stderr
    three = json.loads(third.stdout)["calibration"]
    assert three["vad"] == two["vad"] and three["offsets"] == one["offsets"]
    assert three["kept"] == {"room noise": two["created"], "baseline (voice)": one["created"]}
    assert C.load_calibration(state).kept == three["kept"]  # the daemon's parser takes it


def test_list_with_a_state_dir_that_is_a_file_is_an_error(tmp_path):
    """It said "current: (none)" and exit 0, as if nothing had been calibrated."""
    f = tmp_path / "state"
    f.write_text("x")
    res = run_cli("calibrate", "--list", "--state-dir", str(f))
    assert res.returncode == 2 and f"error: {f}: not a folder" in res.stderr, res.stderr


def test_a_setting_measured_through_another_model_is_not_kept():
    before = C.Calibration("2026-12-01T10:00:00+00:00", [], {"threshold_db": -50.0},
                           {"voice": [0.1, 0.2], "face": [0.0, -0.1]},
                           {"voice": 0.9, "face": 0.8}, {"speech": "old", "face": "f"})
    now = C.Calibration.from_steps([])
    assert C.keep_earlier(now, before, {"speech": "new", "face": "f"}) == ["baseline (face)"]
    assert now.vad == {} and set(now.offsets) == {"face"} and now.models == {"face": "f"}
    assert C.keep_earlier(C.Calibration.from_steps([]), before, {"speech": None}) == []
    assert C.keep_earlier(C.Calibration.from_steps([]), None, {"speech": "old"}) == []


def test_no_microphone_and_bad_rate_fail_with_advice(tmp_path):
    res = run_cli("calibrate", "--yes", "--skip", "camera", "baseline", "--state-dir",
                  str(tmp_path), "--audio-device", "no-such-microphone-xyz", "--seconds", "1")
    assert res.returncode == 1
    assert "microphone" in res.stdout and ("--noise-file" in res.stdout)


@needs_data
def test_recordings_at_other_rates_are_heard_at_the_models_rate(tmp_path):
    """Regression: a 44.1 or 48 kHz recording (a phone's) was refused, "expected 16000 Hz
    (pass --resample ...)", a flag calibrate does not have; and with --sample-rate 48000 it
    was read at 48 kHz and measured through 16 kHz feature frames (a third of the speed).
    Files are now resampled to the speech model's rate, and --sample-rate is the
    microphone's capture rate only: the same room and voice give the same calibration."""
    from edge.audio.resample import resample

    noise = room_noise(6, seed=4)
    speech = [load_audio(ravdess_clip(21, "01", "01", s, "01"), SR) for s in ("01", "02")]
    runs = {}
    for rate, extra in ((16000, []), (48000, []), (44100, ["--sample-rate", "48000"])):
        d = tmp_path / str(rate)
        d.mkdir()
        sf.write(d / "noise.wav", resample(noise, SR, rate), rate)
        args = ["calibrate", "--yes", "--json", "--state-dir", str(d), "--skip", "camera",
                "--noise-file", str(d / "noise.wav"), *extra]
        for i, x in enumerate(speech):
            sf.write(d / f"s{i}.wav", resample(x, SR, rate), rate)
            args += ["--speech-file", str(d / f"s{i}.wav")]
        res = run_cli(*args)
        assert res.returncode == 0, res.stderr + res.stdout
        assert "[PASS] room noise" in res.stderr and "[PASS] microphone level" in res.stderr, res.stderr
        runs[rate] = json.loads(res.stdout)
    steps = {rate: {s["name"]: s["data"] for s in r["calibration"]["steps"]} for rate, r in runs.items()}
    for rate in (48000, 44100):
        assert steps[rate]["room noise"]["threshold_db"] == pytest.approx(
            steps[16000]["room noise"]["threshold_db"], abs=1.0)
        assert steps[rate]["microphone level"]["active_level_dbfs"] == pytest.approx(
            steps[16000]["microphone level"]["active_level_dbfs"], abs=0.5)
        assert runs[rate]["calibration"]["offsets"]["voice"] == pytest.approx(
            runs[16000]["calibration"]["offsets"]["voice"], abs=0.05)


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@needs_data
def test_interrupt_leaves_previous_calibration_intact(tmp_path):
    """Ctrl-C or SIGTERM while a step waits for the person (after the noise step has run)."""
    state = tmp_path / "state"
    C.save_calibration(state, C.Calibration.from_steps([]))
    before = (state / C.FILE_NAME).read_bytes()
    noise = tmp_path / "noise.wav"
    sf.write(noise, room_noise(6, seed=5), SR)
    # A suite started as a background job (`cmd &`, nohup, some CI runners) has SIGINT
    # ignored, and a child inherits that: Ctrl-C would not be what the calibration gets. The
    # child is given SIGINT's default, as a terminal's foreground job has it, and the test
    # starts it under that hostile inheritance on purpose.
    for sig in (signal.SIGTERM, signal.SIGINT):
        cmd = [sys.executable, "-m", "edge.cli", "calibrate", "--state-dir", str(state),
               "--noise-file", str(noise), "--speech-file", str(ravdess_clip(22))]
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
        finally:
            signal.signal(signal.SIGINT, previous)
        proc.stdin.write("\n")  # go: room noise
        proc.stdin.flush()
        deadline = time.time() + 30
        seen = ""
        while "2/4" not in seen and time.time() < deadline:
            seen += proc.stdout.read(1)
        assert "[PASS] room noise" in seen
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "previous calibration is unchanged" in err
        assert (state / C.FILE_NAME).read_bytes() == before
        assert not list(state.glob(".calibration-*.tmp"))


@needs_data
def test_baseline_moves_neutral_estimates_toward_origin():
    """Per RAVDESS test actor: the baseline from the actor's four neutral clips moves the
    fused estimates of those clips toward (0, 0); and, stricter, leaving each clip out of
    the baseline in turn, the held-out clip's estimate moves closer on average."""
    from edge.audio.speech import speech_recogniser
    from edge.calibrate_cli import voice_points
    from edge.mood.fusion import VOICE, FusionParams, MoodFuser, Observation

    rec = speech_recogniser(SHIPPED_SPEECH)

    def fused_distance(points, offset=None):
        fuser = MoodFuser(FusionParams(calibration_offset={VOICE: offset} if offset else {}))
        for i, (v, a) in enumerate(points):
            est = fuser.update(Observation(VOICE, float(i), v, a, 0.8))
        return float(np.hypot(est.valence, est.arousal))

    def offset_from(points):
        return tuple(C.baseline_step(VOICE, points).data["offset"])

    report = {}
    for actor in range(19, 25):
        clips = [load_audio(ravdess_clip(actor, "01", "01", s, r), SR)
                 for s in ("01", "02") for r in ("01", "02")]
        points = [voice_points(rec, [x]) for x in clips]
        everything = offset_from([p for pts in points for p in pts])
        held_out = [offset_from([p for j, pts in enumerate(points) if j != k for p in pts])
                    for k in range(len(points))]
        report[actor] = {
            "raw": np.mean([fused_distance(pts) for pts in points]),
            "calibrated": np.mean([fused_distance(pts, everything) for pts in points]),
            "held_out": np.mean([fused_distance(pts, off) for pts, off in zip(points, held_out)]),
        }
    print("neutral clips, distance of the fused estimate to (0,0):",
          json.dumps({a: {k: round(float(v), 3) for k, v in r.items()} for a, r in report.items()}))
    for actor, r in report.items():
        assert r["calibrated"] < r["raw"], actor
    mean = {k: np.mean([r[k] for r in report.values()]) for k in ("raw", "calibrated", "held_out")}
    print("mean over actors:", {k: round(float(v), 3) for k, v in mean.items()})
    assert mean["held_out"] < mean["raw"]


def test_camera_step_fails_without_faces_and_passes_with_one(tmp_path):
    cv2 = pytest.importorskip("cv2")
    from face_helpers import FER, face_frame, fer, no_face_frame

    if not FER.is_file():
        pytest.skip(f"FER-2013 not found at {FER}")
    empty = tmp_path / "no_faces"
    empty.mkdir()
    for seed in range(3):
        cv2.imwrite(str(empty / f"room{seed}.png"), no_face_frame(seed=seed))
    res = run_cli("calibrate", "--yes", "--skip", "noise", "mic", "baseline", "--state-dir",
                  str(tmp_path / "s"), "--image-dir", str(empty))
    assert res.returncode == 1
    assert "[FAIL] camera: no face found in 3 frame(s)" in res.stdout
    assert "face the camera" in res.stdout

    faces = tmp_path / "faces"
    faces.mkdir()
    d = fer()
    for i in np.flatnonzero(d.split == 2)[:10]:
        cv2.imwrite(str(faces / f"f{i}.png"), face_frame(d.pixels[i]))
    res = run_cli("calibrate", "--yes", "--json", "--skip", "noise", "mic", "baseline",
                  "--state-dir", str(tmp_path / "s"), "--image-dir", str(faces))
    assert res.returncode == 0, res.stderr
    step = next(s for s in json.loads(res.stdout)["calibration"]["steps"] if s["name"] == "camera")
    assert step["status"] in ("pass", "warn") and step["data"]["frames_with_face"] >= 3
    assert 0.3 < step["data"]["face_fraction"] < 1.0


def test_no_camera_fails_the_camera_step_with_advice(tmp_path):
    pytest.importorskip("cv2")
    res = run_cli("calibrate", "--yes", "--skip", "noise", "mic", "baseline", "--state-dir",
                  str(tmp_path), "--camera", "9")
    assert res.returncode == 1
    assert "[FAIL] camera: camera /dev/video9: cannot open it" in res.stdout
    assert "plugged in" in res.stdout


@needs_data
def test_cli_moves_a_corrupt_calibration_aside(tmp_path):
    (tmp_path / C.FILE_NAME).write_text('{"version": 1, "steps": [')
    noise = tmp_path / "noise.wav"
    sf.write(noise, room_noise(3, seed=6), SR)
    res = run_cli("calibrate", "--yes", "--skip", "mic", "camera", "baseline",
                  "--state-dir", str(tmp_path), "--noise-file", str(noise))
    assert res.returncode == 0, res.stderr
    assert "existing calibration file was corrupt; moved it to" in res.stdout
    (aside,) = tmp_path.glob("calibration.corrupt-*.json")
    assert aside.read_text() == '{"version": 1, "steps": ['
    assert C.load_calibration(tmp_path).vad["threshold_db"] < -40


def test_no_speech_threshold_sits_below_the_rooms_windows_within_bounds():
    assert C.no_speech_threshold(np.array([0.9, 0.95, 0.99]), 0.5) == 0.5  # a clearly silent room
    assert C.no_speech_threshold(np.array([0.35, 0.4, 0.45, 0.5] * 10), 0.5) == pytest.approx(0.33)
    assert C.no_speech_threshold(np.array([0.01, 0.02]), 0.5) == C.NO_SPEECH_MIN  # never below
    assert C.no_speech_threshold(np.zeros(0), 0.4) == 0.4  # nothing past the energy gate


def test_noise_step_sets_the_no_speech_threshold_and_calibration_keeps_it():
    x = room_noise(6, seed=1)
    seen = {}

    def probs(signal, threshold_db):
        seen["threshold_db"] = threshold_db
        return np.array([0.3, 0.6, 0.7, 0.8], np.float32)

    step = C.noise_step(x, P, no_speech=probs, default_no_speech=0.5)
    assert step.data["threshold_db"] == pytest.approx(seen["threshold_db"], abs=0.01)
    assert 0.2 <= step.data["no_speech_threshold"] < 0.34
    cal = C.Calibration.from_steps([step])
    assert cal.vad["no_speech_threshold"] == step.data["no_speech_threshold"]
    again = C.parse_calibration(cal.to_json(), "cal.json")
    assert VadParams(**again.vad).no_speech_threshold == step.data["no_speech_threshold"]


@pytest.mark.parametrize("vad, message", [
    ({"no_speech_threshold": 1.5}, "no_speech_threshold: expected a number in"),
    ({"threshold_db": 10**400}, "field 'vad'"),  # regression: OverflowError crashed the daemon
    ({"threshold": -70}, "unknown key"),
])
def test_bad_vad_numbers_in_a_calibration_file_are_refused_by_field(vad, message):
    text = json.dumps({"version": 1, "created": "2026-01-01T00:00:00+00:00", "steps": [], "vad": vad})
    with pytest.raises(C.CalibrationError, match=message):
        C.parse_calibration(text, "x.json")


def _face_folder(tmp_path, n: int = 6):
    cv2 = pytest.importorskip("cv2")
    from face_helpers import FER, face_frame, fer

    if not FER.is_file():
        pytest.skip(f"FER-2013 not found at {FER}")
    faces = tmp_path / "faces"
    faces.mkdir()
    d = fer()
    for i in np.flatnonzero(d.split == 2)[:n]:
        cv2.imwrite(str(faces / f"f{i}.png"), face_frame(d.pixels[i]))
    return faces


def _steps(res) -> dict:
    return {s["name"]: s for s in json.loads(res.stdout)["calibration"]["steps"]}


def test_calibrate_sees_the_faces_as_the_daemons_config_says(tmp_path):
    """Regression: the camera and face-baseline steps used OpenCV's Haar cascade and the
    default face options whatever ``[face]`` said, and wrote calibration.json to the default
    state folder whatever ``daemon.state_dir`` said: a baseline from faces the daemon would
    never classify, in a file it would never read."""
    faces = _face_folder(tmp_path)
    base = ["calibrate", "--yes", "--json", "--skip", "noise", "mic", "--image-dir", str(faces)]
    res = run_cli(*base, "--state-dir", str(tmp_path / "s0"))
    assert res.returncode == 0, res.stderr
    steps = _steps(res)
    assert steps["camera"]["data"]["detector"] == "blazeface"  # the daemon's default
    assert steps["baseline (face)"]["status"] in ("pass", "warn"), steps["baseline (face)"]

    state = tmp_path / "daemon_state"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[daemon]\nstate_dir = "{state}"\n\n[face]\ndetector = "haar"\nmin_face = 1000\n')
    res = run_cli(*base, "--config", str(cfg))
    steps = _steps(res)
    assert steps["camera"]["data"]["detector"] == "haar"
    assert steps["camera"]["data"]["frames_with_face"] >= 1
    # every face is smaller than min_face: the daemon gives them no guess, nor does calibrate
    assert steps["baseline (face)"]["status"] not in ("pass", "warn"), steps["baseline (face)"]
    assert json.loads(res.stdout)["path"] == str(state / C.FILE_NAME)
    assert (state / C.FILE_NAME).is_file()


def test_calibrate_refuses_a_bad_config_naming_the_file_and_key(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[face]\ndetector = "yolo"\n')
    res = run_cli("calibrate", "--yes", "--skip", "noise", "mic", "camera", "baseline",
                  "--config", str(cfg), "--state-dir", str(tmp_path / "s"))
    assert res.returncode == 2
    assert str(cfg) in res.stderr and "detector" in res.stderr, res.stderr
    assert not (tmp_path / "s").exists()


@needs_data
def test_the_noise_step_hears_the_room_through_the_speech_models_features(tmp_path):
    """Regression: calibrate measured the room with default feature parameters, not the
    speech model's, so a model whose features differ (here: noise suppression before the
    frames, as the device runs it) got a VAD threshold for audio it never sees."""
    import shutil

    pytest.importorskip("webrtc_noise_gain")
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(SHIPPED_SPEECH, models / SHIPPED_SPEECH.name)
    manifest = json.loads(SHIPPED_SPEECH.with_suffix(".json").read_text())
    manifest["features"]["noise_suppression"] = 2
    (models / SHIPPED_SPEECH.with_suffix(".json").name).write_text(json.dumps(manifest))
    x = room_noise(6, seed=4, level=0.01)
    noise = tmp_path / "noise.wav"
    sf.write(noise, x, SR, subtype="FLOAT")
    res = run_cli("calibrate", "--yes", "--json", "--state-dir", str(tmp_path / "state"),
                  "--noise-file", str(noise), "--skip", "mic", "camera", "baseline",
                  "--speech-model", str(models / SHIPPED_SPEECH.name))
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)["calibration"]["vad"]["threshold_db"]
    model_p = F.FeatureParams.from_dict(manifest["features"])
    want = C.noise_step(x, model_p).data["threshold_db"]
    plain = C.noise_step(x, P).data["threshold_db"]
    assert want < plain - 3  # the suppressor lowers the room's floor: the check can tell
    assert got == pytest.approx(want, abs=0.01)


def test_a_missing_speech_model_fails_the_room_step_by_name_and_spares_the_camera(tmp_path):
    pytest.importorskip("cv2")
    noise = tmp_path / "noise.wav"
    sf.write(noise, room_noise(3, seed=5), SR)
    missing = tmp_path / "nowhere" / "speech_emotion.tflite"
    res = run_cli("calibrate", "--yes", "--skip", "mic", "baseline", "--state-dir", str(tmp_path / "s"),
                  "--noise-file", str(noise), "--speech-model", str(missing), "--camera", "9")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    want = f"[FAIL] room noise: speech model: {missing.with_suffix('.json')}: manifest not found"
    assert want in res.stdout
    # the camera step still ran (and failed for its own reason: no camera 9)
    assert "[FAIL] camera: camera /dev/video9" in res.stdout
