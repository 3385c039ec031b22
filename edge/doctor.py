"""``edge-cli doctor``: what is installed, found and reachable, for a user whose device misbehaves.

Each probe returns a :class:`edge.calibrate.StepResult` (pass / warn / fail, a message and
advice), the same kind of line the calibration prints. Every probe runs in its own daemon
thread with a deadline (:data:`TIMEOUT_S`): a driver that never answers, a broker that
swallows packets or a hung ``systemctl`` gives a FAIL that says so, never a hang. The probes
only look: the one file written is a temporary one in the state directory (removed again),
and the broker is connected to and disconnected from under a client id of its own, so a
running daemon is not kicked off.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from edge.calibrate import FAIL, PASS, WARN, StepResult
from edge.config import Config, ConfigError, load_config

SERVICE = "moodedge.service"
SERVICE_CONFIG = Path("/etc/moodedge/config.toml")  # where systemd/install.sh puts it
CALIBRATION_OLD_DAYS = 90
TIMEOUT_S = {"microphone": 6.0, "camera": 8.0, "broker": 6.0, "service": 4.0}
DEFAULT_TIMEOUT_S = 8.0


@dataclass(frozen=True)
class Context:
    config: Config
    config_path: Path | None
    env: Mapping[str, str]


Probe = Callable[[Context], StepResult]


def _result(name: str, status: str, message: str, advice: str = "", **data) -> StepResult:
    return StepResult(name, status, message, advice, data)


# ------------------------------------------------------------------ the probes
def probe_python(ctx: Context) -> StepResult:
    import edge

    where = Path(edge.__file__).resolve().parent
    return _result("python", PASS, f"Python {platform.python_version()} ({sys.executable}); "
                   f"moodedge {edge.__version__} from {where}",
                   version=platform.python_version(), executable=sys.executable,
                   package=str(where))


def _distribution_version(module: str) -> str:
    from importlib import metadata

    names = {"ai_edge_litert": ("ai-edge-litert",), "tflite_runtime": ("tflite-runtime",),
             "tensorflow": ("tensorflow", "tensorflow-cpu")}[module.split(".")[0]]
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "unknown version"


def probe_interpreter(ctx: Context) -> StepResult:
    from edge.manifest import ModelError
    from edge.runtime import INTERPRETER_MODULES, interpreter_class

    choice = ctx.env.get("MOODEDGE_INTERPRETER")
    try:
        _, module = interpreter_class((choice,) if choice else INTERPRETER_MODULES)
    except ModelError as exc:
        return _result("tflite interpreter", FAIL, str(exc),
                       "pip install ai-edge-litert (in the venv edge-cli runs from)")
    version = _distribution_version(module)
    if module.startswith("tensorflow"):
        return _result("tflite interpreter", WARN, f"{module} (TensorFlow {version})",
                       "TensorFlow is heavy on a Pi: pip install ai-edge-litert",
                       module=module, version=version)
    return _result("tflite interpreter", PASS, f"{module} ({version})", module=module,
                   version=version)


def _model_probe(modality: str, name: str, key: str, explicit: Path | None,
                 ctx: Context) -> StepResult:
    from edge.manifest import ModelError
    from edge.runtime import load_model, resolve_model_path

    path = resolve_model_path(modality, explicit)
    origin = f"{key} in {ctx.config_path}" if explicit else "shipped with the package"
    try:
        model = load_model(path, modality, ctx.env.get("MOODEDGE_INTERPRETER") or None)
    except ModelError as exc:
        advice = (f"fix {key} in {ctx.config_path} (or remove it to use the shipped model)"
                  if explicit else "the install is incomplete: reinstall moodedge "
                  "(pip install --force-reinstall, or re-run systemd/install.sh)")
        return _result(name, FAIL, str(exc), advice, path=str(path), origin=origin)
    m = model.manifest
    return _result(name, PASS, f"{path} ({origin}): sha256 ok, {len(m.labels)} labels "
                   f"({', '.join(m.labels)})", path=str(path), origin=origin, sha256=m.sha256,
                   labels=list(m.labels), interpreter=model.interpreter_module)


def probe_speech_model(ctx: Context) -> StepResult:
    return _model_probe("speech", "speech model", "audio.speech_model",
                        ctx.config.audio.speech_model, ctx)


def probe_face_model(ctx: Context) -> StepResult:
    return _model_probe("face", "face model", "camera.face_model", ctx.config.camera.face_model, ctx)


def probe_numpy(ctx: Context) -> StepResult:
    import numpy as np

    return _result("numpy", PASS, f"NumPy {np.__version__}", version=np.__version__)


def probe_opencv(ctx: Context) -> StepResult:
    try:
        import cv2
    except ImportError as exc:
        return _result("opencv", FAIL, f"OpenCV does not import: {exc}",
                       "pip install 'opencv-python-headless<5' (with apt's NumPy 1.24: <4.12)")
    cascade = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / \
        "haarcascade_frontalface_default.xml"
    if not hasattr(cv2, "CascadeClassifier") or not cascade.is_file():
        return _result("opencv", FAIL, f"OpenCV {cv2.__version__} has no Haar face cascade",
                       "pip install 'opencv-python-headless>=4.8,<5'", version=cv2.__version__)
    return _result("opencv", PASS, f"OpenCV {cv2.__version__}", version=cv2.__version__)


@functools.lru_cache(maxsize=1)
def service_state() -> tuple[str, str]:
    """(LoadState, ActiveState) of the unit; ("", "") without systemd."""
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemctl") is None:
        return "", ""
    res = subprocess.run(["systemctl", "show", SERVICE, "--property=LoadState,ActiveState"],
                         capture_output=True, text=True, timeout=TIMEOUT_S["service"] - 1)
    props = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
    return props.get("LoadState", ""), props.get("ActiveState", "")


def _held_by_service(error: str) -> bool:
    """Is ``error`` a busy device while the service (which holds it) runs?"""
    busy = any(w in error.lower() for w in ("busy", "in use", "unavailable"))
    try:
        return busy and service_state()[1] == "active"
    except (OSError, subprocess.SubprocessError):
        return False


def probe_microphone(ctx: Context) -> StepResult:
    audio = ctx.config.audio
    if not audio.enabled:
        return _result("microphone", WARN, "audio.enabled = false: the daemon does not listen",
                       "set audio.enabled = true to use the microphone")
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:  # OSError: no PortAudio library
        return _result("microphone", FAIL, f"sounddevice/PortAudio not usable: {exc}",
                       "sudo apt install libportaudio2; pip install sounddevice")
    from edge.audio.sources import capture_rate, find_input_device

    inputs = [d["name"] for d in sd.query_devices() if d["max_input_channels"] > 0]
    if not inputs:
        return _result("microphone", FAIL, "no microphone found (no audio input device)",
                       "plug in a USB microphone; `arecord -l` should list it; the daemon's "
                       "user needs the 'audio' group", inputs=[])
    try:
        index = find_input_device(audio.device or None)
        name = sd.query_devices(index, "input")["name"] if index is not None else \
            sd.query_devices(kind="input")["name"]
    except (LookupError, ValueError, sd.PortAudioError) as exc:
        return _result("microphone", FAIL, str(exc),
                       "set audio.device to part of one of the input names", inputs=inputs)
    want = _speech_sample_rate(ctx)
    try:
        rate = capture_rate(sd, index, want)  # the device's own rate when it refuses the model's
        with sd.InputStream(device=index, channels=1, samplerate=rate, dtype="float32") as s:
            block, _ = s.read(rate // 10)
    except sd.PortAudioError as exc:
        if _held_by_service(str(exc)):
            return _result("microphone", PASS, f"{name!r}: in use by the running {SERVICE}",
                           inputs=inputs, device=name)
        return _result("microphone", FAIL, f"{name!r}: cannot record at {want} Hz: {exc}",
                       "close other programs recording from it (or stop the service: sudo "
                       "systemctl stop moodedge); check it with `arecord -l`", inputs=inputs)
    level = level_dbfs(block)
    if level is None:
        return _result("microphone", WARN, f"{name!r} records at {rate} Hz, but the samples are "
                       "not numbers (NaN/inf)", "try another input (audio.device)",
                       inputs=inputs, device=name)
    resampled = f" (resampled to {want} Hz)" if rate != want else ""
    return _result("microphone", PASS, f"{name!r} records at {rate} Hz{resampled} (level {level:.0f} dBFS); "
                   f"inputs: {', '.join(map(repr, inputs))}", inputs=inputs, device=name)


def level_dbfs(block) -> float | None:
    """RMS level of float samples in dBFS (floor -200); None if any sample is not finite."""
    import numpy as np

    x = np.asarray(block, np.float64)
    if not np.isfinite(x).all():
        return None
    return 20 * math.log10(max(float(np.sqrt((x * x).mean())) if x.size else 0.0, 1e-10))


def _speech_sample_rate(ctx: Context) -> int:
    from edge.manifest import ModelError, load_manifest, manifest_path
    from edge.runtime import resolve_model_path

    try:
        path = manifest_path(resolve_model_path("speech", ctx.config.audio.speech_model))
        return int(load_manifest(path).features.get("sample_rate", 16000))
    except (ModelError, TypeError, ValueError):
        return 16000


def _camera_names() -> dict[str, list[str]]:
    """The cameras each library lists, by name (without opening them)."""
    names: dict[str, list[str]] = {}
    try:
        from picamera2 import Picamera2  # apt: python3-picamera2
    except ImportError:
        pass
    else:
        names["picamera2"] = [str(c.get("Model", c.get("Id", "?")))
                              for c in Picamera2.global_camera_info()]
    v4l = sorted(Path("/sys/class/video4linux").glob("video*"),
                 key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else 0)
    names["v4l2"] = [f"/dev/{p.name} ({_read(p / 'name')})" for p in v4l]
    return names


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "?"


def probe_camera(ctx: Context) -> StepResult:
    cam = ctx.config.camera
    if not cam.enabled:
        return _result("camera", WARN, "camera.enabled = false: the daemon does not look",
                       "set camera.enabled = true to use the camera")
    names = _camera_names()
    pi = names.get("picamera2", [])
    if cam.backend == "picamera2" or (cam.backend == "auto" and pi):
        return _open_picamera(cam, pi, names)
    return _open_opencv(cam, names)


def _open_picamera(cam, pi: list[str], names: dict) -> StepResult:
    from edge.vision.sources import PICAMERA2_MISSING, picamera2_error

    if "picamera2" not in names:
        return _result("camera", FAIL, "camera.backend = 'picamera2' but picamera2 is not "
                       "installed", PICAMERA2_MISSING, cameras=names)
    if not pi:
        err = picamera2_error(IndexError("no camera"))
        return _result("camera", FAIL, "no Pi camera found", str(err), cameras=names)
    from picamera2 import Picamera2

    picam = None
    try:
        picam = Picamera2(0)
        picam.configure(picam.create_video_configuration(
            main={"size": (cam.width, cam.height), "format": "RGB888"}, buffer_count=2))
        picam.start()
        frame = picam.capture_array("main")
    except Exception as exc:  # noqa: BLE001 - libcamera raises many kinds
        if _held_by_service(str(exc)):
            return _result("camera", PASS, f"{pi[0]} (picamera2): in use by the running "
                           f"{SERVICE}", cameras=names)
        return _result("camera", FAIL, f"{pi[0]} (picamera2): cannot capture",
                       str(picamera2_error(exc)), cameras=names)
    finally:
        if picam is not None:
            try:
                picam.close()
            except Exception:  # noqa: BLE001
                pass
    return _result("camera", PASS, f"{pi[0]} (picamera2): a {frame.shape[1]}x{frame.shape[0]} "
                   "frame", cameras=names)


def _open_opencv(cam, names: dict) -> StepResult:
    dev = f"/dev/video{cam.device}"
    listed = names["v4l2"]
    seen = f"cameras seen: {', '.join(listed)}" if listed else "no camera device (/dev/video*)"
    pi_hint = "" if "picamera2" in names else "; for a Pi camera install python3-picamera2"
    if os.name == "posix" and not Path(dev).exists():
        return _result("camera", FAIL, f"no camera at {dev} (camera.device = {cam.device}); "
                       f"{seen}", f"plug in a USB camera (`v4l2-ctl --list-devices`) or set "
                       f"camera.device{pi_hint}", cameras=names)
    try:
        import cv2
    except ImportError as exc:
        return _result("camera", FAIL, f"OpenCV does not import: {exc}",
                       "pip install 'opencv-python-headless<5'", cameras=names)
    backend = cv2.CAP_V4L2 if os.name == "posix" and hasattr(cv2, "CAP_V4L2") else cv2.CAP_ANY
    cap = cv2.VideoCapture(cam.device, backend)
    opened = cap.isOpened()
    try:
        ok, frame = cap.read() if opened else (False, None)
    finally:
        cap.release()
    if not ok or frame is None:
        error = f"{dev}: opens but gives no frame" if opened else f"{dev}: cannot open"
        advice = ("check that no other program uses it (`sudo fuser -v /dev/video*`) and the "
                  "user is in the 'video' group")
        try:
            service_active = service_state()[1] == "active"
        except (OSError, subprocess.SubprocessError):
            service_active = False
        if service_active:  # V4L2 does not say who holds it: likely the daemon
            return _result("camera", WARN, f"{error}; the running {SERVICE} may hold it",
                           f"to test it: sudo systemctl stop moodedge; then {advice}",
                           cameras=names)
        return _result("camera", FAIL, f"{error}; {seen}", advice, cameras=names)
    return _result("camera", PASS, f"{dev} (OpenCV): a {frame.shape[1]}x{frame.shape[0]} frame; "
                   f"{seen}", cameras=names)


def probe_broker(ctx: Context) -> StepResult:
    from edge.publish.mqtt import make_client

    m = ctx.config.mqtt
    where = f"{m.host}:{m.port}{' (TLS)' if m.tls.enabled else ''}"
    who = f" as {m.username!r}" if m.username else " (anonymous)"
    client = make_client(m, f"{m.client_id}-doctor-{os.getpid()}"[:64])
    client.connect_timeout = TIMEOUT_S["broker"] - 2
    answered = threading.Event()
    codes = []

    def on_connect(client, userdata, flags, reason_code, properties=None):
        codes.append(reason_code)
        answered.set()

    client.on_connect = on_connect
    advice = (f"is the broker running and reachable? check mqtt.host/mqtt.port in "
              f"{ctx.config_path or 'the config'} (`mosquitto_sub -h {m.host} -p {m.port} -t '#'`)")
    try:
        client.connect(m.host, m.port, keepalive=m.keepalive_s)
    except (OSError, ValueError) as exc:  # refused, no route, DNS, TLS (ssl.SSLError is OSError)
        return _result("broker", FAIL, f"{where}: cannot connect: {exc}", advice, broker=where)
    client.loop_start()
    try:
        if not answered.wait(TIMEOUT_S["broker"] - 2):
            return _result("broker", FAIL, f"{where}: connected, but no MQTT answer", advice,
                           broker=where)
        if codes[0].is_failure:
            return _result("broker", FAIL, f"{where}: refused{who}: {codes[0]}",
                           "check mqtt.username and the password (mqtt.password_file, "
                           "MOODEDGE_MQTT_PASSWORD or the mqtt-password credential)",
                           broker=where)
    finally:
        client.disconnect()
        client.loop_stop()
    return _result("broker", PASS, f"{where}: connected{who} and disconnected", broker=where)


def probe_state_dir(ctx: Context) -> StepResult:
    d = ctx.config.state_dir(ctx.env)
    if not d.exists():
        parent = next(p for p in d.parents if p.exists())
        if os.access(parent, os.W_OK | os.X_OK):
            return _result("state directory", PASS, f"{d}: not there yet; created on first use",
                           path=str(d))
        return _result("state directory", FAIL, f"{d}: missing, and {parent} is not writable",
                       "run as the daemon's user (sudo -u moodedge …) or set daemon.state_dir",
                       path=str(d))
    try:
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".doctor-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        return _result("state directory", FAIL, f"{d}: not writable ({exc.strerror})",
                       "run as the daemon's user (sudo -u moodedge …) or set daemon.state_dir",
                       path=str(d))
    mode = d.stat().st_mode & 0o777
    if mode & 0o007:
        return _result("state directory", WARN, f"{d}: writable, but others may read it "
                       f"(mode {mode:04o})", f"chmod o-rwx {d}", path=str(d))
    return _result("state directory", PASS, f"{d}: writable (mode {mode:04o})", path=str(d))


def probe_calibration(ctx: Context) -> StepResult:
    from edge.calibrate import FILE_NAME, CalibrationError, age_s, load_calibration

    d = ctx.config.state_dir(ctx.env)
    advice = f"edge-cli calibrate --state-dir {d}, then: sudo systemctl reload moodedge"
    try:
        cal = load_calibration(d)
    except (CalibrationError, ValueError, OSError) as exc:
        return _result("calibration", FAIL, f"{d / FILE_NAME}: {exc}",
                       f"the daemon runs uncalibrated: {advice} (or edge-cli calibrate --restore)")
    if cal is None:
        return _result("calibration", WARN, f"not calibrated ({d / FILE_NAME} not found)", advice)
    days = age_s(cal) / 86400
    if days > CALIBRATION_OLD_DAYS:
        return _result("calibration", WARN, f"calibrated {days:.0f} days ago ({cal.created})",
                       f"recalibrate if the room or the microphone changed: {advice}",
                       calibrated_at=cal.created, age_days=round(days, 1))
    return _result("calibration", PASS, f"calibrated {days:.1f} days ago ({cal.created})",
                   calibrated_at=cal.created, age_days=round(days, 1))


def probe_service(ctx: Context) -> StepResult:
    try:
        load, active = service_state()
    except subprocess.TimeoutExpired:
        return _result("service", FAIL, "systemctl did not answer", "is systemd healthy? "
                       "systemctl status")
    if not load:
        return _result("service", WARN, "no systemd here: not running as a service",
                       "on a Raspberry Pi: sudo systemd/install.sh")
    if load == "not-found":
        return _result("service", WARN, f"{SERVICE} is not installed", "sudo systemd/install.sh")
    if active == "active":
        return _result("service", PASS, f"{SERVICE} is active")
    status = FAIL if active == "failed" else WARN
    return _result("service", status, f"{SERVICE} is {active}",
                   "journalctl -u moodedge -n 50; then: sudo systemctl restart moodedge")


PROBES: tuple[tuple[str, Probe], ...] = (
    ("python", probe_python),
    ("tflite interpreter", probe_interpreter),
    ("speech model", probe_speech_model),
    ("face model", probe_face_model),
    ("numpy", probe_numpy),
    ("opencv", probe_opencv),
    ("microphone", probe_microphone),
    ("camera", probe_camera),
    ("broker", probe_broker),
    ("state directory", probe_state_dir),
    ("calibration", probe_calibration),
    ("service", probe_service),
)


# ------------------------------------------------------------------ running them
def check_config(path: Path | None, env: Mapping[str, str]) -> tuple[StepResult, Config]:
    if path is None:
        advice = ""
        if SERVICE_CONFIG.is_file():
            advice = f"the service reads {SERVICE_CONFIG}: edge-cli doctor --config {SERVICE_CONFIG}"
        return (_result("config", WARN if advice else PASS,
                        "no --config: checking the built-in defaults", advice), Config())
    try:
        cfg = load_config(path, env=env)
    except ConfigError as exc:
        return (_result("config", FAIL, str(exc), f"fix it (edge-cli config check {path}); the "
                        "checks below use the built-in defaults"), Config())
    return _result("config", PASS, f"{path}: valid", path=str(path)), cfg


def _bounded(name: str, probe: Probe, ctx: Context) -> Callable[[], StepResult]:
    """Start ``probe`` in a daemon thread; the returned function waits for it until its
    deadline and then reports it as failed (the thread is left behind, never joined)."""
    box: list[StepResult] = []
    timeout = TIMEOUT_S.get(name, DEFAULT_TIMEOUT_S)

    def target() -> None:
        try:
            box.append(probe(ctx))
        except Exception as exc:  # noqa: BLE001 - a probe's crash is its result
            box.append(_result(name, FAIL, f"the check itself failed: {type(exc).__name__}: "
                               f"{exc}", "report this with the output of edge-cli doctor -v"))

    thread = threading.Thread(target=target, name=f"doctor-{name}", daemon=True)
    deadline = time.monotonic() + timeout
    thread.start()

    def wait() -> StepResult:
        thread.join(max(0.0, deadline - time.monotonic()))
        if box:
            return box[0]
        return _result(name, FAIL, f"no answer within {timeout:g} s (a hung driver, device or "
                       "network?)", "unplug and replug the device, or reboot; then run again")

    return wait


def run_doctor(config_path: Path | None = None, env: Mapping[str, str] | None = None,
               probes: tuple[tuple[str, Probe], ...] = PROBES) -> list[StepResult]:
    """The config line, then one line per probe, in :data:`PROBES` order. The probes run
    at once, each bounded by its timeout."""
    env = os.environ if env is None else env
    first, cfg = check_config(config_path, env)
    ctx = Context(cfg, config_path, env)
    waits = [_bounded(name, probe, ctx) for name, probe in probes]
    return [first, *(wait() for wait in waits)]


def failed(results: list[StepResult]) -> bool:
    return any(r.status == FAIL for r in results)
