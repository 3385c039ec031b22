"""The daemon applies calibration.json at start and reloads it on SIGHUP or a command:
in-process hand-over to the running stages, then end to end against a real Mosquitto."""

from __future__ import annotations

import json
import signal
import threading
import time
from types import SimpleNamespace

import pytest
from test_daemon_support import (  # noqa: F401 - broker_fixture provides "broker"
    DEMO_CLIPS,
    ListSink,
    broker_fixture,
    daemon_config,
    daemon_log,
    start_daemon,
    stop,
    subscriber,
    topic_is,
    wait_for,
)

from edge import calibrate as C
from edge.audio.features import FeatureParams
from edge.audio.vad import VadParams
from edge.config import load_config
from edge.daemon import Calibrated, Daemon, RunOptions
from edge.publish.discovery import discovery_payload

T1, T2 = "2024-05-01T10:00:00+00:00", "2024-06-01T12:30:00+00:00"


def write_calibration(state, created=T1, threshold=-60.0, voice=(0.3, -0.2), reliability=0.6):
    cal = C.Calibration(created=created, steps=[], vad={"threshold_db": threshold},
                        offsets={"voice": list(voice)}, reliability={"voice": reliability})
    return C.save_calibration(state, cal)


class FakeSpeech:
    """Never hears speech; records the thread that set its VAD."""

    params = FeatureParams()

    def __init__(self):
        self._vad, self.set_on = VadParams(), []

    @property
    def vad(self):
        return self._vad

    @vad.setter
    def vad(self, value):
        self.set_on.append(threading.current_thread().name)
        self._vad = value

    def classify_window(self, window):
        return SimpleNamespace(label=None, probabilities={})


# -- in-process -----------------------------------------------------------------------


def test_calibration_overrides_the_config_key_by_key(tmp_path):
    cfg = load_config(None, {"daemon.state_dir": str(tmp_path),
                             "audio.vad": {"threshold_db": -70.0, "min_dynamic_db": 12.0},
                             "fusion.reliability": {"face": 0.9, "voice": 0.3},
                             "fusion.calibration_offset": {"face": [0.1, 0.0]}}, env={})
    write_calibration(tmp_path, threshold=-55.0)
    speech = FakeSpeech()
    d = Daemon(cfg, RunOptions(), sink=ListSink(), speech=speech, face=None)
    assert speech.vad == VadParams(threshold_db=-55.0, min_dynamic_db=12.0)
    fusion = d.calibrated.fusion
    assert dict(fusion.reliability) == {"face": 0.9, "voice": 0.6}
    assert dict(fusion.calibration_offset) == {"face": (0.1, 0.0), "voice": (0.3, -0.2)}
    s = d.stats_payload()["calibration"]
    assert s["calibrated_at"] == T1 and s["age_s"] > 3e7 and s["error"] is None
    assert s["vad_threshold_db"] == -55.0 and s["offsets"]["voice"] == [0.3, -0.2]
    assert s["reliability"] == {"face": 0.9, "voice": 0.6}
    json.dumps(s)

    (tmp_path / C.FILE_NAME).unlink()
    none = Daemon(cfg, RunOptions(), sink=ListSink(), speech=None, face=None).calibration_stats()
    assert none["calibrated_at"] is None and none["age_s"] is None
    assert none["vad_threshold_db"] == -70.0 and none["reliability"]["voice"] == 0.3


