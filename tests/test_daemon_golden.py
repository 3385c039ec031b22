"""What a subscriber receives from a replayed run is byte-for-byte what it was.

Three daemon processes against a real Mosquitto, their output recorded as bytes:

* audio: the first demo clip, ``--fast --exit-when-done``;
* camera: an image folder through the stand-in face recogniser, the same way;
* commands: no input, one command at a time on ``…/cmd`` (each answered before the next).

``mood.interval_s = 60`` makes fusion estimate once, when the input is drained, so which
moods are published does not depend on thread timing.  Only what depends on the run is
normalised: the wall-clock ``ts`` of each payload and the ``since`` times in a status
answer are set to 0, the test's temporary folder is named ``<tmp>`` (payloads are then
re-encoded as the daemon encodes them, which is checked to give the received bytes back
before normalising).  ``…/stats`` carries CPU,
RSS and latencies, so only its structure (its keys, stages and sources) is compared.

The expected messages are in ``golden/replay.json``; ``MOODEDGE_WRITE_GOLDEN=1`` rewrites it
(only when a change of output is intended, and said so in the commit).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from test_daemon_support import (  # noqa: F401 - broker_fixture provides "broker"
    DEMO_CLIPS,
    broker_fixture,
    daemon_config,
    daemon_log,
    start_daemon,
    stop,
    subscriber,
    wait_for,
)

GOLDEN = Path(__file__).parent / "golden" / "replay.json"
QUIET = {"mood": {"interval_s": 60.0}, "stats": {"interval_s": 3600.0}}


def _encode(payload) -> bytes:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _normalise(topic: str, raw: bytes):
    """The payload as text with its run-dependent fields zeroed (stats: its shape)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw.decode()
    assert _encode(data) == raw, (topic, raw)  # compact JSON, so re-encoding is exact
    name = topic.rsplit("/", 1)[-1]
    if name == "stats":
        return {"keys": sorted(data), "stages": sorted(data["stages"]),
                "stage_keys": {k: sorted(v) for k, v in data["stages"].items()},
                "sources": sorted(data["sources"]), "calibration": sorted(data["calibration"])}
    if isinstance(data, dict) and "ts" in data:
        data["ts"] = 0
    result = data.get("result") if isinstance(data, dict) else None
    if isinstance(result, dict) and isinstance(result.get("sources"), dict):
        for s in result["sources"].values():
            s["since"] = 0
    return _encode(data).decode()


def _record(seen, where: Path) -> list:
    """(topic, retain, payload) of each message; the test's folder is called <tmp>."""
    out = [[m.topic, m.retain, _normalise(m.topic, m.payload)] for m in seen
           if not m.topic.endswith("/cmd")]  # the test's own commands
    return json.loads(json.dumps(out).replace(json.dumps(str(where))[1:-1], "<tmp>"))


def _offline(m) -> bool:
    return m.topic.endswith("/availability") and m.payload == b"offline"


def _replay(broker, tmp_path, device_id, args, **extra) -> list:
    conf = daemon_config(tmp_path, broker.port, device_id, **QUIET, **extra)
    sub = subscriber(broker.port, device_id)
    proc = start_daemon(tmp_path, "--config", str(conf), *args, "--fast", "--exit-when-done")
    seen = []
    try:
        wait_for(sub, _offline, 60, seen)
        assert proc.wait(10) == 0, daemon_log(tmp_path)
    finally:
        stop(proc)
        sub.stop()
    return _record(seen, tmp_path)


