"""Issue 17: the daemon survives what a device meets (no microphone, bad files, hostile
numbers, broken TLS, floods, signals early, state file modes)."""

from __future__ import annotations

import sys
import threading
import time
import types

import pytest
from conftest import run_cli
from test_daemon_support import broker_fixture, speech_model  # noqa: F401 - "broker"

from edge.config import load_config
from edge.daemon.base import DropQueue, SourceStatus, StageStats
from edge.daemon.clock import Clock, Replay
from edge.daemon.sources import AudioWorker


def _wait(pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def _audio_worker(files, **kw):
    from edge.audio.speech import speech_recogniser

    p = speech_recogniser(speech_model()).params
    cfg = load_config(None, env={})
    args = dict(stop=threading.Event(), status=SourceStatus(), paused=threading.Event(),
                stats=StageStats("audio"), retry=(0.05, 0.1), stall_s=5.0)
    args.update(kw)
    clock = Replay(fast=True) if files else Clock()
    return AudioWorker(p, cfg.audio, files, DropQueue(10_000, StageStats("speech")), clock,
                       **args)


def _sounddevice_without_input(monkeypatch):
    """sounddevice as on a host with no audio input: opening the default input raises
    ``PortAudioError('Error querying device -1')`` (an Exception, not a RuntimeError, in
    sounddevice 0.5).  The real module when PortAudio loads, else a module of that shape."""
    try:
        import sounddevice as sd
    except OSError:  # no PortAudio library here
        sd = types.ModuleType("sounddevice")

        class PortAudioError(Exception):
            pass

        sd.PortAudioError = PortAudioError

        def query_devices(device=None, kind=None):  # as sounddevice answers with no input
            if kind is not None:
                raise PortAudioError("Error querying device -1")
            return []

        sd.query_devices = query_devices
        monkeypatch.setitem(sys.modules, "sounddevice", sd)
    assert not issubclass(sd.PortAudioError, RuntimeError)

    def no_input(*a, **k):
        raise sd.PortAudioError("Error querying device -1")

    monkeypatch.setattr(sd, "InputStream", no_input, raising=False)  # the stand-in has none
    monkeypatch.setattr(sd, "check_input_settings", no_input, raising=False)
    return sd


def test_no_default_microphone_is_retried_not_fatal(monkeypatch):
    _sounddevice_without_input(monkeypatch)
    from edge.daemon import sources as daemon_sources

    monkeypatch.setattr(daemon_sources.audio, "reinit_portaudio", lambda: None)
    w = _audio_worker([])
    w.start()
    try:
        assert _wait(lambda: w.failed is not None or getattr(w.status.get("audio"),
                                                               "retries", 0) >= 2)
        st = w.status.get("audio")
        assert st.state == "retrying" and "Error querying device -1" in st.detail, st
        assert w.is_alive() and w.failed is None and w.healthy(15.0)
    finally:
        w.stop_event.set()
        w.join(5)
    assert w.failed is None


def _clips(folder, bad_name="02-truncated.flac"):
    """A folder: two good clips with a truncated one between them."""
    import shutil

    from test_daemon_support import DEMO_CLIPS

    folder.mkdir()
    shutil.copy(DEMO_CLIPS[0], folder / "01-good.flac")
    data = DEMO_CLIPS[1].read_bytes()
    (folder / bad_name).write_bytes(data[: len(data) // 3])
    shutil.copy(DEMO_CLIPS[2], folder / "03-good.flac")
    return folder


def _drain(q):
    out = []
    while (item := q.get(timeout=0)) is not None:
        out.append(item)
    return out


def _windows_of(paths):
    from edge.audio import features as F
    from edge.audio.sources import load_audio
    from edge.audio.speech import speech_recogniser

    p = speech_recogniser(speech_model()).params
    return sum(len(F.windows(F.mfcc(load_audio(f, p.sample_rate), p), p)) for f in paths)


def test_audio_file_folder_is_read_and_a_corrupt_file_skipped_once(tmp_path, caplog):
    from edge.daemon.base import END

    folder = _clips(tmp_path / "clips")
    w = _audio_worker([folder])
    w.setup()
    with caplog.at_level("WARNING"):
        w.step()
    assert w.finished and w.status.get("audio").state == "finished"
    got = _drain(w.out)
    assert got.pop() is END
    good = [folder / "01-good.flac", folder / "03-good.flac"]
    assert len(got) == _windows_of(good) > 0  # both good files, the bad one skipped
    assert w.stats.get("errors") == 1
    named = [r for r in caplog.records if "02-truncated.flac" in r.getMessage()]
    assert len(named) == 1, [r.getMessage() for r in caplog.records]


def test_a_corrupt_file_in_a_loop_is_logged_once_and_counted_each_pass(tmp_path, caplog,
                                                                        monkeypatch):
    from edge.audio import sources as audio_sources

    loads, load = [], audio_sources.load_audio
    monkeypatch.setattr(audio_sources, "load_audio",
                        lambda path, *a, **k: (loads.append(path.name), load(path, *a, **k))[1])
    good1, bad, good2 = (tmp_path / n for n in ("a.flac", "b.flac", "c.flac"))
    folder = _clips(tmp_path / "clips")
    for src, dst in zip(sorted(folder.iterdir()), (good1, bad, good2)):
        src.rename(dst)
    per_pass = _windows_of([good1, good2])
    loads.clear()
    w = _audio_worker([good1, bad, good2])
    w.clock = Replay(fast=True, loop=True)
    with caplog.at_level("WARNING"):
        w.start()
        try:
            assert _wait(lambda: loads.count("c.flac") >= 3 or w.failed is not None)
        finally:
            w.stop_event.set()
            w.join(5)
    assert w.failed is None and w.stats.get("errors") >= 3, loads  # bad each pass, good2 read
    assert w.stats.get("windows") >= 2 * per_pass
    assert len([r for r in caplog.records if "b.flac" in r.getMessage()]) == 1


HUGE = 10 ** 400  # beyond a float: float(HUGE) and math.isfinite(HUGE) raise OverflowError


@pytest.mark.parametrize("payload", [
    {"cmd": "set_target", "valence": HUGE, "arousal": 0},
    {"cmd": "set_target", "valence": 0, "arousal": -HUGE},
    {"cmd": "set_policy", "policy": "target", "target": [HUGE, 0]},
])
def test_numbers_beyond_a_float_on_cmd_get_an_error_answer(tmp_path, payload):
    import json

    from test_daemon_support import ListSink

    from edge.daemon import Daemon
    from edge.publish.commands import CommandError, parse_command

    text = json.dumps(payload).encode()
    with pytest.raises(CommandError, match="expected a number in"):
        parse_command(text)
    cfg = load_config(None, {"daemon.state_dir": str(tmp_path)}, env={})
    sink = ListSink()
    d = Daemon(cfg, sink=sink, speech=None, face=None)
    before = (d.state.policy, d.state.target)
    d.on_command(text)
    assert len(sink.events) == 1 and sink.events[0]["ok"] is False
    assert "expected a number in [-1, 1]" in sink.events[0]["error"]
    assert (d.state.policy, d.state.target) == before
    assert not (tmp_path / "state.json").exists()


def _calibration(tmp_path, **over):
    import json

    from edge import calibrate as C

    data = dict(version=C.CALIBRATION_VERSION, created="2026-01-01T00:00:00+00:00", steps={},
                vad={}, offsets={}, reliability={})
    data.update(over)
    (tmp_path / C.FILE_NAME).write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("over", [
    {"reliability": {"voice": HUGE}},
    {"reliability": {"voice": True}},
    {"offsets": {"voice": [HUGE, 0]}},
    {"offsets": {"voice": [True, 0]}},
    {"vad": {"threshold_db": -HUGE}},
])
def test_numbers_beyond_a_float_in_calibration_at_start_sighup_and_reload(tmp_path, over):
    from test_daemon_support import ListSink

    from edge.daemon import Daemon

    cfg = load_config(None, {"daemon.state_dir": str(tmp_path)}, env={})
    _calibration(tmp_path, **over)
    sink = ListSink()
    d = Daemon(cfg, sink=sink, speech=None, face=None)  # start: runs uncalibrated
    assert d.calibration.error and "calibration.json" in d.calibration.error
    assert d.calibrated.calibration is None
    _calibration(tmp_path, reliability={"voice": 0.5})
    assert d.reload_calibration("cmd") is True
    _calibration(tmp_path, **over)
    d.request_reload()  # SIGHUP, served on the main thread
    assert d.serve_requests()
    assert d.reload_calibration("cmd") is False  # reload_calibration
    assert d.calibrated.fusion.reliability["voice"] == 0.5  # the good one stays in use
    answers = [e for e in sink.events if e["cmd"] == "reload_calibration"]
    got = sorted((e["trigger"], e["ok"]) for e in answers)  # start's answer is held
    assert got == [("SIGHUP", False), ("cmd", False), ("cmd", True), ("start", False)], answers


def test_a_retained_command_is_ignored_with_a_warning_answer(broker, tmp_path):
    """A retained ``pause`` on …/cmd (replayed by the broker at every subscribe) is not
    run; live commands still are."""
    from test_daemon_support import subscriber, topic_is, wait_for

    from edge.daemon import Daemon
    from edge.publish.mqtt import make_client

    cfg = load_config(None, {"mqtt.host": "127.0.0.1", "mqtt.port": broker.port,
                             "mqtt.device_id": "ret", "daemon.state_dir": str(tmp_path)},
                      env={})
    client = make_client(cfg.mqtt, "retainer")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    client.publish("moodedge/ret/cmd", b'{"cmd": "pause", "id": "boot"}', qos=1,
                   retain=True).wait_for_publish(10)
    sub = subscriber(broker.port, "ret", discovery=False)
    d = Daemon(cfg, speech=None, face=None)
    d.publisher.start()
    try:
        ans = wait_for(sub, lambda m: topic_is("events")(m) and m.json().get("id") == "boot",
                       20).json()
        assert ans["ok"] is False and ans["retained"] is True and ans["cmd"] == "pause"
        assert "retained command ignored" in ans["error"]
        assert d.state.paused_list() == [] and not (tmp_path / "state.json").exists()
        assert d.stats["commands"].get("retained") == 1
        client.publish("moodedge/ret/cmd", b'{"cmd": "status", "id": "live"}', qos=1)
        live = wait_for(sub, lambda m: topic_is("events")(m) and m.json().get("id") == "live",
                        20).json()
        assert live["ok"] is True and live["result"]["paused"] == []
    finally:
        client.publish("moodedge/ret/cmd", b"", qos=1, retain=True).wait_for_publish(10)
        client.loop_stop()
        client.disconnect()
        d.publisher.stop()
        sub.stop()


@pytest.fixture(scope="module")
def tls_broker():
    """Mosquitto with TLS listeners (CA-signed for 127.0.0.1; the same requiring a client
    certificate; a certificate for another name) and a plain one; certificates made with
    openssl."""
    import os
    import shutil
    import socket
    import subprocess
    import tempfile
    from pathlib import Path

    from edge.demo.broker import find_mosquitto, free_port

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    try:
        exe = find_mosquitto()
    except FileNotFoundError:
        pytest.skip("mosquitto not installed")
    tmp = tempfile.TemporaryDirectory(prefix="moodedge-tls-")  # not under pytest's 0700 dir
    d = Path(tmp.name)

    def ssl_(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    for ca in ("ca", "other"):
        ssl_("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
             "-out", f"{ca}.crt", "-days", "30", "-subj", f"/CN={ca} test CA")
    for name, san in (("server", "IP:127.0.0.1"), ("wrongname", "DNS:wrong.example"),
                      ("client", "DNS:client")):
        ssl_("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
             f"{name}.csr", "-subj", f"/CN={name}")
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        ssl_("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "30", "-extfile",
             f"{name}.ext")
    for f in d.iterdir():
        f.chmod(0o644)  # mosquitto started as root reads them as its own user
    d.chmod(0o755)
    ports = {k: free_port() for k in ("tls", "mtls", "wrongname", "plain")}
    tls = f"cafile {d}/ca.crt\n"
    conf = d / "mosquitto.conf"
    conf.write_text(
        "per_listener_settings true\n"
        f"listener {ports['tls']} 127.0.0.1\nallow_anonymous true\n{tls}"
        f"certfile {d}/server.crt\nkeyfile {d}/server.key\n"
        f"listener {ports['mtls']} 127.0.0.1\nallow_anonymous true\n{tls}"
        f"certfile {d}/server.crt\nkeyfile {d}/server.key\nrequire_certificate true\n"
        f"listener {ports['wrongname']} 127.0.0.1\nallow_anonymous true\n{tls}"
        f"certfile {d}/wrongname.crt\nkeyfile {d}/wrongname.key\n"
        f"listener {ports['plain']} 127.0.0.1\nallow_anonymous true\n")
    os.chmod(conf, 0o644)
    log = d / "mosquitto.log"
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    try:
        for port in ports.values():
            assert _wait(lambda p=port: _listening(socket, p), 10), log.read_text()
        yield d, ports
    finally:
        proc.terminate()
        proc.wait(5)
        tmp.cleanup()


def _listening(socket, port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize(("case", "ca", "client_cert", "reason", "hint"), [
    ("tls", "other", False, "CERTIFICATE_VERIFY_FAILED", "check mqtt.tls.ca_file"),
    ("wrongname", "ca", False, "mismatch", "does not name mqtt.host"),
    ("plain", "ca", False, "", "is mqtt.port a TLS listener?"),
    ("mtls", "ca", False, "CERTIFICATE_REQUIRED", "requires a client certificate"),
])
def test_tls_failures_are_logged_once_with_the_reason_then_counted(
        tls_broker, caplog, case, ca, client_cert, reason, hint):
    from edge.publish.mqtt import MqttPublisher

    d, ports = tls_broker
    over = {"mqtt.host": "127.0.0.1", "mqtt.port": ports[case], "mqtt.device_id": "tls",
            "mqtt.reconnect_min_s": 0.1, "mqtt.reconnect_max_s": 1,
            "mqtt.tls.enabled": True, "mqtt.tls.ca_file": str(d / f"{ca}.crt")}
    if client_cert:
        over.update({"mqtt.tls.cert_file": str(d / "client.crt"),
                     "mqtt.tls.key_file": str(d / "client.key")})
    cfg = load_config(None, over, env={})
    pub = MqttPublisher(cfg.mqtt, cfg.homeassistant)

    def lines():
        return [r.getMessage() for r in caplog.records if "cannot connect" in r.getMessage()]

    with caplog.at_level("INFO", logger="edge.publish.mqtt"):
        pub.start()
        try:  # three attempts, one of them with the broker's reason (see the mTLS case)
            assert _wait(lambda: pub.connected or (pub.counters["connect_failures"] >= 3
                                                   and any(reason in m for m in lines())), 60)
        finally:
            pub.stop()
    assert not pub.connected and pub.counters["connects"] == 0
    said = [m for m in lines() if reason in m and hint in m]
    assert len(said) == 1 and f":{ports[case]} (TLS)" in said[0], lines()
    # once, then counted; under TLS 1.3 an mTLS refusal can read "EOF" (the broker's alert
    # lost as the CONNECT crosses its close): if that came first it is the one line before
    others = [m for m in lines() if m not in said]
    assert others == [] or (case == "mtls" and len(others) == 1 and lines()[1] == said[0]
                            and "may require a client certificate" in others[0]), lines()


def _tls_publisher(tls_broker, **tls):
    from edge.publish.mqtt import MqttPublisher

    d, ports = tls_broker
    over = {"mqtt.host": "127.0.0.1", "mqtt.port": ports["mtls"], "mqtt.device_id": "tls",
            "mqtt.tls.enabled": True, "mqtt.tls.ca_file": str(d / "ca.crt"), **tls}
    cfg = load_config(None, over, env={})
    return MqttPublisher(cfg.mqtt, cfg.homeassistant)


_REQUIRED = ("failed to receive on socket: [SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 "
             "alert certificate required (_ssl.c:2580)")
_EOF = "failed to receive on socket: EOF occurred in violation of protocol (_ssl.c:2427)"


def test_an_mtls_refusal_that_reads_eof_on_some_attempts_is_still_one_line(tls_broker, caplog):
    """CI failed on a flake that was a real flood: mutual TLS without a client certificate
    fails with the broker's CERTIFICATE_REQUIRED alert, or, when TLS 1.3's late alert is
    lost, with a bare EOF; each change of wording was logged again, so the two taking turns
    wrote a line per retry.  Now the EOF after a reason is counted as that reason."""
    pub = _tls_publisher(tls_broker)
    with caplog.at_level("INFO", logger="edge.publish.mqtt"):
        for _ in range(20):
            pub._failed(_REQUIRED)
            pub._failed(_EOF)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "requires a client certificate" in lines[0], lines
    assert pub.counters["connect_failures"] == 40 and pub.last_error == _EOF


def test_a_bare_eof_first_says_both_checks_then_the_reason_once(tls_broker, caplog):
    pub = _tls_publisher(tls_broker)
    with caplog.at_level("INFO", logger="edge.publish.mqtt"):
        for reason in [_EOF, _EOF, _REQUIRED] + [_EOF, _REQUIRED] * 10:
            pub._failed(reason)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "is mqtt.port a TLS listener?" in lines[0] and "mqtt.tls.cert_file" in lines[0]
    assert "CERTIFICATE_REQUIRED" in lines[1] and "requires a client certificate" in lines[1]


def test_a_bare_eof_with_a_client_certificate_set_does_not_ask_for_one(tls_broker, caplog):
    d, _ = tls_broker
    pub = _tls_publisher(tls_broker, **{"mqtt.tls.cert_file": str(d / "client.crt"),
                                        "mqtt.tls.key_file": str(d / "client.key")})
    with caplog.at_level("INFO", logger="edge.publish.mqtt"):
        pub._failed("[Errno 104] Connection reset by peer")
        pub._failed(_EOF)  # another wording of the same: counted
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "is mqtt.port a TLS listener?" in lines[0], lines
    assert "cert_file" not in lines[0]


def test_tls_with_the_right_certificates_connects(tls_broker):
    """The listeners above are sound: with the CA (and a client certificate) it connects."""
    from edge.publish.mqtt import MqttPublisher

    d, ports = tls_broker
    for case, cert in (("tls", False), ("mtls", True)):
        over = {"mqtt.host": "127.0.0.1", "mqtt.port": ports[case], "mqtt.device_id": "tls",
                "mqtt.tls.enabled": True, "mqtt.tls.ca_file": str(d / "ca.crt")}
        if cert:
            over.update({"mqtt.tls.cert_file": str(d / "client.crt"),
                         "mqtt.tls.key_file": str(d / "client.key")})
        cfg = load_config(None, over, env={})
        pub = MqttPublisher(cfg.mqtt, cfg.homeassistant)
        pub.start()
        try:
            assert _wait(lambda p=pub: p.connected, 20), (case, pub.last_error)
        finally:
            pub.stop()
        assert pub.counters["connect_failures"] == 0 and pub.last_error is None


def test_repeat_log_logs_once_then_a_count_every_period(caplog):
    import logging

    from edge.lograte import RepeatLog

    now = [0.0]
    rl = RepeatLog(logging.getLogger("t.repeat"), every_s=60.0, clock=lambda: now[0])
    with caplog.at_level("INFO", logger="t.repeat"):
        assert rl.report("mic", "no microphone") is True  # first: logged
        for _ in range(100):  # a retry every 0.5 s: counted, not logged
            now[0] += 0.5
            assert rl.report("mic", "no microphone") is False
        now[0] += 10.0  # 60 s since the first line
        assert rl.report("mic", "no microphone") is True
        assert rl.report("mic", "microphone busy") is True  # a new reason: at once
        assert rl.report("cam", "no camera") is True  # keys are separate
        rl.clear("mic", "mic: running")
        rl.clear("cam")  # cleared without a line
        rl.clear("never-failed", "x: running")  # nothing to say
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["no microphone",
                     "no microphone (repeated 101 time(s) in the last 60 s, 102 in all)",
                     "microphone busy", "no camera", "mic: running (after 103 failure(s))"]
    assert rl.count("mic") == 0


def test_repeat_log_two_reasons_taking_turns_are_two_lines_not_a_flood(caplog):
    """A source failing with two reasons in turn was logged on every retry (each change of
    message was taken for a new error): now each reason once, then counted."""
    import logging

    from edge.lograte import MAX_KINDS, RepeatLog

    now = [0.0]
    rl = RepeatLog(logging.getLogger("t.turns"), every_s=60.0, clock=lambda: now[0])
    with caplog.at_level("INFO", logger="t.turns"):
        for i in range(100):  # 50 s of retries
            now[0] += 0.5
            rl.report("mic", "device busy" if i % 2 else "no such device")
        now[0] += 11.0  # 60 s since the last new line (the second reason's, at 1 s)
        assert rl.report("mic", "no such device") is True  # the minute's count
        for i in range(MAX_KINDS + 10):  # a reason that differs every time: capped
            rl.report("cam", f"frame {i} unreadable")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[:3] == ["no such device", "device busy",
                         "no such device (repeated 99 time(s) in the last 60 s, 101 in all)"]
    assert len(lines) == 3 + MAX_KINDS and rl.count("cam") == MAX_KINDS + 10


def test_unreadable_images_looped_fast_back_off_and_log_once(tmp_path, caplog):
    """--image-dir of unreadable images with --loop --fast wrote 95k lines in 20 s and
    spun a core: now each bad file is logged once, and a pass with no frame backs off."""
    from edge.daemon.sources import CameraWorker

    folder = tmp_path / "img"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(b"not a png")
    cfg = load_config(None, env={})
    w = CameraWorker(cfg.camera, folder, None, DropQueue(10, StageStats("face")),
                     Replay(fast=True, loop=True), stop=threading.Event(),
                     status=SourceStatus(), paused=threading.Event(),
                     stats=StageStats("camera"), retry=(0.05, 0.2), stall_s=5.0)
    with caplog.at_level("INFO"):
        w.start()
        try:
            assert _wait(lambda: w.retries >= 4 or w.failed is not None, 30)
        finally:
            w.stop_event.set()
            w.join(5)
    assert w.failed is None
    st = w.status.get("camera")
    assert st.state == "retrying" and "no readable frames" in st.detail
    passes = (w.stats.get("errors") - w.retries) / 3  # each retry counts an error too
    assert passes <= w.retries + 1  # one pass per retry, not a spin
    lines = [r.getMessage() for r in caplog.records]
    for i in range(3):
        assert sum(f"{i}.png" in m for m in lines) == 1, lines
    assert sum("retrying" in m for m in lines) == 1, lines  # then counted


def test_play_and_feedback_history_is_bounded_on_disk(tmp_path):
    """Pure bound: 12x the kept rows of the largest rows a command allows; the file stops
    growing (an hour at 50 msg/s is 180k rows: the same bound)."""
    import os
    from pathlib import Path

    from edge.music.catalog import MAX_FEEDBACK, MAX_PLAYS, Catalog

    shm = Path("/dev/shm")  # no fsync per row: the bound, not the disk, is under test
    folder = Path(os.path.realpath(shm)) if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
    path = folder / f"moodedge-bound-{os.getpid()}.sqlite"
    try:
        c = Catalog(path)
        c.ensure_tracks()
        uri = next(iter(c.tracks())).uri
        size0 = path.stat().st_size
        long_uri = "spotify:track:" + "x" * 1010  # the longest uri a command takes
        sizes = []
        for i in range(12 * MAX_PLAYS):
            c.record_play(f"{i:08d}{long_uri[8:]}")
            if (i + 1) % (2 * MAX_PLAYS) == 0:
                sizes.append(path.stat().st_size)
        for i in range(2 * MAX_FEEDBACK):
            c.record_feedback(uri, ("like", "skip", "dislike")[i % 3])
        rows = c._db.execute("SELECT COUNT(*) FROM plays").fetchone()[0]
        fb = c._db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]
        newest = c.recent_plays(1)[0]
        c.close()
        size = path.stat().st_size
    finally:
        path.unlink(missing_ok=True)
    assert rows == MAX_PLAYS and fb == MAX_FEEDBACK
    assert newest.startswith(f"{12 * MAX_PLAYS - 1:08d}")  # the newest kept
    assert sizes[-1] - sizes[0] < 64 * 1024, sizes  # bounded: freed pages reused
    assert size - size0 <= 10 * 1024 * 1024, (size0, size)


def test_token_bucket_takes_a_burst_then_its_rate():
    from edge.daemon.control import TokenBucket

    now = [0.0]
    b = TokenBucket(1.0, 3, clock=lambda: now[0])
    assert [b.take() for _ in range(5)] == [True, True, True, False, False]
    now[0] += 1.0
    assert [b.take() for _ in range(2)] == [True, False]
    now[0] += 100.0  # refills to the burst, no more
    assert sum(b.take() for _ in range(10)) == 3


def test_a_played_flood_is_answered_and_rate_limited(tmp_path):
    """A scaled-down flood of ``played`` (the longest URI) at a running daemon: every
    command answered, at most the burst plus the rate written."""
    import json

    from test_daemon_support import ListSink

    from edge.daemon import Daemon
    from edge.daemon.control import WRITE_BURST, WRITE_RATE_S
    from edge.music.catalog import Catalog

    cfg = load_config(None, {"daemon.state_dir": str(tmp_path), "audio.enabled": False,
                             "camera.enabled": False}, env={})
    sink = ListSink()
    d = Daemon(cfg, sink=sink, speech=None, face=None)
    t = threading.Thread(target=d.run, kwargs={"install_signals": False}, daemon=True)
    t.start()
    n = 500
    try:
        assert _wait(lambda: d.pipeline is not None and d.pipeline.tracks.is_alive()
                     and d.pipeline.tracks.recommender is not None, 30)
        t0 = time.monotonic()
        for i in range(n):
            d.on_command(json.dumps({"cmd": "played", "id": i,
                                     "uri": f"spotify:track:{i:06d}" + "x" * 1000}).encode())
        sent_s = time.monotonic() - t0
        assert _wait(lambda: len(sink.events) >= n, 60), len(sink.events)
    finally:
        d.request_stop()
        t.join(10)
    assert sorted(e["id"] for e in sink.events) == list(range(n))
    ok = [e for e in sink.events if e["ok"]]
    busy = [e for e in sink.events if not e["ok"]]
    assert WRITE_BURST <= len(ok) <= WRITE_BURST + WRITE_RATE_S * sent_s + 1, (len(ok), sent_s)
    assert all(e["error"].startswith("busy:") for e in busy)
    assert d.stats["commands"].get("rate_limited") == len(busy)
    with Catalog(cfg.catalogue_path()) as c:
        assert len(c.recent_plays(10 * n)) == len(ok)


def test_exit_when_done_with_nothing_runnable_exits_non_zero_with_the_reason(tmp_path, caplog):
    from test_daemon_support import DEMO_CLIPS, ListSink

    from edge.daemon import Daemon, RunOptions

    cfg = load_config(None, {"daemon.state_dir": str(tmp_path)}, env={})
    d = Daemon(cfg, RunOptions(audio_files=(DEMO_CLIPS[0],), fast=True, exit_when_done=True),
               sink=ListSink(), speech=None, face=None)  # no speech model: audio absent
    rc = []
    t = threading.Thread(target=lambda: rc.append(d.run(install_signals=False)), daemon=True)
    with caplog.at_level("ERROR"):
        t.start()
        t.join(60)
    d.request_stop()
    assert rc and rc[0] != 0, rc
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "nothing to run" in msg and "audio absent" in msg and "camera disabled" in msg, msg


def test_sighup_while_the_daemon_is_starting_does_not_kill_it(tmp_path):
    """A SIGHUP (systemctl reload) while models load, before the handlers exist."""
    import os
    import subprocess

    from conftest import ROOT

    script = (
        "import os, signal, sys\n"
        "import edge.daemon\n"
        "class Early(edge.daemon.Daemon):\n"
        "    def __init__(self, *a, **k):\n"
        "        os.kill(os.getpid(), signal.SIGHUP)  # arrives while it is being built\n"
        "        super().__init__(*a, **k)\n"
        "    def run(self, install_signals=True):\n"
        "        print('survived', signal.getsignal(signal.SIGHUP) == signal.SIG_IGN)\n"
        "        return 0\n"
        "edge.daemon.Daemon = Early\n"
        "from edge.cli import main\n"
        "sys.exit(main(['run', '--mqtt-host', '127.0.0.1', '--mqtt-port', '1']))\n")
    p = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                       text=True, timeout=120,
                       env={**os.environ, "MOODEDGE_STATE_DIR": str(tmp_path)})
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    assert "survived True" in p.stdout


def test_state_files_are_readable_by_the_daemons_user_only(tmp_path):
    import json
    import os
    import stat

    from test_daemon_support import ListSink

    from edge.daemon import Daemon

    state_dir = tmp_path / "state"  # created by the daemon
    cfg = load_config(None, {"daemon.state_dir": str(state_dir), "audio.enabled": False,
                             "camera.enabled": False}, env={})
    old = os.umask(0o022)  # a usual umask: files 0644 unless made private
    try:
        sink = ListSink()
        d = Daemon(cfg, sink=sink, speech=None, face=None)
        t = threading.Thread(target=d.run, kwargs={"install_signals": False}, daemon=True)
        t.start()
        try:
            assert _wait(lambda: d.pipeline is not None
                         and d.pipeline.tracks.recommender is not None, 30)
            d.on_command(json.dumps({"cmd": "pause", "what": "audio"}).encode())
            d.on_command(json.dumps({"cmd": "played", "uri": "spotify:track:x"}).encode())
            assert _wait(lambda: len(sink.events) >= 2, 30), sink.events
        finally:
            d.request_stop()
            t.join(10)
    finally:
        os.umask(old)
    assert all(e["ok"] for e in sink.events), sink.events

    def mode(p):
        return stat.S_IMODE(p.stat().st_mode)

    assert mode(state_dir) == 0o700
    assert mode(state_dir / "state.json") == 0o600
    assert mode(cfg.catalogue_path()) == 0o600
    others = [p.name for p in state_dir.iterdir() if mode(p) & 0o077]
    assert others == [], others


def test_an_existing_world_readable_catalogue_is_made_private(tmp_path):
    import os
    import stat

    from edge.music.catalog import Catalog

    path = tmp_path / "catalogue.sqlite"
    Catalog(path).close()
    os.chmod(path, 0o644)
    Catalog(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- fuzz: generated commands at a running daemon ---------------------------------------

def _fuzz_payloads():
    """Commands of every kind, with their own keys (and now and then an unknown one)
    holding hostile values: numbers beyond a float, NaN and infinities, wrong types,
    long strings; and junk objects."""
    from hypothesis import strategies as st

    from edge.publish.commands import COMMANDS

    huge = st.sampled_from([10 ** 400, -(10 ** 400), 10 ** 309, 10 ** 20, -(2 ** 64)])
    number = st.one_of(huge, huge, st.sampled_from([1, -1, 0, 0.5, -0.25]), st.integers(),
                       st.floats(allow_nan=True, allow_infinity=True),
                       st.floats(min_value=-1.5, max_value=1.5))
    scalar = st.one_of(
        st.none(), st.booleans(), number, st.text(max_size=20),
        st.sampled_from(["all", "audio", "camera", "mic", "like", "skip", "love", "match",
                         "uplift", "calm", "target", "spotify:track:x", "", " "]))
    value = st.one_of(number, number, scalar, st.lists(number, min_size=2, max_size=2),
                      st.lists(scalar, max_size=3),
                      st.dictionaries(st.text(max_size=5), scalar, max_size=2))

    def of(name):  # all its keys, or some of them
        keys = sorted(COMMANDS[name].keys)
        return st.one_of(
            st.fixed_dictionaries({"cmd": st.just(name), **{k: value for k in keys}}),
            st.fixed_dictionaries({"cmd": st.just(name)}, optional={k: value for k in keys}))

    typed = st.sampled_from(sorted(COMMANDS)).flatmap(of)
    keys = st.sampled_from(["valence", "arousal", "policy", "target", "what", "uri", "kind",
                            "now", "x"])
    junk = st.builds(lambda c, extra: {"cmd": c, **extra}, scalar,
                     st.dictionaries(keys, value, max_size=3))
    return st.one_of(typed, typed, typed, junk)


#: commands whose valid forms change state (sent only in invalid forms: state must stay)
_CHANGES = {"set_policy", "set_target", "pause", "resume", "played", "feedback"}


def test_fuzz_generated_commands_each_answered_in_2s_no_traceback_state_unchanged(
        broker, tmp_path):
    import json

    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from test_daemon_support import (
        daemon_log,
        start_daemon,
        stop,
        subscriber,
        topic_is,
        wait_for,
        write_config,
    )

    from edge.publish.commands import MAX_PAYLOAD, CommandError, parse_command
    from edge.publish.mqtt import make_client

    conf = write_config(tmp_path / "fuzz.toml", {
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "device_id": "hyp"},
        "audio": {"enabled": False}, "camera": {"enabled": False},
        "daemon": {"state_dir": str(tmp_path / "state")}})
    sub = subscriber(broker.port, "hyp", discovery=False)
    proc = start_daemon(tmp_path, "--config", str(conf))
    client = make_client(load_config(None, {"mqtt.host": "127.0.0.1",
                                            "mqtt.port": broker.port}, env={}).mqtt, "hyp-fuzz")
    sent, late = [0], []
    valid = {}

    def status(ident):
        client.publish("moodedge/hyp/cmd", json.dumps({"cmd": "status", "id": ident}), qos=1)
        return wait_for(sub, lambda m: topic_is("events")(m) and m.json().get("id") == ident,
                        20).json()["result"]

    @settings(max_examples=20, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(st.lists(_fuzz_payloads(), min_size=110, max_size=110))
    def batch(commands):
        out = {}
        for c in commands:
            ident = f"f{sent[0]}"
            c = {**c, "id": ident}
            text = json.dumps(c).encode()
            try:
                parsed = parse_command(text)
                if parsed.cmd in _CHANGES:
                    continue  # its valid form changes state: not sent
                valid[ident] = parsed.cmd
            except CommandError:
                pass
            if len(text) > MAX_PAYLOAD:
                continue  # answered without its id: not matchable
            out[ident] = text
            sent[0] += 1
        t_sent = {}
        for ident, text in out.items():
            t_sent[ident] = time.time()
            client.publish("moodedge/hyp/cmd", text, qos=1)
        answers = {}
        while set(answers) != set(out):
            m = wait_for(sub, topic_is("events"), 10)
            e = m.json()
            if e.get("id") in out:
                answers[e["id"]] = e
                if m.ts - t_sent[e["id"]] > 2.0:
                    late.append((e["id"], m.ts - t_sent[e["id"]]))
        for ident, e in answers.items():
            assert e["ok"] is (ident in valid), (out[ident], e)

    try:
        wait_for(sub, lambda m: m.topic.endswith("availability") and m.payload == b"online", 20)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        before = status("before")
        batch()
        after = status("after")
        assert proc.poll() is None, daemon_log(tmp_path)
    finally:
        client.loop_stop()
        client.disconnect()
        stop(proc)
        sub.stop()
    assert sent[0] >= 2000, sent[0]
    assert late == [], late[:5]
    log = (tmp_path / "daemon.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    for k in ("paused", "policy"):
        assert after[k] == before[k], (k, before[k], after[k])
    assert not (tmp_path / "state" / "state.json").exists()  # nothing was saved


# -- the same kinds of bug elsewhere ------------------------------------------------------

@pytest.mark.parametrize("target", ["[1" + "0" * 400 + ", 0]", "[NaN, 0]", "[5, 0]"])
def test_a_hostile_target_in_state_json_is_ignored_not_a_crash_at_start(tmp_path, target):
    from edge.daemon.state import DaemonState
    from edge.music.recommend import Policy

    path = tmp_path / "state.json"
    path.write_text('{"policy": "target", "target": ' + target + ', "paused": ["audio"]}')
    default = DaemonState(Policy.MATCH, None)
    assert DaemonState.load(path, default) is default


def test_a_failing_picamera2_capture_is_a_camera_error_the_worker_retries():
    from edge.daemon.sources import RETRIED
    from edge.vision.sources import CameraError, PiCamera

    class Cam:  # stands in for Picamera2: libcamera times out on a loose ribbon cable
        def capture_array(self, name):
            raise RuntimeError("Camera frontend has timed out!")

    cam = PiCamera.__new__(PiCamera)
    cam._cam = Cam()
    with pytest.raises(CameraError, match="capture failed.*timed out") as e:
        next(cam.frames())
    assert isinstance(e.value, RETRIED)


def test_a_huge_watchdog_usec_is_no_watchdog_not_a_crash():
    from edge.daemon.health import watchdog_interval

    assert watchdog_interval({"WATCHDOG_USEC": "1" + "0" * 400}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0


def test_dropped_microphone_blocks_are_logged_once_then_counted(monkeypatch, caplog):
    import numpy as np

    sd = _sounddevice_without_input(monkeypatch)
    from edge.audio.sources import microphone_blocks

    class Stream:  # a microphone whose blocks nobody reads for a while
        def __init__(self, callback, **kw):
            self.callback = callback

        def __enter__(self):
            for _ in range(200):
                self.callback(np.zeros((1600, 1), np.float32), 1600, None, None)
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(sd, "InputStream", Stream)
    monkeypatch.setattr(sd, "check_input_settings", lambda **kw: None)  # it records at 16 kHz
    with caplog.at_level("WARNING", logger="edge.audio.sources"):
        blocks = microphone_blocks(None, 16000, 0.1, stop=lambda: False)
        assert next(blocks).shape == (1600,)
        blocks.close()
    drops = [r for r in caplog.records if "dropping" in r.getMessage()]
    assert len(drops) == 1, len(drops)  # 150 drops, one line


def test_a_flood_of_bad_commands_is_answered_each_but_logged_once(tmp_path, caplog):
    from test_daemon_support import ListSink

    from edge.daemon import Daemon

    cfg = load_config(None, {"daemon.state_dir": str(tmp_path)}, env={})
    sink = ListSink()
    d = Daemon(cfg, sink=sink, speech=None, face=None)
    with caplog.at_level("INFO", logger="edge.daemon.control"):
        for i in range(500):
            d.on_command(b'{"cmd": "pause", "what": "mic%d"}' % i)
    assert len(sink.events) == 500 and not any(e["ok"] for e in sink.events)
    lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(lines) == 1 and "what: expected one of" in lines[0], lines


def test_reload_commands_queue_for_the_main_thread_bounded_and_each_answered(tmp_path):
    from test_daemon_support import ListSink

    from edge.daemon import Daemon
    from edge.daemon.control import MAIN_QUEUE

    cfg = load_config(None, {"daemon.state_dir": str(tmp_path)}, env={})
    sink = ListSink()
    d = Daemon(cfg, sink=sink, speech=None, face=None)  # its main loop is not running
    for i in range(MAIN_QUEUE + 36):
        d.on_command(b'{"cmd": "reload_calibration", "id": %d}' % i)
    busy = [e for e in sink.events if not e["ok"]]
    assert len(busy) == 36 and all(e["error"].startswith("busy:") for e in busy)
    d.request_reload()  # SIGHUP with a full queue: dropped, never blocks the handler
    assert d.serve_requests()
    answers = [e for e in sink.events if e["ok"]]
    assert sorted(e["id"] for e in answers) == list(range(MAIN_QUEUE))


@pytest.mark.parametrize("change", [
    {"input": {"scale": HUGE}},
    {"gate": {"no_speech_output": True, "threshold": HUGE}},
])
def test_numbers_beyond_a_float_in_a_model_manifest_are_a_model_error(tmp_path, change):
    import json
    import shutil

    from conftest import SHIPPED_SPEECH

    from edge.manifest import ModelError, load_manifest, manifest_path
    from edge.recognisers import load_recogniser

    dst = tmp_path / "speech.tflite"
    shutil.copy(SHIPPED_SPEECH, dst)
    m = manifest_path(dst)
    data = json.loads(manifest_path(SHIPPED_SPEECH).read_text())
    for k, v in change.items():
        data[k] = {**data.get(k, {}), **v} if isinstance(data.get(k), dict) else v
    m.write_text(json.dumps(data))
    with pytest.raises(ModelError):
        load_manifest(m)
    rec, why = load_recogniser("speech", "edge.audio.speech:speech_recogniser", dst)
    assert rec is None and "speech model unavailable" in why  # the daemon runs, audio absent


def test_edge_cli_run_on_a_host_without_a_microphone_keeps_running(broker, tmp_path):
    """The issue's case as a user meets it: ``edge-cli run`` with the microphone on and
    no audio input (here: PortAudio with no device, or no PortAudio at all).  It must
    keep running with audio ``retrying``, answering commands."""
    import json
    import signal

    from test_daemon_support import (
        daemon_config,
        daemon_log,
        start_daemon,
        stop,
        subscriber,
        topic_is,
        wait_for,
    )

    try:
        import sounddevice as sd

        if any(d["max_input_channels"] > 0 for d in sd.query_devices()):
            pytest.skip("this host has an audio input")
    except OSError:
        pass  # no PortAudio: importing sounddevice fails, as on a bare host
    conf = daemon_config(tmp_path, broker.port, "nomic", camera={"enabled": False},
                         daemon={"retry_min_s": 0.5, "retry_max_s": 1.0})
    sub = subscriber(broker.port, "nomic", discovery=False)
    proc = start_daemon(tmp_path, "--config", str(conf))
    try:
        wait_for(sub, lambda m: m.topic.endswith("availability") and m.payload == b"online", 20)
        stats = wait_for(sub, lambda m: topic_is("stats")(m)
                         and m.json()["sources"]["audio"]["retries"] >= 2, 30).json()
        assert proc.poll() is None, daemon_log(tmp_path)
        assert stats["sources"]["audio"]["state"] == "retrying"
        assert "failed" not in stats and stats["healthy"] is True, stats
        from edge.publish.mqtt import make_client

        c = make_client(load_config(None, {"mqtt.host": "127.0.0.1",
                                           "mqtt.port": broker.port}, env={}).mqtt, "nomic-c")
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        c.publish("moodedge/nomic/cmd", json.dumps({"cmd": "status", "id": "s"}), qos=1)
        ans = wait_for(sub, lambda m: topic_is("events")(m) and m.json().get("id") == "s",
                       10).json()
        c.loop_stop()
        c.disconnect()
        assert ans["ok"] and ans["result"]["sources"]["camera"]["state"] == "disabled"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        stop(proc)
        sub.stop()
    log = daemon_log(tmp_path)
    assert "Traceback" not in log and "a worker failed" not in log, log
    assert log.count("audio: retrying") == 1, log  # logged once, then counted


def test_a_source_retrying_for_long_is_logged_once_then_a_count_a_minute(caplog):
    status = SourceStatus()
    now = [0.0]
    status._failing.clock = lambda: now[0]
    with caplog.at_level("INFO", logger="edge.daemon.base"):
        for i in range(200):  # capped backoff: the same detail every 16 s
            status.set("audio", "retrying", "microphone: Error querying device -1; "
                       f"retry in {min(16, 2 ** i)} s", i + 1)
            now[0] += 16.0
        status.set("audio", "running", "microphone (default)")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "audio: retrying (microphone: Error querying device -1)"
    summaries = [m for m in lines if "repeated" in m]
    assert 45 <= len(summaries) <= 55, lines  # 200 × 16 s = 53 min: about one a minute
    assert lines[-1] == "audio: running (microphone (default)) after 200 failure(s)"
    assert len(lines) == 1 + len(summaries) + 1


def test_an_audio_folder_without_audio_names_every_format_the_daemon_reads(tmp_path):
    """Regression: ``run --audio-file FOLDER`` with no audio in it said "no .wav/.flac
    files", though the daemon reads Ogg/Opus too (the newer corpora are .opus): the
    message now lists the suffixes the source layer reads."""
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "notes.txt").write_text("not audio", encoding="utf-8")
    res = run_cli("run", "--audio-file", str(folder), "--fast", "--exit-when-done")
    assert res.returncode == 2
    assert f"--audio-file: no audio files (.wav/.flac/.ogg/.oga/.opus) in {folder}" in res.stderr, res.stderr


def test_an_image_folder_without_images_is_refused_at_start(tmp_path):
    """Regression: ``run --image-dir FOLDER`` (and ``demo --image-dir``) with no image in
    the folder started, and the camera source retried for ever ("camera=retrying") while
    the user waited for faces; an audio folder without audio was already refused. Now the
    daemon exits 2 naming the folder and the suffixes it reads, before it connects."""
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image", encoding="utf-8")
    res = run_cli("run", "--image-dir", str(folder), "--mqtt-port", "1", "--fast", "--exit-when-done",
                  timeout=60)
    assert res.returncode == 2
    assert f"--image-dir {folder}: no images (.jpg/.jpeg/.png" in res.stderr, res.stderr


def test_a_video_file_that_does_not_decode_is_refused_at_start(tmp_path):
    """Regression: ``run --video-file`` (and ``demo --video-file``) with a file OpenCV
    cannot decode started, and the camera source retried it for ever, so even
    --exit-when-done never exited. Now exit 2 naming the file and the problem."""
    fake = tmp_path / "holiday.mp4"
    fake.write_text("not a video\n", encoding="utf-8")
    res = run_cli("run", "--video-file", str(fake), "--mqtt-port", "1", "--fast", "--exit-when-done",
                  timeout=60)
    assert res.returncode == 2
    assert f"error: --video-file {fake}: " in res.stderr and "OpenCV" in res.stderr, res.stderr
    res = run_cli("run", "--video-file", str(tmp_path / "gone.mp4"), timeout=60)
    assert res.returncode == 2 and f"--video-file {tmp_path / 'gone.mp4'}: not found" in res.stderr


@pytest.mark.parametrize(("args", "said"), [
    (["--loop"], "error: --loop: only with files (--audio-file, --image-dir, --video-file)"),
    (["--fast", "--exit-when-done"], "error: --fast/--exit-when-done: only with files"),
    (["--loop", "--exit-when-done", "--audio-file", "{clip}"],
     "error: --loop replays the files for ever: it cannot be combined with --exit-when-done"),
])
def test_file_options_that_cannot_apply_are_refused_not_ignored(args, said):
    """Regression: ``run --exit-when-done`` (or --loop, --fast) without a file ran the live
    microphone and camera, which never end, and --loop with --exit-when-done never
    exited: the options were silently ignored. Now exit 2 saying why."""
    from test_daemon_support import DEMO_CLIPS

    res = run_cli("run", *[a.format(clip=DEMO_CLIPS[0]) for a in args], "--mqtt-port", "1", timeout=60)
    assert res.returncode == 2 and said in res.stderr, res.stderr
