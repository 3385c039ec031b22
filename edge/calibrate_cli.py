"""``edge-cli calibrate``: the guided steps, interactive or from files. Parsing and I/O only."""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge import calibrate as C
from edge.argtypes import number
from edge.paths import path_arg

if TYPE_CHECKING:
    from edge.audio.speech import SpeechRecogniser

log = logging.getLogger("edge.calibrate")
STEPS = ("noise", "mic", "camera", "baseline")


def add_commands(sub) -> None:
    ap = sub.add_parser(
        "calibrate",
        help="adapt the device to its room and its person (guided steps)",
        description="Guided calibration: room noise, microphone level, camera, personal baseline. "
        "Each step can be skipped; files replace the microphone and camera for scripts.",
    )
    ap.add_argument("--noise-file", type=path_arg,
                    help="recording of the room in silence (WAV, FLAC, Ogg/Opus)")
    ap.add_argument("--speech-file", type=path_arg, action="append", default=[],
                    help="recording of the person speaking normally and calmly (repeatable)")
    ap.add_argument("--image-dir", type=path_arg, help="folder of camera frames of the person at rest "
                    "(instead of the camera)")
    ap.add_argument("--camera", help="'picamera' or a webcam number (default: the config's "
                    "[camera]: the Pi camera if picamera2 is installed, else webcam 0)")
    ap.add_argument("--config", type=path_arg, default=None,
                    help="the daemon's TOML config (e.g. /etc/moodedge/config.toml): its [face] "
                         "detector and options, models, [camera] and daemon.state_dir are used, "
                         "so the steps see what the daemon will (default: the built-in defaults)")
    ap.add_argument("--state-dir", type=path_arg, help="where calibration.json goes (default: the "
                    "config's daemon.state_dir, $MOODEDGE_STATE_DIR, systemd's $STATE_DIRECTORY, "
                    "~/.local/share/moodedge)")
    ap.add_argument("--seconds", type=number(0.0, 600.0, above=True), default=8.0,
                    help="length of each microphone recording")
    ap.add_argument("--audio-device", help="microphone name (substring) for the live steps")
    ap.add_argument("--sample-rate", type=number(8000, 192000, integer=True), default=None,
                    help="the microphone's capture rate (default: the speech model's, else the "
                         "microphone's own); what is recorded, and --noise-file/--speech-file at "
                         "any rate, are resampled to the model's rate")
    ap.add_argument("--skip", nargs="+", choices=STEPS, default=[], help="steps to skip")
    ap.add_argument("--speech-model", type=path_arg,
                    help="speech .tflite for the baseline step (default: the config's audio.speech_model)")
    ap.add_argument("--face-model", type=path_arg,
                    help="face .tflite for the baseline step (default: the config's camera.face_model)")
    ap.add_argument("--yes", "-y", action="store_true", help="no prompts (scripts, tests)")
    ap.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    ap.add_argument("--report", type=path_arg, help="write a PNG: noise vs speech levels, baseline in A/V")
    ap.add_argument("--restore", nargs="?", const="", metavar="NAME",
                    help="bring back the previous calibration (or the named history file) and exit")
    ap.add_argument("--list", action="store_true", help="list the current and earlier calibrations")
    ap.set_defaults(func=cmd_calibrate)


def _sigterm(_signum, _frame):
    raise KeyboardInterrupt


