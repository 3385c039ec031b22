"""edge-cli doctor: one PASS/WARN/FAIL line per check with advice, bounded in time, exit 1 on
any FAIL. The microphone and camera are made absent by the config (a device name and a
camera index no machine has), so the FAILs do not depend on this machine's hardware."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from test_daemon_support import (  # noqa: F401 - broker_fixture provides "broker"
    broker_fixture,
    needs_mosquitto,
    write_config,
)

from edge import doctor
from edge.calibrate import Calibration, save_calibration
from edge.demo.broker import Broker, free_port
from edge.runtime import SHIPPED_MODELS

NAMES = ["config", *(name for name, _ in doctor.PROBES)]


def no_hardware_config(tmp_path: Path, port: int, **extra: dict) -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o700, exist_ok=True)
    sections = {"mqtt": {"host": "127.0.0.1", "port": port, "device_id": "doctortest"},
                "audio": {"device": "no-such-microphone-here"},
                "camera": {"backend": "opencv", "device": 63},
                "daemon": {"state_dir": str(state)}}
    for k, v in extra.items():
        sections[k] = {**sections.get(k, {}), **v}
    return write_config(tmp_path / "config.toml", sections)


def doctor_json(config: Path) -> tuple[int, dict]:
    res = run_cli("doctor", "--json", "--config", str(config), timeout=120)
    report = json.loads(res.stdout)
    return res.returncode, {c["name"]: c for c in report["checks"]} | {"": report}


def test_no_microphone_camera_or_broker_fail_clearly_models_pass(tmp_path):
    code, checks = doctor_json(no_hardware_config(tmp_path, free_port()))
    assert code == 1
    report = checks.pop("")
    assert list(checks) == NAMES
    assert report["ok"] is False
    assert report["fail"] == sum(c["status"] == "fail" for c in checks.values()) >= 3
    assert report["elapsed_s"] <= 10
    status = {k: c["status"] for k, c in checks.items()}
    assert status["microphone"] == status["camera"] == status["broker"] == "fail"
    for name in ("config", "python", "tflite interpreter", "speech model", "face model", "numpy",
                 "opencv", "state directory"):
        assert status[name] == "pass", checks[name]
    assert status["calibration"] == "warn" and "not calibrated" in checks["calibration"]["message"]
    for name in ("microphone", "camera", "broker", "calibration"):
        assert checks[name]["advice"], checks[name]  # every problem says what to do
    mic = checks["microphone"]["message"]
    assert "PortAudio" in mic or "no-such-microphone-here" in mic or "no microphone" in mic, mic
    assert "/dev/video63" in checks["camera"]["message"]
    assert "127.0.0.1" in checks["broker"]["message"] and "refused" in checks["broker"]["message"]
    for modality, name in SHIPPED_MODELS.items():
        c = checks[f"{modality} model"]
        assert c["data"]["path"] == str(ROOT / "models_tflite" / name)
        assert "sha256 ok" in c["message"] and len(c["data"]["labels"]) in (7, 8)


@needs_mosquitto
def test_a_reachable_broker_and_a_calibration_pass(tmp_path, broker):
    config = no_hardware_config(tmp_path, broker.port)
    save_calibration(tmp_path / "state", Calibration(created="2026-01-01T00:00:00+00:00", steps=[]))
    code, checks = doctor_json(config)
    assert code == 1  # the microphone and camera still fail
    assert checks["broker"]["status"] == "pass", checks["broker"]
    assert checks["broker"]["message"] == f"127.0.0.1:{broker.port}: connected (anonymous) and " \
                                          "disconnected"
    assert checks["calibration"]["data"]["calibrated_at"] == "2026-01-01T00:00:00+00:00"


def test_text_lines_and_exit_code(tmp_path):
    res = run_cli("doctor", "--config", str(no_hardware_config(tmp_path, free_port())))
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert [line.split("]")[0] + "]" for line in lines[:-2]] == [
        "[PASS]", "[PASS]", "[PASS]", "[PASS]", "[PASS]", "[PASS]", "[PASS]", "[FAIL]", "[FAIL]",
        "[FAIL]", "[PASS]", "[WARN]"]
    assert lines[-2].split("]")[0] + "]" in ("[PASS]", "[WARN]", "[FAIL]")  # the service
    assert [line.split("] ")[1].split(":")[0] for line in lines[:-1]] == NAMES
    assert "  → " in lines[NAMES.index("broker")]
    assert lines[-1].endswith(" s)") and " fail (" in lines[-1]


def test_a_bad_config_and_a_bad_model_path_are_failures_that_name_them(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[mqtt]\nport = 'x'\n")
    code, checks = doctor_json(bad)
    assert code == 1 and checks["config"]["status"] == "fail"
    assert "mqtt.port" in checks["config"]["message"]
    missing = tmp_path / "mine" / "speech.tflite"
    config = no_hardware_config(tmp_path, free_port(), audio={"speech_model": str(missing)})
    code, checks = doctor_json(config)
    speech = checks["speech model"]
    assert speech["status"] == "fail" and str(missing.with_suffix(".json")) in speech["message"]
    assert "audio.speech_model" in speech["advice"] and str(config) in speech["advice"]
    assert checks["face model"]["status"] == "pass"


def ctx(tmp_path: Path, config: Path | None = None) -> doctor.Context:
    from edge.config import load_config

    config = config or no_hardware_config(tmp_path, free_port())
    return doctor.Context(load_config(config), config, {})


def test_a_hung_probe_is_a_failure_not_a_hang(tmp_path, monkeypatch):
    release = threading.Event()
    monkeypatch.setitem(doctor.TIMEOUT_S, "hang", 0.2)

    def hang(ctx):
        release.wait()  # never answers until the test ends
        raise AssertionError("unreachable")

    def crash(ctx):
        raise RuntimeError("boom")

    try:
        results = doctor.run_doctor(no_hardware_config(tmp_path, free_port()), env={},
                                    probes=(("hang", hang), ("crash", crash),
                                            ("numpy", doctor.probe_numpy)))
    finally:
        release.set()
    assert [(r.name, r.status) for r in results] == [
        ("config", "pass"), ("hang", "fail"), ("crash", "fail"), ("numpy", "pass")]
    assert "no answer within 0.2 s" in results[1].message
    assert "RuntimeError: boom" in results[2].message


def test_a_silent_broker_is_bounded(tmp_path, monkeypatch):
    """A TCP listener that never speaks MQTT: connected, no answer, FAIL within the bound."""
    monkeypatch.setitem(doctor.TIMEOUT_S, "broker", 3.0)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        c = ctx(tmp_path, no_hardware_config(tmp_path, port))
        (first, result) = doctor.run_doctor(c.config_path, env={},
                                            probes=(("broker", doctor.probe_broker),))
    assert result.status == "fail", result
    assert "no MQTT answer" in result.message or "no answer within" in result.message


def test_state_directory_and_calibration_states(tmp_path):
    c = ctx(tmp_path)
    state = c.config.state_dir()
    os.chmod(state, 0o755)
    r = doctor.probe_state_dir(c)
    assert r.status == "warn" and "others may read" in r.message and "chmod o-rwx" in r.advice
    os.chmod(state, 0o700)
    assert doctor.probe_state_dir(c).status == "pass"
    (state / "calibration.json").write_text("{not json")
    r = doctor.probe_calibration(c)
    assert r.status == "fail" and "calibration.json" in r.message and "not valid JSON" in r.message
    save_calibration(state, Calibration(created="2020-01-01T00:00:00+00:00", steps=[]))
    r = doctor.probe_calibration(c)
    assert r.status == "warn" and "days ago" in r.message and "recalibrate" in r.advice
    gone = ctx(tmp_path, no_hardware_config(tmp_path, free_port(),
                                            daemon={"state_dir": str(tmp_path / "new" / "d")}))
    r = doctor.probe_state_dir(gone)
    assert r.status == "pass" and "created on first use" in r.message
    assert not (tmp_path / "new").exists()  # the doctor only looks


def test_disabled_devices_are_warnings(tmp_path):
    c = ctx(tmp_path, no_hardware_config(tmp_path, free_port(), audio={"enabled": False},
                                         camera={"enabled": False}))
    assert doctor.probe_microphone(c).status == "warn"
    assert doctor.probe_camera(c).status == "warn"


@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="systemd runs here")
def test_no_systemd_is_a_warning(tmp_path):
    r = doctor.probe_service(ctx(tmp_path))
    assert r.status == "warn" and "install.sh" in r.advice


def test_without_config_it_points_at_the_service_config(tmp_path, monkeypatch):
    service_config = tmp_path / "config.toml"
    monkeypatch.setattr(doctor, "SERVICE_CONFIG", service_config)
    first, cfg = doctor.check_config(None, {})
    assert first.status == "pass" and "built-in defaults" in first.message
    service_config.write_text("")
    first, cfg = doctor.check_config(None, {})
    assert first.status == "warn" and f"--config {service_config}" in first.advice


def test_microphone_level_of_real_and_broken_samples():
    """A device that hands over NaN (seen with ALSA's null device) is not a level of 'nan'."""
    import numpy as np
    import soundfile as sf

    from edge.demo import MEDIA_DIR

    speech, _ = sf.read(sorted(MEDIA_DIR.glob("*.flac"))[0], dtype="float32")
    assert -40 < doctor.level_dbfs(speech) < -3
    assert doctor.level_dbfs(np.zeros(1600, np.float32)) == -200
    assert doctor.level_dbfs(np.full(1600, np.nan, np.float32)) is None


@needs_mosquitto
@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="no mosquitto_passwd")
def test_the_broker_is_tried_with_the_configured_credentials(tmp_path):
    b = Broker()
    passwd = b.dir / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "moodedge", "s3cret"],
                   check=True, capture_output=True)
    (b.dir / "mosquitto.conf").write_text(  # user: as root, keep the rights to read passwd
        f"listener {b.port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\n"
        f"persistence false\nuser {getpass.getuser()}\n")
    secret = tmp_path / "mqtt-password"
    config = no_hardware_config(tmp_path, b.port, mqtt={"username": "moodedge",
                                                        "password_file": str(secret)})
    with b:
        got = {}
        for password in ("s3cret", "wrong"):
            secret.write_text(password + "\n")
            got[password] = doctor.probe_broker(ctx(tmp_path, config))
    assert got["s3cret"].status == "pass", got["s3cret"]
    assert got["s3cret"].message == f"127.0.0.1:{b.port}: connected as 'moodedge' and disconnected"
    assert got["wrong"].status == "fail" and "refused as 'moodedge'" in got["wrong"].message
    assert "mqtt.username" in got["wrong"].advice, got["wrong"]
