"""On-device calibration: pure measurement steps and the calibration file.

Each step turns real input (audio blocks, camera frames, recogniser outputs) into a
:class:`StepResult` with a pass/warn/fail status and plain advice. The results are
gathered into one versioned JSON document which is written atomically (temp file,
fsync, rename) in the state directory; the file it replaces is kept as
``calibration-<UTC time>.json`` so ``edge-cli calibrate --restore`` can bring it back.

Levels:
* ``frame level`` (VAD): pre-emphasised frame RMS in dBFS, as edge.audio.vad uses.
* ``active level`` (microphone): RMS in dBFS of the frames within 30 dB of the loudest,
  like ITU-T P.56's active speech level, simplified. Good speech sits near -26 dBFS.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edge.audio import features as F
from edge.audio.vad import VadParams

CALIBRATION_VERSION = 1
FILE_NAME = "calibration.json"
PASS, WARN, FAIL, SKIPPED = "pass", "warn", "fail", "skipped"

# Thresholds, documented in the README's calibration section.
NO_SPEECH_MIN = 0.2  # the lowest no-speech threshold calibration sets (speech must pass)
VAD_MARGIN_DB = 3.0  # threshold above the noise's 95th-percentile frame level
NOISE_TOO_HIGH_DB = -40.0  # pre-emphasised noise floor at which speech is hard to separate
CLIP_LEVEL = 0.999  # |sample| counted as clipped
CLIPPED_FRACTION_FAIL = 0.001  # of samples, in runs of >= 3
TOO_QUIET_DBFS = -38.0  # active speech level
NO_SIGNAL_DBFS = -80.0  # active level below this: digital silence (a muted or wrong input), not speech
NO_ROOM_DBFS = -95.0  # a room's frame level (95th percentile) below 16-bit quantisation noise
MUTED_ADVICE = ("is the microphone muted, or another input chosen? check its capture switch in "
                "alsamixer, or name it with --audio-device")
TOO_LOUD_DBFS = -10.0
TARGET_DBFS = -26.0


class CalibrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class StepResult:
    name: str
    status: str  # pass | warn | fail | skipped
    message: str
    advice: str = ""
    data: dict = field(default_factory=dict)

    def line(self) -> str:
        tail = f"  → {self.advice}" if self.advice else ""
        return f"[{self.status.upper():4}] {self.name}: {self.message}{tail}"


# ------------------------------------------------------------------ room noise
def no_speech_threshold(no_speech: np.ndarray, default: float) -> float:
    """Below the P(no speech) of 95 % of the room's windows past the energy gate (its fan
    or TV is not a talker), at most ``default``, at least NO_SPEECH_MIN."""
    if no_speech.size == 0:
        return default
    return float(round(min(default, max(NO_SPEECH_MIN, np.percentile(no_speech, 5) - 0.02)), 3))


def noise_step(noise: np.ndarray, p: F.FeatureParams, vad: VadParams | None = None,
               no_speech=None, default_no_speech: float = 0.5) -> StepResult:
    """Set the VAD threshold from a recording of the room with nobody speaking; with
    ``no_speech`` (signal, threshold_db -> P(no speech) of windows past it) that too."""
    vad = vad or VadParams()
    if noise.size < p.sample_rate:
        return StepResult("room noise", FAIL, "less than 1 s of audio",
                          "record at least 5 s of the room in silence")
    levels = F.frame_levels_db(F.mfcc(noise, p), p)
    floor = float(np.percentile(levels, 95))
    if floor < NO_ROOM_DBFS:
        return StepResult("room noise", FAIL, f"no signal: the recording is digital silence "
                                              f"({floor:.0f} dBFS), no room can be that quiet",
                          MUTED_ADVICE, {"noise_floor_db": round(floor, 2)})
    threshold = float(min(-10.0, max(-120.0, floor + VAD_MARGIN_DB)))
    data = {"noise_floor_db": round(floor, 2), "threshold_db": round(threshold, 2),
            "noise_median_db": round(float(np.median(levels)), 2)}
    extra = ""
    if no_speech is not None:
        probs = np.asarray(no_speech(noise, threshold), np.float32)
        data["no_speech_threshold"] = no_speech_threshold(probs, default_no_speech)
        data["noise_windows_past_energy_gate"] = int(probs.size)
        extra = f", no-speech threshold {data['no_speech_threshold']:.2f}"
    if floor > NOISE_TOO_HIGH_DB:
        return StepResult(
            "room noise", WARN, f"noise floor {floor:.1f} dBFS is high for speech",
            "switch off fans/TV or move the microphone closer to where people talk", data)
    return StepResult("room noise", PASS,
                      f"noise floor {floor:.1f} dBFS, voice threshold set to {threshold:.1f} dBFS"
                      f"{extra}", data=data)


# ------------------------------------------------------------ microphone level
def _frame_rms_db(x: np.ndarray, n: int = 400) -> np.ndarray:
    k = len(x) // n
    if k == 0:
        return np.array([20 * math.log10(max(float(np.sqrt(np.mean(x**2))), 1e-9))])
    fr = x[: k * n].reshape(k, n).astype(np.float64)
    return 10 * np.log10(np.mean(fr**2, axis=1) + 1e-18)


def clipped_fraction(x: np.ndarray, level: float = CLIP_LEVEL, run: int = 3) -> float:
    """Fraction of samples in runs of >= ``run`` samples at or beyond ``level``."""
    hot = np.abs(x) >= level
    if not hot.any():
        return 0.0
    edges = np.diff(np.concatenate([[0], hot.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = ends - starts
    return float(lengths[lengths >= run].sum() / len(x))


def active_level_dbfs(x: np.ndarray) -> float:
    r = _frame_rms_db(x)
    active = r[r > r.max() - 30]
    return float(10 * np.log10(np.mean(10 ** (active / 10))))


def mic_step(speech: np.ndarray, mixer: str | None = None, sample_rate: int = 16000) -> StepResult:
    """Check a recording of normal speech for clipping and level; suggest a gain."""
    if speech.size == 0:
        return StepResult("microphone level", FAIL, "no audio", "check the microphone")
    if speech.size < sample_rate:
        return StepResult("microphone level", FAIL, "less than 1 s of audio",
                          "record at least 5 s of normal speech")
    peak = float(np.max(np.abs(speech)))
    peak_db = 20 * math.log10(max(peak, 1e-9))
    level = active_level_dbfs(speech)
    clipped = clipped_fraction(speech)
    gain = round(TARGET_DBFS - level, 1)
    control = f" (ALSA mixer control {mixer!r}: `amixer sset '{mixer}' {gain:+.0f}dB`)" if mixer else ""
    data = {"peak_dbfs": round(peak_db, 2), "active_level_dbfs": round(level, 2),
            "clipped_fraction": round(clipped, 6), "suggested_gain_db": gain}
    if level < NO_SIGNAL_DBFS:
        return StepResult("microphone level", FAIL,
                          f"no signal: the recording is digital silence ({level:.0f} dBFS)",
                          MUTED_ADVICE, data)
    if clipped > CLIPPED_FRACTION_FAIL:
        return StepResult("microphone level", FAIL,
                          f"clipped: {clipped:.2%} of samples at full scale",
                          f"lower the input gain by about {max(6.0, -gain):.0f} dB{control}", data)
    if level < TOO_QUIET_DBFS:
        return StepResult("microphone level", WARN,
                          f"too quiet: speech at {level:.1f} dBFS (aim for about {TARGET_DBFS:.0f})",
                          f"raise the input gain by about {gain:.0f} dB or move closer{control}", data)
    if level > TOO_LOUD_DBFS:
        return StepResult("microphone level", WARN, f"very loud: speech at {level:.1f} dBFS",
                          f"lower the input gain by about {-gain:.0f} dB{control}", data)
    return StepResult("microphone level", PASS,
                      f"speech at {level:.1f} dBFS, peak {peak_db:.1f} dBFS, no clipping", data=data)


def alsa_capture_control() -> str | None:
    """The first ALSA simple control that looks like a capture gain, if amixer is present."""
    import shutil
    import subprocess

    if not shutil.which("amixer"):
        return None
    try:
        out = subprocess.run(["amixer", "scontrols"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.split("'")[1] for line in out.splitlines() if line.count("'") >= 2]
    for name in names:
        if any(k in name.lower() for k in ("capture", "mic")):
            return name
    return None


# ---------------------------------------------------------------------- camera
MIN_FACE_FRACTION = 0.08  # face height / frame height
DARK, BRIGHT = 60.0, 200.0  # mean grey level of the face region, 0..255


def camera_step(frames: Sequence[tuple[str, np.ndarray]], detect) -> StepResult:
    """``frames``: (name, grey uint8 image); ``detect(grey) -> list of (x, y, w, h)``."""
    if not frames:
        return StepResult("camera", FAIL, "no frames", "check the camera or the --image-dir")
    found, sizes, bright = 0, [], []
    for _name, grey in frames:
        boxes = detect(grey)
        if not boxes:
            continue
        found += 1
        x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
        sizes.append(h / grey.shape[0])
        bright.append(float(grey[y : y + h, x : x + w].mean()))
    data = {"frames": len(frames), "frames_with_face": found}
    if not found:
        return StepResult("camera", FAIL, f"no face found in {len(frames)} frame(s)",
                          "face the camera, mount it at eye level about 1-2 m away, and add light", data)
    size, light = float(np.median(sizes)), float(np.median(bright))
    data.update(face_fraction=round(size, 3), face_brightness=round(light, 1))
    advice = []
    if size < MIN_FACE_FRACTION:
        advice.append("the face is small: move the camera closer or zoom in")
    if light < DARK:
        advice.append("the face is dark: add light in front of the person")
    elif light > BRIGHT:
        advice.append("the face is over-exposed: avoid a bright light behind the camera")
    if found < len(frames) / 2:
        advice.append("the face was often missed: point the camera at where people sit")
    msg = (f"face in {found}/{len(frames)} frames, {size:.0%} of frame height, "
           f"brightness {light:.0f}/255")
    return StepResult("camera", WARN if advice else PASS, msg, "; ".join(advice), data)


# ---------------------------------------------------------- personal baseline
def baseline_step(modality: str, points: Sequence[tuple[float, float]],
                  min_points: int = 3) -> StepResult:
    """Resting offset (mean valence, arousal) and a reliability from consistency."""
    name = f"baseline ({modality})"
    if len(points) < min_points:
        return StepResult(name, FAIL, f"only {len(points)} usable estimate(s), need {min_points}",
                          "speak or look at the camera for longer while relaxed")
    pts = np.asarray(points, dtype=float)
    mean = pts.mean(axis=0)
    spread = float(np.sqrt(np.mean(np.sum((pts - mean) ** 2, axis=1))))
    # Consistent outputs at rest → trust this modality more; spread of 1 (half the
    # square's side) → weight 0.2.
    reliability = float(np.clip(1.0 - 0.8 * spread, 0.2, 1.0))
    data = {"offset": [round(float(mean[0]), 4), round(float(mean[1]), 4)],
            "spread": round(spread, 4), "reliability": round(reliability, 3), "n": len(pts)}
    msg = (f"resting point valence {mean[0]:+.2f}, arousal {mean[1]:+.2f} "
           f"from {len(pts)} estimates (spread {spread:.2f})")
    return StepResult(name, PASS, msg, data=data)


# ------------------------------------------------------------------- storage
@dataclass
class Calibration:
    created: str
    steps: list[dict]
    vad: dict = field(default_factory=dict)  # {"threshold_db": ...}
    offsets: dict = field(default_factory=dict)  # modality -> [valence, arousal]
    reliability: dict = field(default_factory=dict)  # modality -> weight
    # "speech"/"face" -> sha256 of the model the steps measured through (absent: unknown)
    models: dict = field(default_factory=dict)
    # step -> when it was measured, for settings kept from an earlier calibration
    kept: dict = field(default_factory=dict)
    version: int = CALIBRATION_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_steps(cls, steps: Sequence[StepResult]) -> Calibration:
        cal = cls(created=datetime.now(UTC).isoformat(timespec="seconds"),
                  steps=[asdict(s) for s in steps])
        for s in steps:
            if s.status in (FAIL, SKIPPED):
                continue
            if s.name == "room noise":
                cal.vad["threshold_db"] = s.data["threshold_db"]
                if "no_speech_threshold" in s.data:
                    cal.vad["no_speech_threshold"] = s.data["no_speech_threshold"]
            elif s.name.startswith("baseline ("):
                modality = s.name[len("baseline (") : -1]
                cal.offsets[modality] = s.data["offset"]
                cal.reliability[modality] = s.data["reliability"]
        return cal


#: the steps that store settings: (step, the model it is measured through, its offsets
#: key; None: the room noise step, which sets ``vad``)
SETTINGS = (("room noise", "speech", None), ("baseline (voice)", "speech", "voice"),
            ("baseline (face)", "face", "face"))


def _holds(cal: Calibration, key: str | None) -> bool:
    return bool(cal.vad) if key is None else key in cal.offsets


def keep_earlier(cal: Calibration, previous: Calibration | None,
                 models: dict[str, str | None]) -> list[str]:
    """Carry over from ``previous`` the settings of the steps this run did not measure
    (skipped, failed or not run), so that redoing the room noise keeps the personal
    baseline; only where ``previous`` measured them through the model in use now
    (``models``: modality -> sha256; a setting of another model would not be applied).
    ``cal.kept`` records when each kept setting was measured; returns their steps."""
    kept: list[str] = []
    if previous is None:
        return kept
    for step, modality, key in SETTINGS:
        sha = models.get(modality)
        if (_holds(cal, key) or not _holds(previous, key) or sha is None
                or previous.models.get(modality) != sha):
            continue
        if key is None:
            cal.vad = dict(previous.vad)
        else:
            cal.offsets[key] = previous.offsets[key]
            cal.reliability[key] = previous.reliability[key]
        cal.models[modality] = sha
        cal.kept[step] = previous.kept.get(step, previous.created)
        kept.append(step)
    return kept


def parse_calibration(text: str, where: str) -> Calibration:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CalibrationError(f"{where}: expected a JSON object")
    if data.get("version") != CALIBRATION_VERSION:
        raise CalibrationError(f"{where}: field 'version': expected {CALIBRATION_VERSION}, "
                               f"got {data.get('version')!r}")
    known = set(Calibration.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise CalibrationError(f"{where}: unknown field(s) {unknown}")
    try:
        cal = Calibration(**data)
    except TypeError as exc:
        raise CalibrationError(f"{where}: {exc}") from None
    for name in ("vad", "offsets", "reliability", "models", "kept"):
        if not isinstance(getattr(cal, name), dict):
            raise CalibrationError(f"{where}: field {name!r}: expected a JSON object")
    steps = [step for step, _, _ in SETTINGS]
    for step, when in cal.kept.items():
        if step not in steps or not isinstance(when, str):
            raise CalibrationError(f"{where}: field 'kept.{step}': expected one of {steps} "
                                   "with the time it was measured")
    for mod, sha in cal.models.items():
        if mod not in ("speech", "face") or not isinstance(sha, str):
            raise CalibrationError(f"{where}: field 'models.{mod}': expected 'speech' or 'face' "
                                   f"with a model's sha256")
    def number_in(v: Any, lo: float, hi: float) -> bool:  # a huge int compares exactly
        return isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi

    for mod, off in cal.offsets.items():
        ok = isinstance(off, list) and len(off) == 2 and all(number_in(v, -1, 1) for v in off)
        if not ok:
            raise CalibrationError(f"{where}: field 'offsets.{mod}': expected [valence, arousal] "
                                   f"in [-1, 1]")
    for mod, rel in cal.reliability.items():
        if not number_in(rel, 0, 1):
            raise CalibrationError(f"{where}: field 'reliability.{mod}': expected a number in "
                                   f"[0, 1], got {str(rel)[:40]}")
    unknown_vad = sorted(set(cal.vad) - {"threshold_db", "no_speech_threshold"})
    if unknown_vad:
        raise CalibrationError(f"{where}: field 'vad': unknown key(s) {unknown_vad}")
    try:  # range checks
        VadParams(**{k: float(v) for k, v in cal.vad.items()})
    except (TypeError, ValueError, OverflowError) as exc:
        raise CalibrationError(f"{where}: field 'vad': {exc}") from None
    return cal


def load_calibration(state_dir: Path) -> Calibration | None:
    path = Path(state_dir) / FILE_NAME
    if not path.exists():
        return None
    return parse_calibration(path.read_text(encoding="utf-8", errors="replace"), str(path))


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def check_state_dir(state_dir: Path) -> Path:
    state_dir = Path(state_dir)
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the daemon's user only
    except OSError as exc:
        raise CalibrationError(f"{state_dir}: cannot create the state directory ({exc})") from None
    if not os.access(state_dir, os.W_OK | os.X_OK):
        raise CalibrationError(f"{state_dir}: state directory is not writable; run as the "
                               f"service user or pass --state-dir DIR")
    return state_dir


def quarantine_corrupt(state_dir: Path) -> Path | None:
    """Move an unreadable calibration.json aside (never overwrite it silently)."""
    path = Path(state_dir) / FILE_NAME
    if not path.exists():
        return None
    try:
        parse_calibration(path.read_text(encoding="utf-8", errors="replace"), str(path))
        return None
    except CalibrationError:
        dest = path.with_name(f"calibration.corrupt-{_stamp()}.json")
        os.replace(path, dest)
        return dest


def atomic_write(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".calibration-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def save_calibration(state_dir: Path, cal: Calibration) -> Path:
    """Write calibration.json atomically; the previous one is kept as history."""
    state_dir = check_state_dir(state_dir)
    path = state_dir / FILE_NAME
    if path.exists():
        atomic_write(state_dir / f"calibration-{_stamp()}.json", path.read_text(encoding="utf-8"))
    atomic_write(path, cal.to_json())
    return path


def history(state_dir: Path) -> list[Path]:
    """Earlier calibrations, newest first."""
    return sorted(Path(state_dir).glob("calibration-*.json"), reverse=True)


def restore(state_dir: Path, which: str | None = None) -> Path:
    """Make an earlier calibration current (the newest, or a named file from history)."""
    state_dir = check_state_dir(state_dir)
    older = history(state_dir)
    if which:
        cand = [p for p in older if p.name == which or str(p) == which]
        if not cand:
            raise CalibrationError(f"{state_dir}: no earlier calibration named {which!r}; have: "
                                   + (", ".join(p.name for p in older) or "none"))
        src = cand[0]
    elif older:
        src = older[0]
    else:
        raise CalibrationError(f"{state_dir}: no earlier calibration to restore")
    cal = parse_calibration(src.read_text(encoding="utf-8"), str(src))
    current = state_dir / FILE_NAME
    if current.exists():
        atomic_write(state_dir / f"calibration-{_stamp()}.json", current.read_text(encoding="utf-8"))
    atomic_write(current, cal.to_json())
    return src


def age_s(cal: Calibration, now: float | None = None) -> float:
    created = datetime.fromisoformat(cal.created).timestamp()
    return (now or time.time()) - created