def with_config(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` given ``cfg`` (the validated :class:`edge.config.Config`) and the flags
    left unset filled from it, as the daemon would use them."""
    from edge.config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        raise C.CalibrationError(str(exc)) from None
    args.cfg, args.state_dir = cfg, args.state_dir or cfg.state_dir()
    args.speech_model = args.speech_model or cfg.audio.speech_model
    args.face_model = args.face_model or cfg.camera.face_model
    return args


def cmd_calibrate(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _sigterm)  # clean up like Ctrl-C: nothing half-written
    out = sys.stderr if args.json else sys.stdout
    try:
        args = with_config(args)
    except C.CalibrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    state_dir = args.state_dir
    try:
        if args.list:
            return _list(state_dir)
        if args.restore is not None:
            src = C.restore(state_dir, args.restore or None)
            print(f"restored {src.name} as {Path(state_dir) / C.FILE_NAME}", file=out)
            return 0
        if args.report:
            check_report_path(args.report)
            if importlib.util.find_spec("matplotlib") is None:
                raise C.CalibrationError("--report needs matplotlib: pip install matplotlib "
                                         "(on a Pi: sudo apt install python3-matplotlib)")
        C.check_state_dir(state_dir)
        moved = C.quarantine_corrupt(state_dir)
        if moved:
            print(f"[WARN] the existing calibration file was corrupt; moved it to {moved}", file=out)
        results, extras = run_steps(args, out)
    except C.CalibrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncalibration interrupted: the previous calibration is unchanged", file=sys.stderr)
        return 130
    cal = C.Calibration.from_steps(results)
    cal.models = models_measured(cal, extras.get("models", {}))
    kept = C.keep_earlier(cal, _current(state_dir), models_in_use(args))
    path = C.save_calibration(state_dir, cal)
    if args.report:
        write_report_png(args.report, extras)
    failed = [r.name for r in results if r.status == C.FAIL]
    for step in kept:
        print(f"[KEPT] {step}: as measured {cal.kept[step]} (not measured in this run)", file=out)
    if args.json:
        print(json.dumps({"path": str(path), "calibration": json.loads(cal.to_json()),
                          "failed": failed}))
    else:
        print(f"saved {path}" + (f" (failed: {', '.join(failed)})" if failed else ""), file=out)
        print("a running daemon applies it on `systemctl reload moodedge` (SIGHUP) or the "
              'MQTT command {"cmd": "reload_calibration"}', file=out)
    return 1 if failed else 0


def _current(state_dir: Path) -> C.Calibration | None:
    """The calibration in effect (a corrupt one was moved aside before the steps)."""
    try:
        return C.load_calibration(state_dir)
    except (C.CalibrationError, OSError):
        return None


def models_in_use(args) -> dict[str, str | None]:
    """modality -> sha256 of the model the daemon would measure through (from its
    manifest; None where there is none), whether or not this run's steps loaded it."""
    from edge.manifest import ModelError, load_manifest, manifest_path
    from edge.runtime import resolve_model_path

    shas: dict[str, str | None] = {}
    for modality, model in (("speech", args.speech_model), ("face", args.face_model)):
        try:
            shas[modality] = load_manifest(manifest_path(resolve_model_path(modality, model))).sha256
        except (ModelError, OSError):
            shas[modality] = None
    return shas


def _list(state_dir: Path) -> int:
    if Path(state_dir).exists() and not Path(state_dir).is_dir():
        raise C.CalibrationError(f"{state_dir}: not a folder; expected the state directory")
    current = Path(state_dir) / C.FILE_NAME
    print(f"current: {current if current.exists() else '(none)'}")
    for p in C.history(state_dir):
        print(f"earlier: {p.name}")
    return 0


# ---------------------------------------------------------------------- steps
def _ask(args, out, prompt: str) -> bool:
    """True to run the step; False to skip it (interactive only)."""
    if args.yes:
        return True
    print(prompt + " [Enter = go, s = skip] ", end="", file=out, flush=True)
    try:
        answer = input()
    except EOFError:
        return True
    return answer.strip().lower() not in ("s", "skip", "n", "no")


def _record(args, seconds: float, rate: int) -> np.ndarray:
    """Record from the microphone at --sample-rate (default ``rate``, else the device's own
    rate) and return it at ``rate``; CalibrationError with what to do when there is none."""
    try:
        import sounddevice as sd

        from edge.audio.sources import capture_rate, find_input_device

        index = find_input_device(args.audio_device)
        if args.sample_rate:  # the user's rate, as asked (capture_rate checks its own)
            sd.check_input_settings(device=index, channels=1, samplerate=args.sample_rate,
                                    dtype="float32")
        capture = args.sample_rate or capture_rate(sd, index, rate)
        data = sd.rec(int(seconds * capture), samplerate=capture, channels=1, dtype="float32",
                      device=index)
        sd.wait()
        x = data[:, 0].copy()
    except (OSError, LookupError) as exc:  # PortAudio missing, no device, bad rate
        raise C.CalibrationError(
            f"microphone: {exc}. Plug in a microphone, check `arecord -l`, choose it with "
            f"--audio-device NAME, or give --noise-file/--speech-file") from None
    except Exception as exc:  # sounddevice.PortAudioError and friends
        raise C.CalibrationError(
            f"microphone: cannot record at {args.sample_rate or rate} Hz ({exc}); check the "
            f"device supports it (`arecord --dump-hw-params`) or give --noise-file/--speech-file"
        ) from None
    if capture == rate:
        return x
    from edge.audio.resample import resample

    return resample(x, capture, rate)


def _audio(args, path: Path | None, seconds: float, rate: int) -> np.ndarray:
    """A recording at ``rate`` (the speech model's): the file's, resampled from its own
    rate, or the microphone's."""
    from edge.audio.sources import load_audio

    if path is not None:
        return load_audio(path, rate, resample=True)
    return _record(args, seconds, rate)


def _step(out, result: C.StepResult) -> C.StepResult:
    print(result.line(), file=out, flush=True)
    return result


def run_steps(args, out) -> tuple[list[C.StepResult], dict]:
    from edge.audio import features as F
    from edge.audio.sources import AudioFileError
    from edge.recognisers import model_sha

    results: list[C.StepResult] = []
    extras: dict = {"models": {}}
    live = not (args.noise_file or args.speech_file)
    loaded: dict = {}

    def speech_params() -> F.FeatureParams:
        """The speech model's own feature parameters, loaded when a step first needs
        them: the room is heard through the frames the daemon computes for that model."""
        if "rec" not in loaded:
            loaded["rec"] = _speech(args)
            extras["models"]["speech"] = model_sha(loaded["rec"])
        return loaded["rec"].params

    def guarded(name, fn):
        try:
            return fn()
        except (AudioFileError, C.CalibrationError) as exc:
            return _step(out, C.StepResult(name, C.FAIL, str(exc)))

    if "noise" in args.skip or not _ask(args, out, f"1/4 Room noise: stay silent for {args.seconds:.0f} s."):
        results.append(_step(out, C.StepResult("room noise", C.SKIPPED, "skipped")))
    elif args.noise_file or live:
        def noise():
            p = speech_params()
            x = _audio(args, args.noise_file, args.seconds, p.sample_rate)
            extras["noise_levels"] = F.frame_levels_db(F.mfcc(x, p), p)
            return _step(out, C.noise_step(x, p, args.cfg.audio.vad, **no_speech_gate(args)))
        results.append(guarded("room noise", noise))
    else:
        results.append(_step(out, C.StepResult("room noise", C.SKIPPED, "no --noise-file given")))

    speech: list[np.ndarray] = []
    if "mic" in args.skip or not _ask(args, out, f"2/4 Microphone: talk normally for {args.seconds:.0f} s."):
        results.append(_step(out, C.StepResult("microphone level", C.SKIPPED, "skipped")))
    elif args.speech_file or live:
        def mic():
            p = speech_params()
            clips = [_audio(args, f, args.seconds, p.sample_rate) for f in (args.speech_file or [None])]
            speech.extend(clips)
            joined = np.concatenate(clips)
            extras["speech_levels"] = F.frame_levels_db(F.mfcc(joined, p), p)
            return _step(out, C.mic_step(joined, C.alsa_capture_control(), p.sample_rate))
        results.append(guarded("microphone level", mic))
    else:
        results.append(_step(out, C.StepResult("microphone level", C.SKIPPED, "no --speech-file given")))

    frames = []
    if "camera" in args.skip or not _ask(args, out, "3/4 Camera: look at the camera, relaxed."):
        results.append(_step(out, C.StepResult("camera", C.SKIPPED, "skipped")))
    else:
        results.append(guarded("camera", lambda: _step(out, camera(args, frames))))

    if "baseline" in args.skip or not _ask(args, out, "4/4 Baseline: speak and look neutral."):
        results.append(_step(out, C.StepResult("baseline (voice)", C.SKIPPED, "skipped")))
    else:
        threshold = next((r.data["threshold_db"] for r in results
                          if r.name == "room noise" and r.status != C.FAIL and r.data), None)
        if speech:
            results.append(guarded("baseline (voice)",
                                   lambda: _step(out, voice_baseline(args, speech, threshold, extras))))
        if frames:
            results.append(guarded("baseline (face)",
                                   lambda: _step(out, face_baseline(args, frames, extras))))
    return results, extras


def _speech(args) -> SpeechRecogniser:
    """The speech model the steps measure through: its own feature parameters (noise
    suppression included) give the room's levels as the daemon computes them."""
    from edge.audio.speech import speech_recogniser
    from edge.manifest import ModelError

    try:
        return speech_recogniser(args.speech_model)
    except (ModelError, RuntimeError, OSError) as exc:
        raise C.CalibrationError(f"speech model: {exc}") from None


def models_measured(cal: C.Calibration, models: dict) -> dict:
    """The models (modality -> sha256) whose settings ``cal`` holds: the speech model's
    for the VAD and the voice's baseline, the face model's for the face's."""
    holds = {"speech": bool(cal.vad) or "voice" in cal.offsets, "face": "face" in cal.offsets}
    return {m: sha for m, sha in sorted(models.items()) if sha and holds.get(m)}


def voice_points(recogniser, clips: list[np.ndarray]) -> list[tuple[float, float]]:
    """(valence, arousal) of every voiced window of the clips, as the daemon sees them."""
    from edge.labels import expected_va

    points = []
    for x in clips:
        emo, kept, _ = recogniser.clip_windows(x)
        points += [expected_va(dict(zip(recogniser.labels, pr))) for pr in emo[kept]]
    return points


def no_speech_gate(args) -> dict:
    """noise_step's arguments for a speech model with a no-speech output ({} otherwise)."""
    from edge.audio.speech import speech_recogniser

    rec = speech_recogniser(args.speech_model)
    if not rec.model.manifest.gate:
        return {}

    def probs(x, threshold_db):
        rec.vad = replace(args.cfg.audio.vad, threshold_db=threshold_db)
        return rec.no_speech_probs(x)

    return {"no_speech": probs, "default_no_speech": float(rec.model.manifest.gate["threshold"])}


def voice_baseline(args, clips, threshold_db, extras) -> C.StepResult:
    from edge.audio.speech import speech_recogniser

    rec = speech_recogniser(args.speech_model)
    vad = args.cfg.audio.vad  # the daemon's gate, with this calibration's threshold
    rec.vad = vad if threshold_db is None else replace(vad, threshold_db=threshold_db)
    pts = voice_points(rec, clips)
    extras["voice_points"] = pts
    return C.baseline_step("voice", pts)


def _live_frames(args, count: int = 10, every_s: float = 0.5) -> list[tuple[str, np.ndarray]]:
    """A few grey frames from the camera, kept in memory only."""
    import time

    from edge.vision.faces import to_gray_u8
    from edge.vision.sources import CameraError, open_source

    cam = args.cfg.camera
    spec = args.camera
    if spec is None:
        pi = cam.backend == "picamera2" or (cam.backend == "auto" and importlib.util.find_spec("picamera2"))
        spec = "picamera" if pi else str(cam.device)
    try:
        source = open_source(spec, size=(cam.width, cam.height))
    except CameraError as exc:
        raise C.CalibrationError(str(exc)) from None
    frames = []
    try:
        last = 0.0
        for frame in source.frames():
            now = time.monotonic()
            if now - last >= every_s:
                frames.append((f"{spec}#{len(frames)}", to_gray_u8(frame)))
                last = now
            if len(frames) >= count:
                break
    except CameraError as exc:
        raise C.CalibrationError(str(exc)) from None
    finally:
        source.close()
    return frames


def camera(args, frames: list) -> C.StepResult:
    """The configured detector (``[face] detector``) on frames from the camera, or from
    --image-dir."""
    try:
        from edge.vision.detectors import make_detector
        from edge.vision.sources import ImageError, iter_image_files, load_image

        detector = make_detector(args.cfg.face.detector)
    except (ImportError, OSError, ValueError) as exc:
        raise C.CalibrationError(f"camera: face detector {args.cfg.face.detector!r} "
                                 f"unavailable ({exc})") from None
    if args.image_dir is None:
        grey = _live_frames(args)
    else:
        if not args.image_dir.is_dir():
            raise C.CalibrationError(f"{args.image_dir}: not a folder of images")
        grey = []
        for path in iter_image_files([args.image_dir]):
            try:
                grey.append((str(path), load_image(path, gray=True)))
            except ImageError as exc:
                log.warning("%s", exc)
        if not grey:
            raise C.CalibrationError(f"{args.image_dir}: no readable images (.jpg, .png, ...)")
    frames.extend(grey)
    result = C.camera_step(grey, lambda g: [d.int_box for d in detector.detect(g)])
    return replace(result, data={**(result.data or {}), "detector": args.cfg.face.detector})


def face_baseline(args, frames, extras) -> C.StepResult:
    """The daemon's face recogniser (``camera.recogniser`` with the ``[face]`` options) on
    the camera step's frames."""
    from edge.recognisers import load_recogniser, model_sha
    from edge.vision.expression import FaceOptions

    cfg = args.cfg
    rec, why = load_recogniser("face", cfg.camera.recogniser, args.face_model, cfg.face, FaceOptions())
    if rec is None:
        return C.StepResult("baseline (face)", C.SKIPPED, why)
    pts = []
    for _name, img in frames:
        r = rec.classify_frame(img)
        if r.label is not None:
            pts.append((r.valence, r.arousal))
    extras["face_points"] = pts
    extras.setdefault("models", {})["face"] = model_sha(rec)
    return C.baseline_step("face", pts)


def check_report_path(path: Path) -> None:
    """``--report`` names a PNG file in a folder that exists; checked before any step runs
    (a folder was written as FOLDER.png beside it, another suffix failed after saving)."""
    path = Path(path)
    if path.is_dir():
        raise C.CalibrationError(f"--report {path}: is a folder; expected a .png file name")
    if path.suffix.lower() != ".png":
        raise C.CalibrationError(f"--report {path}: expected a .png file name")
    if not path.parent.is_dir():
        raise C.CalibrationError(f"--report {path}: folder {path.parent} not found")


def write_report_png(path: Path, extras: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, colour, label in (("noise_levels", "tab:grey", "room noise"),
                               ("speech_levels", "tab:blue", "speech")):
        if key in extras:
            a1.hist(extras[key], bins=60, alpha=0.6, color=colour, label=label, density=True)
    a1.set_xlabel("frame level (dBFS, pre-emphasised)")
    a1.set_title("noise floor vs speech")
    if a1.get_legend_handles_labels()[0]:
        a1.legend()
    for key, colour in (("voice_points", "tab:blue"), ("face_points", "tab:orange")):
        pts = np.asarray(extras.get(key, []))
        if len(pts):
            a2.scatter(pts[:, 0], pts[:, 1], s=8, alpha=0.4, color=colour, label=key.split("_")[0])
            a2.scatter(*pts.mean(axis=0), s=120, marker="x", color=colour)
    a2.axhline(0, color="k", lw=0.5)
    a2.axvline(0, color="k", lw=0.5)
    a2.set(xlim=(-1, 1), ylim=(-1, 1), xlabel="valence", ylabel="arousal", title="resting baseline")
    if a2.get_legend_handles_labels()[0]:  # no baseline step: nothing to name
        a2.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