def test_a_calibration_made_with_another_model_is_not_applied_to_this_one(tmp_path, caplog):
    """Regression: calibration.json was applied whatever models it was measured with, so
    after a model upgrade the old model's VAD threshold (its room levels, its no-speech
    threshold) and voice baseline steered the new one."""
    cfg = load_config(None, {"daemon.state_dir": str(tmp_path),
                             "audio.vad": {"threshold_db": -70.0}}, env={})
    cal = C.Calibration(created=T1, steps=[], vad={"threshold_db": -55.0},
                        offsets={"voice": [0.3, -0.2], "face": [0.1, 0.1]},
                        reliability={"voice": 0.6, "face": 0.7},
                        models={"speech": "sha-of-the-old-model", "face": "sha-of-the-face"})
    C.save_calibration(tmp_path, cal)
    speech = FakeSpeech()
    speech.model = SimpleNamespace(manifest=SimpleNamespace(sha256="sha-of-the-new-model"))
    face = SimpleNamespace(model=SimpleNamespace(manifest=SimpleNamespace(sha256="sha-of-the-face")))
    with caplog.at_level("WARNING", logger="edge.daemon.calibration"):
        d = Daemon(cfg, RunOptions(), sink=ListSink(), speech=speech, face=face)
    assert speech.vad.threshold_db == -70.0  # the config's, not the old model's
    fusion = d.calibrated.fusion
    assert "voice" not in fusion.calibration_offset and fusion.offset_of("face") == (0.1, 0.1)
    assert fusion.reliability_of("face") == 0.7
    s = d.calibration_stats()
    assert s["stale_models"] == ["speech"] and s["vad_threshold_db"] == -70.0
    warnings = [r.getMessage() for r in caplog.records if "another speech model" in r.getMessage()]
    assert len(warnings) == 1 and "run edge-cli calibrate again" in warnings[0]
    # the same models: all of it applies; a calibration that names none is taken as it is
    speech.model.manifest.sha256 = "sha-of-the-old-model"
    d = Daemon(cfg, RunOptions(), sink=ListSink(), speech=speech, face=face)
    assert speech.vad.threshold_db == -55.0 and d.calibration_stats()["stale_models"] == []
    C.save_calibration(tmp_path, C.Calibration(created=T2, steps=[], vad={"threshold_db": -52.0}))
    speech.model.manifest.sha256 = "sha-of-yet-another-model"
    Daemon(cfg, RunOptions(), sink=ListSink(), speech=speech, face=face)
    assert speech.vad.threshold_db == -52.0


def test_reload_hands_new_settings_to_the_running_stages(tmp_path):
    cfg = load_config(None, {"daemon.state_dir": str(tmp_path)}, env={})
    write_calibration(tmp_path)
    speech, sink = FakeSpeech(), ListSink()
    d = Daemon(cfg, RunOptions(audio_files=(DEMO_CLIPS[0],), fast=True, loop=True), sink=sink,
               speech=speech, face=None)
    d.build()
    assert d.mood.fuser.params.calibration_offset["voice"] == (0.3, -0.2)
    for w in d.workers:
        w.start()
    try:
        write_calibration(tmp_path, created=T2, threshold=-50.0, voice=(-0.1, 0.2))
        d.on_command(b'{"cmd": "reload_calibration", "id": 9}')  # as on the MQTT thread
        assert sink.events == []  # served by the main loop
        assert d.serve_requests()
        ev = sink.events[-1]
        assert ev["ok"] and ev["id"] == 9 and ev["trigger"] == "cmd"
        assert ev["result"]["calibrated_at"] == T2
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and (
                speech.vad.threshold_db != -50.0
                or d.mood.fuser.params.offset_of("voice") != (-0.1, 0.2)):
            time.sleep(0.02)
        assert speech.vad.threshold_db == -50.0
        assert speech.set_on[-1] == "speech"  # applied on the speech stage's own thread
        assert d.mood.fuser.params.offset_of("voice") == (-0.1, 0.2)
        assert d.healthy()
    finally:
        d.stop_event.set()
        for w in d.workers:
            w.join(2)


@pytest.mark.parametrize(("text", "why"), [
    ("{not json", "not valid JSON"),
    ('{"version": 1, "created": "2024-05-01", "steps": [], "offsets": []}', "offsets"),
    ('{"version": 1, "created": "yesterday", "steps": []}', "yesterday"),
    ('{"version": 1, "created": "2024-05-01", "steps": [], "reliability": {"voice": 5}}',
     "reliability"),
    ('{"version": 1, "created": "2024-05-01", "steps": [], "vad": 3}', "field 'vad'"),
])
def test_a_bad_calibration_file_is_a_calibration_error(tmp_path, text, why):
    (tmp_path / C.FILE_NAME).write_text(text)
    with pytest.raises(C.CalibrationError, match=why):
        Calibrated.load(load_config(None, env={}), tmp_path)