def _images(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(8):  # alternately bright and dark, detailed: "happy", then "sad"
        lo = 150 if i % 2 == 0 else 10
        np.save(folder / f"{i:02d}.npy", rng.integers(lo, lo + 100, (48, 64, 3), dtype=np.uint8))
    (folder / "08.pgm").write_bytes(b"P5\n4 2\n255\n" + bytes([30] * 8))  # flat: no face
    return folder


COMMANDS = [
    {"cmd": "status", "id": 1},
    {"cmd": "pause", "what": "audio", "id": 2},
    {"cmd": "resume", "id": 3},
    {"cmd": "set_policy", "policy": "target", "id": 4},  # no target yet: refused
    {"cmd": "set_policy", "policy": "calm", "id": 5},
    {"cmd": "set_target", "valence": 0.4, "arousal": -0.6, "id": "t"},
    {"cmd": "set_policy", "policy": "target", "id": 6},  # keeps the target
    {"cmd": "set_policy", "policy": "target", "target": [0.1, 0.2]},
    {"cmd": "recommend", "id": 7},
    {"cmd": "feedback", "uri": "nope:1", "kind": "like", "id": 8},
    {"cmd": "played", "uri": "nope:2", "id": 9},
    {"cmd": "reload_calibration", "id": 10},
    {"cmd": "set_policy", "policy": "match", "id": 11},
    {"cmd": "status", "id": 12},
    {"cmd": "nope", "id": 13},
    {"cmd": "pause", "what": "everything", "id": 14},
    {"cmd": "recommend", "extra": 1},
]


def _commands(broker, tmp_path) -> list:
    conf = daemon_config(tmp_path, broker.port, "gcmd", **QUIET,
                         audio={"enabled": False}, camera={"enabled": False},
                         tracks={"min_interval_s": 0.0})
    sub = subscriber(broker.port, "gcmd")
    proc = start_daemon(tmp_path, "--config", str(conf))
    seen = []
    try:
        wait_for(sub, lambda m: m.topic.endswith("/availability") and m.payload == b"online",
                 30, seen)
        for _ in range(50):  # until the recommender has opened its catalogue (not recorded)
            sub.client.publish("moodedge/gcmd/cmd", b'{"cmd": "status", "id": "warm-up"}', qos=1)
            answer = wait_for(sub, lambda m: m.topic.endswith("/events"), 10, seen).json()
            if "catalogue" in answer["result"]["sources"]:
                break
        payloads = [json.dumps(c).encode() for c in COMMANDS] + [b"not json"]
        for i, payload in enumerate(payloads):
            before = sum(m.topic.endswith("/events") for m in seen)
            sub.client.publish("moodedge/gcmd/cmd", payload, qos=1)
            wait_for(sub, lambda m, n=before: m.topic.endswith("/events")
                     and sum(s.topic.endswith("/events") for s in seen) > n, 10, seen)
            if i == 8:  # a known track for feedback and played
                uri = [m for m in seen if m.topic.endswith("/tracks")][-1].json()["tracks"][0]
                for what, kind in (("feedback", "like"), ("played", None)):
                    cmd = {"cmd": what, "uri": uri["uri"], **({"kind": kind} if kind else {})}
                    before = sum(m.topic.endswith("/events") for m in seen)
                    sub.client.publish("moodedge/gcmd/cmd", json.dumps(cmd), qos=1)
                    wait_for(sub, lambda m, n=before: m.topic.endswith("/events")
                             and sum(s.topic.endswith("/events") for s in seen) > n, 10, seen)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, daemon_log(tmp_path)
        wait_for(sub, _offline, 5, seen)
    finally:
        stop(proc)
        sub.stop()
    return [r for r in _record(seen, tmp_path)
            if not r[0].endswith("/stats") and '"id":"warm-up"' not in r[2]]


def test_replayed_runs_publish_byte_for_byte_the_same(broker, tmp_path):
    got = {}
    for name, args, extra in (
            ("audio", ["--audio-file", str(DEMO_CLIPS[0])], {}),
            ("camera", ["--image-dir", str(_images(tmp_path / "img"))],
             {"camera": {"recogniser": "edge.demo.stub_face:factory", "fps": 4.0}})):
        where = tmp_path / name
        where.mkdir()
        got[name] = _replay(broker, where, f"g{name}", args, **extra)
    where = tmp_path / "cmd"
    where.mkdir()
    got["commands"] = _commands(broker, where)
    if os.environ.get("MOODEDGE_WRITE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1) + "\n", encoding="utf-8")
        pytest.skip(f"wrote {GOLDEN}")
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for name in want:
        # stats come on a timer: compare their shape once, the other messages in order
        g = [r for r in got[name] if not r[0].endswith("/stats")]
        w = [r for r in want[name] if not r[0].endswith("/stats")]
        assert g == w, name
        gs = [r[2] for r in got[name] if r[0].endswith("/stats")]
        ws = [r[2] for r in want[name] if r[0].endswith("/stats")]
        assert gs[-1:] == ws[-1:], name
