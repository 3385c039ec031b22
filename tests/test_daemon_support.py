"""Shared helpers for the daemon/MQTT/demo tests: a real Mosquitto on a free port,
a subscriber, a daemon subprocess.  (No tests here.)"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import pytest
from conftest import ROOT, SHIPPED_SPEECH

from edge.config import load_config
from edge.demo import MEDIA_DIR
from edge.demo.broker import Broker, find_mosquitto
from edge.publish.mqtt import Message, Subscriber

DEMO_CLIPS = sorted(MEDIA_DIR.glob("*.flac"))


def _have_mosquitto() -> bool:
    try:
        find_mosquitto()
        return True
    except FileNotFoundError:
        return False


needs_mosquitto = pytest.mark.skipif(not _have_mosquitto(),
                                     reason="mosquitto not installed (apt install mosquitto)")


@pytest.fixture(name="broker")
def broker_fixture():
    """A private Mosquitto on a free 127.0.0.1 port, killed after the test."""
    if not _have_mosquitto():
        pytest.skip("mosquitto not installed (apt install mosquitto)")
    with Broker() as b:
        yield b


@lru_cache(maxsize=1)
def _speech_model_problem() -> tuple[Path, str | None]:
    from edge.audio.speech import speech_recogniser

    env = os.environ.get("MOODEDGE_TEST_SPEECH_MODEL")
    path = Path(env) if env else SHIPPED_SPEECH
    try:
        speech_recogniser(path)
    except Exception as exc:  # noqa: BLE001 - any reason the model cannot be used
        return path, f"{type(exc).__name__}: {exc}"
    return path, None


def speech_model() -> Path:
    """A loadable speech model (the shipped one), else skip saying why."""
    path, problem = _speech_model_problem()
    if problem:
        pytest.skip(f"speech model {path} does not load: {problem}")
    return path


class ListSink:
    """A :class:`edge.daemon.base.Sink` that keeps what the daemon publishes."""

    def __init__(self):
        self.moods, self.tracks, self.stats, self.events = [], [], [], []

    def publish(self, topic, p):
        {"mood": self.moods, "tracks": self.tracks, "stats": self.stats,
         "events": self.events}[topic].append(p)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def write_config(path: Path, sections: dict[str, dict]) -> Path:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def daemon_config(tmp_path: Path, port: int, device_id: str, **extra: dict) -> Path:
    sections = {
        "mqtt": {"host": "127.0.0.1", "port": port, "device_id": device_id},
        "audio": {"speech_model": str(speech_model())},
        "stats": {"interval_s": 2.0},
        "daemon": {"state_dir": str(tmp_path / "state")},
    }
    for k, v in extra.items():
        sections.setdefault(k, {}).update(v)
    return write_config(tmp_path / f"{device_id}.toml", sections)


def subscriber(port: int, device_id: str, discovery: bool = True) -> Subscriber:
    cfg = load_config(None, {"mqtt.host": "127.0.0.1", "mqtt.port": port,
                             "mqtt.device_id": device_id}, env={})
    topics = [f"moodedge/{device_id}/#"]
    if discovery:
        topics.append(f"homeassistant/device/{device_id}/config")
    return Subscriber(cfg.mqtt, topics).start()


def wait_for(sub: Subscriber, pred: Callable[[Message], bool], timeout: float,
             seen: list[Message] | None = None) -> Message:
    """The first message matching ``pred`` (all messages read are appended to ``seen``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = sub.messages.get(timeout=0.1)
        except queue.Empty:
            continue
        if seen is not None:
            seen.append(msg)
        if pred(msg):
            return msg
    got = [m.topic for m in seen] if seen is not None else "?"
    raise AssertionError(f"no matching message within {timeout} s (saw {got})")


def topic_is(name: str) -> Callable[[Message], bool]:
    return lambda m: m.topic.endswith("/" + name)


def start_daemon(tmp_path: Path, *args: str) -> subprocess.Popen:
    log = open(tmp_path / "daemon.log", "ab")  # noqa: SIM115 - closed with the process
    env = {**os.environ, "MOODEDGE_STATE_DIR": str(tmp_path / "state")}
    return subprocess.Popen([sys.executable, "-m", "edge.cli", "run", *args], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, env=env)


def daemon_log(tmp_path: Path) -> str:
    p = tmp_path / "daemon.log"
    return p.read_text(errors="replace")[-3000:] if p.exists() else ""


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_to_end(daemon, timeout: float = 120.0) -> None:
    """Run an in-process daemon over its file input to the end (exit code 0); a hang
    stops it after ``timeout`` and fails the caller's assertions, not the test run."""
    import threading

    t = threading.Timer(timeout, daemon.request_stop)
    t.start()
    try:
        assert daemon.run(install_signals=False) == 0
    finally:
        t.cancel()