def test_corrupt_file_runs_uncalibrated_then_a_bad_reload_keeps_the_good_one(tmp_path):
    cfg = load_config(None, {"daemon.state_dir": str(tmp_path)}, env={})
    (tmp_path / C.FILE_NAME).write_text("{not json")
    sink = ListSink()
    d = Daemon(cfg, RunOptions(), sink=sink, speech=None, face=None)
    s = d.calibration_stats()
    assert s["calibrated_at"] is None and "not valid JSON" in s["error"]
    assert s["vad_threshold_db"] == cfg.audio.vad.threshold_db
    assert sink.events == []  # held until the broker is connected
    d.serve_requests()
    assert sink.events[0]["ok"] is False and sink.events[0]["trigger"] == "start"
    assert "running uncalibrated" in sink.events[0]["error"]

    write_calibration(tmp_path)
    assert d.reload_calibration("SIGHUP")
    (tmp_path / C.FILE_NAME).write_text('{"version": 99}')
    assert not d.reload_calibration("SIGHUP")
    s = d.calibration_stats()
    assert s["calibrated_at"] == T1 and "keeping the calibration in use" in s["error"]
    assert [e["ok"] for e in sink.events] == [False, True, False]


def test_home_assistant_calibrated_at_sensor_renders_from_stats():
    jinja2 = pytest.importorskip("jinja2")
    comps = discovery_payload("pi", "moodedge/pi")["cmps"]
    sensor = comps["moodedge_pi_calibrated_at"]
    assert sensor["device_class"] == "timestamp" and sensor["state_topic"] == "moodedge/pi/stats"
    env = jinja2.Environment()

    def render(key, stats):
        return env.from_string(sensor[key]).render(value_json=stats)

    assert render("value_template", {"calibration": {"calibrated_at": T1}}) == T1
    assert render("value_template", {"calibration": {"calibrated_at": None}}) == "None"
    assert render("value_template", {"cpu_percent": 1}) == "None"  # an older daemon
    attrs = json.loads(render("json_attributes_template", {"calibration": {"age_s": 5}}))
    assert attrs == {"age_s": 5}
    assert json.loads(comps["moodedge_pi_reload_calibration"]["payload_press"]) == {
        "cmd": "reload_calibration"}


# -- end to end ------------------------------------------------------------------------


def _run_to_end(broker, tmp_path, device_id):
    """Start a daemon over the first demo clip (fast); a subscriber is ready first."""
    conf = daemon_config(tmp_path, broker.port, device_id)
    sub = subscriber(broker.port, device_id, discovery=False)
    proc = start_daemon(tmp_path, "--config", str(conf), "--audio-file", str(DEMO_CLIPS[0]),
                        "--fast", "--exit-when-done")
    return sub, proc


def test_calibration_at_start_shifts_the_published_mood(broker, tmp_path):
    plain, calibrated = tmp_path / "plain", tmp_path / "cal"
    plain.mkdir()
    write_calibration(calibrated / "state", threshold=-75.0, voice=(0.3, -0.2))
    runs = [_run_to_end(broker, plain, "plain"), _run_to_end(broker, calibrated, "cal")]
    out = []
    try:
        for (sub, proc), where in zip(runs, (plain, calibrated)):
            seen = []
            wait_for(sub, lambda m: m.topic.endswith("availability") and m.payload == b"offline",
                     30, seen)
            assert proc.wait(10) == 0, daemon_log(where)
            out.append(([m.json() for m in seen if m.topic.endswith("/mood")],
                        [m.json() for m in seen if m.topic.endswith("/stats")]))
    finally:
        for sub, proc in runs:
            stop(proc)
            sub.stop()
    (moods0, stats0), (moods1, stats1) = out
    assert stats0[-1]["calibration"]["calibrated_at"] is None
    c = stats1[-1]["calibration"]
    assert c["calibrated_at"] == T1 and c["offsets"] == {"voice": [0.3, -0.2]} and not c["error"]
    # Valence and arousal of every circumplex label are far enough from the edges that
    # this offset never clips: the calibrated mood is the plain one moved by the offset.
    v0, v1 = moods0[-1]["sources"]["voice"], moods1[-1]["sources"]["voice"]
    assert v1["valence"] == pytest.approx(v0["valence"] - 0.3, abs=2e-3), (v0, v1)
    assert v1["arousal"] == pytest.approx(v0["arousal"] + 0.2, abs=2e-3), (v0, v1)
    assert moods1[-1]["valence"] == pytest.approx(moods0[-1]["valence"] - 0.3, abs=2e-3)


