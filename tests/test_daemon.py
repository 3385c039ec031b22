"""The daemon end to end, as a process, against a real Mosquitto broker."""

from __future__ import annotations

import signal
import time

import numpy as np
from test_daemon_support import (  # noqa: F401 - broker_fixture provides "broker"
    DEMO_CLIPS,
    broker_fixture,
    daemon_config,
    daemon_log,
    start_daemon,
    stop,
    subscriber,
    topic_is,
    wait_for,
)

STUB_FACE = {"camera": {"recogniser": "edge.demo.stub_face:factory", "fps": 4.0}}


def _images(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):  # bright, detailed frames: the stub calls them "happy"
        np.save(folder / f"{i:02d}.npy", rng.integers(150, 256, (48, 64, 3), dtype=np.uint8))
    (folder / "06.pgm").write_bytes(b"P5\n4 2\n255\n" + bytes([30] * 8))  # flat: no face
    (folder / "07.png").write_bytes(b"not a png")  # reported and skipped, not fatal
    return folder


def test_files_in_availability_mood_tracks_and_discovery_out(broker, tmp_path):
    conf = daemon_config(tmp_path, broker.port, "e2e", **STUB_FACE)
    sub = subscriber(broker.port, "e2e")
    t0 = time.monotonic()
    proc = start_daemon(tmp_path, "--config", str(conf), "--audio-file", str(DEMO_CLIPS[0]),
                        "--image-dir", str(_images(tmp_path / "img")), "--fast",
                        "--exit-when-done")
    seen = []
    try:
        avail = wait_for(sub, topic_is("availability"), 20, seen)
        assert avail.payload == b"online" and avail.retain is False  # live, not replayed
        disc = wait_for(sub, lambda m: m.topic == "homeassistant/device/e2e/config", 5, seen)
        tracks = wait_for(sub, topic_is("tracks"), 20, seen)
        assert proc.wait(20) == 0, daemon_log(tmp_path)
        wait_for(sub, lambda m: m.topic.endswith("availability") and m.payload == b"offline",
                 5, seen)
    finally:
        stop(proc)
        sub.stop()
    elapsed = time.monotonic() - t0
    assert elapsed < 20, elapsed

    d = disc.json()
    assert d["availability_topic"] == "moodedge/e2e/availability"
    names = {c["name"] for c in d["cmps"].values()}
    assert {"Mood", "Valence", "Arousal", "Mood confidence", "Current track",
            "Music policy"} <= names
    assert len({c["unique_id"] for c in d["cmps"].values()}) == len(d["cmps"])

    moods = [m.json() for m in seen if m.topic == "moodedge/e2e/mood"]
    assert moods, [m.topic for m in seen]
    for mood in moods:
        assert {"ts", "valence", "arousal", "confidence", "quadrant", "emotion",
                "sources"} <= set(mood)
        assert -1 <= mood["valence"] <= 1 and -1 <= mood["arousal"] <= 1
        assert 0 <= mood["confidence"] <= 1
    last = moods[-1]
    assert set(last["sources"]) == {"voice", "face"}, last
    assert last["sources"]["face"]["label"] == "happy"
    for s in last["sources"].values():
        assert {"label", "confidence", "age_s"} <= set(s) and s["age_s"] >= 0

    t = tracks.json()
    assert t["policy"] == "match" and len(t["tracks"]) == 5
    assert set(t["mood"]) >= {"valence", "arousal"}
    for tr in t["tracks"]:
        assert {"uri", "title", "artist", "valence", "arousal", "reason"} <= set(tr)

    stats = [m.json() for m in seen if m.topic == "moodedge/e2e/stats"]
    assert stats, "the final stats message is published before exit"
    s = stats[-1]
    assert s["stages"]["speech"]["processed"] >= 1 and s["stages"]["face"]["processed"] >= 6
    assert s["stages"]["camera"]["errors"] == 1  # the bad .png, skipped
    assert s["sources"]["audio"]["state"] == "finished"
    assert s["rss_mb"] > 0 and s["versions"]["moodedge"] and s["interpreter"]


def test_sigterm_publishes_offline_and_exits_0_within_2s(broker, tmp_path):
    conf = daemon_config(tmp_path, broker.port, "term")
    sub = subscriber(broker.port, "term", discovery=False)
    proc = start_daemon(tmp_path, "--config", str(conf), "--audio-file", str(DEMO_CLIPS[0]),
                        "--loop")
    try:
        wait_for(sub, lambda m: m.topic.endswith("availability") and m.payload == b"online", 20)
        wait_for(sub, topic_is("mood"), 15)  # the pipeline is busy
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(5)
        took = time.monotonic() - t0
        off = wait_for(sub, lambda m: m.topic.endswith("availability"), 3)
    finally:
        stop(proc)
        sub.stop()
    assert rc == 0, daemon_log(tmp_path)
    assert took < 2.0, took
    assert off.payload == b"offline"


def test_broker_down_30s_then_back_reconnects_and_republishes(broker, tmp_path):
    """Slow-ish (~40 s): the broker is away for 30 s, as in a router reboot."""
    conf = daemon_config(tmp_path, broker.port, "rc", tracks={"min_interval_s": 1.0})
    sub = subscriber(broker.port, "rc", discovery=False)
    proc = start_daemon(tmp_path, "--config", str(conf), "--audio-file", str(DEMO_CLIPS[0]),
                        "--loop")
    try:
        wait_for(sub, topic_is("tracks"), 20)
        sub.stop()
        broker.stop()
        time.sleep(30)
        assert proc.poll() is None, "the daemon must survive the broker's absence"
        broker.start()
        t_back = time.monotonic()
        sub = subscriber(broker.port, "rc", discovery=True)  # a fresh broker: no memory
        seen = []
        wait_for(sub, lambda m: m.topic.endswith("availability") and m.payload == b"online",
                 12, seen)
        reconnect_s = time.monotonic() - t_back
        for name in ("mood", "tracks"):
            if not any(m.topic.endswith(name) for m in seen):
                wait_for(sub, topic_is(name), 5, seen)
        assert any(m.topic == "homeassistant/device/rc/config" for m in seen) or wait_for(
            sub, lambda m: m.topic.endswith("/config"), 5, seen)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0, daemon_log(tmp_path)
    finally:
        stop(proc)
        sub.stop()
    assert reconnect_s < 10, reconnect_s
    assert "Traceback" not in daemon_log(tmp_path)