def _is_reload(ok, **fields):
    def pred(m):
        if not m.topic.endswith("/events"):
            return False
        e = m.json()
        return (e.get("cmd") == "reload_calibration" and e["ok"] is ok
                and all(e.get(k) == v for k, v in fields.items()))
    return pred


def _stats_calibrated_at(when):
    return lambda m: (m.topic.endswith("/stats")
                      and m.json()["calibration"]["calibrated_at"] == when)


def test_sighup_and_command_reload_and_a_corrupt_file_never_stops_the_daemon(broker, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / C.FILE_NAME).write_text("{half a calibr")
    conf = daemon_config(tmp_path, broker.port, "rl")
    sub = subscriber(broker.port, "rl", discovery=False)
    proc = start_daemon(tmp_path, "--config", str(conf), "--audio-file", str(DEMO_CLIPS[0]),
                        "--loop")
    cmd_topic = "moodedge/rl/cmd"
    try:
        ev = wait_for(sub, _is_reload(False, trigger="start"), 20).json()
        assert "not valid JSON" in ev["error"] and "running uncalibrated" in ev["error"]
        s = wait_for(sub, topic_is("stats"), 10).json()["calibration"]
        assert s["calibrated_at"] is None and "not valid JSON" in s["error"]

        write_calibration(state, created=T1)
        proc.send_signal(signal.SIGHUP)
        ev = wait_for(sub, _is_reload(True, trigger="SIGHUP"), 5).json()
        assert ev["result"]["calibrated_at"] == T1
        s = wait_for(sub, _stats_calibrated_at(T1), 5).json()["calibration"]
        assert s["vad_threshold_db"] == -60.0 and s["error"] is None

        write_calibration(state, created=T2, threshold=-50.0)
        sub.client.publish(cmd_topic, json.dumps({"cmd": "reload_calibration", "id": "r1"}),
                           qos=1)
        ev = wait_for(sub, _is_reload(True, id="r1"), 5).json()
        assert ev["result"]["calibrated_at"] == T2 and ev["result"]["vad_threshold_db"] == -50.0
        wait_for(sub, _stats_calibrated_at(T2), 5)

        (state / C.FILE_NAME).write_text("[]")
        sub.client.publish(cmd_topic, b'{"cmd": "reload_calibration", "id": "r2"}', qos=1)
        ev = wait_for(sub, _is_reload(False, id="r2"), 5).json()
        assert "keeping the calibration in use" in ev["error"]
        s = wait_for(sub, topic_is("stats"), 5).json()
        assert s["calibration"]["calibrated_at"] == T2 and s["healthy"]
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0, daemon_log(tmp_path)
    finally:
        stop(proc)
        sub.stop()
    log = daemon_log(tmp_path)
    assert "Traceback" not in log and "calibration:" in log


def test_the_workers_run_before_the_device_says_online(tmp_path, monkeypatch):
    """The MQTT publisher was started (connected, said online, took commands) before the
    workers: a command in that window was answered "the recommender is not running" (2
    of 100 set_policy in a CI run of test_a_thousand_malformed_commands_are_each_answered
    on a loaded machine).  Now every worker is running when the publisher starts."""
    cfg = load_config(None, {"daemon.state_dir": str(tmp_path), "mqtt.port": 1}, env={})
    d = Daemon(cfg, RunOptions(audio_files=(DEMO_CLIPS[0],), fast=True, loop=True),
               speech=FakeSpeech(), face=None)
    seen = []

    def start():
        seen.append({w.name: w.is_alive() for w in d.workers})
        d.request_stop()

    monkeypatch.setattr(d.publisher, "start", start)
    assert d.run(install_signals=False) == 0
    assert len(seen) == 1 and "tracks" in seen[0] and all(seen[0].values()), seen
