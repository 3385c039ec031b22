"""MQTT: command schema, discovery payload, the publisher against a real Mosquitto, and
1,000 malformed commands sent to a running daemon."""

from __future__ import annotations

import json
import random
import signal

import pytest
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

from edge.config import load_config
from edge.music.recommend import Policy
from edge.publish.commands import MAX_PAYLOAD, CommandError, parse_command
from edge.publish.discovery import discovery_payload
from edge.publish.mqtt import MqttPublisher, make_client


@pytest.mark.parametrize(("payload", "expect"), [
    ({"cmd": "set_policy", "policy": "uplift", "id": 7}, dict(policy=Policy.UPLIFT, id=7)),
    ({"cmd": "set_policy", "policy": "target", "target": [0.4, -0.6]},
     dict(policy=Policy.TARGET, target=(0.4, -0.6))),
    ({"cmd": "set_target", "valence": 1, "arousal": -0.5},
     dict(policy=Policy.TARGET, target=(1.0, -0.5))),
    ({"cmd": "pause"}, dict(what=("audio", "camera"))),
    ({"cmd": "resume", "what": "camera"}, dict(what=("camera",))),
    ({"cmd": "feedback", "uri": "spotify:track:x", "kind": "skip"},
     dict(uri="spotify:track:x", kind="skip")),
    ({"cmd": "recommend", "id": "r1"}, dict(id="r1")),
])
def test_valid_commands_parse(payload, expect):
    cmd = parse_command(json.dumps(payload).encode())
    assert cmd.cmd == payload["cmd"]
    for k, v in expect.items():
        assert getattr(cmd if k == "id" else cmd.args, k) == v


@pytest.mark.parametrize(("payload", "message"), [
    (b"\xff\xfe", "not valid UTF-8 JSON"),
    (b'{"cmd": ', "not valid UTF-8 JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"cmd": "reboot"}', "cmd: expected one of"),
    (b'{"cmd": 5}', "cmd: expected one of"),
    (b'{"cmd": "set_policy", "policy": "loud"}', "policy: expected one of"),
    (b'{"cmd": "set_policy", "policy": "calm", "target": [0, 0]}', "only applies"),
    (b'{"cmd": "set_target", "valence": "high", "arousal": 0}', "valence: expected a number"),
    (b'{"cmd": "set_target", "valence": 2, "arousal": 0}', "in [-1, 1], got 2"),
    (b'{"cmd": "set_target", "valence": NaN, "arousal": 0}', "valence: expected a number"),
    (b'{"cmd": "set_target", "valence": 0}', "arousal: missing"),
    (b'{"cmd": "pause", "what": "microwave"}', "what: expected one of"),
    (b'{"cmd": "playback", "state": ["playing"]}', "state: expected one of"),  # not a TypeError
    (b'{"cmd": "playback", "state": {}}', "state: expected one of"),
    (b'{"cmd": "feedback", "uri": "", "kind": "like"}', "uri: expected a non-empty"),
    (b'{"cmd": "feedback", "uri": "x", "kind": "love"}', "kind: expected one of"),
    (b'{"cmd": "recommend", "now": true}', "unknown key(s) ['now']"),
    (b'{"cmd": "status", "id": [1]}', "id: expected a string"),
    (b"[" * 3000 + b"]" * 3000, "payload too large"),
    (b"[" * 2000 + b"]" * 2000, "nested too deeply"),
    # regression: a key given twice took the last value ("pause" then "resume": resumed)
    (b'{"cmd": "pause", "cmd": "resume"}', "key 'cmd' is given twice"),
    (b'{"cmd": "set_target", "valence": 0.5, "arousal": 0, "valence": -0.5}', "key 'valence' is given twice"),
])
def test_bad_commands_say_what_was_expected(payload, message):
    with pytest.raises(CommandError) as e:
        parse_command(payload)
    assert message in str(e.value)


@pytest.mark.parametrize(("said", "state"), [
    ("playing", "playing"), ("buffering", "playing"), ("paused", "paused"), ("idle", "idle"),
    ("off", "idle"), ("on", "idle"), ("standby", "idle"), ("unavailable", "idle"),
    ("unknown", "idle"), ("Playing", "playing"), (" paused ", "paused"),
])
def test_playback_takes_home_assistants_media_player_states_as_they_come(said, state):
    """Regression: an automation that forwards `{{ trigger.to_state.state }}` (the
    obvious template) was refused for "off", "on", "standby", "buffering", "unavailable";
    Home Assistant's media_player states are now read as playing (buffering too: music is
    about to play), paused, or idle (everything else)."""
    cmd = parse_command(json.dumps({"cmd": "playback", "state": said}).encode())
    assert cmd.args.state == state


def test_bad_command_keeps_id_and_cmd_for_the_answer():
    with pytest.raises(CommandError) as e:
        parse_command(b'{"cmd": "set_policy", "id": "abc", "policy": 3}')
    assert (e.value.id, e.value.cmd) == ("abc", "set_policy")


def test_discovery_payload_is_device_based_and_self_consistent():
    d = discovery_payload("pi", "moodedge/pi")
    assert d["dev"]["ids"] == ["moodedge_pi"] and d["o"]["name"] == "moodedge"
    assert d["availability_topic"] == "moodedge/pi/availability"
    platforms = {c["p"] for c in d["cmps"].values()}
    assert {"sensor", "select", "button"} <= platforms
    for key, c in d["cmps"].items():
        assert c["unique_id"] == key
        for t in ("state_topic", "command_topic"):
            assert c.get(t, "moodedge/pi/").startswith("moodedge/pi/")
        if "payload_press" in c:
            parse_command(c["payload_press"].encode())  # the buttons send valid commands
    select = d["cmps"]["moodedge_pi_policy"]
    rendered = select["command_template"].replace("{{ value }}", "calm")
    assert parse_command(rendered.encode()).args.policy is Policy.CALM


def _cfg(port, device_id="pub", **over):
    return load_config(None, {"mqtt.host": "127.0.0.1", "mqtt.port": port,
                              "mqtt.device_id": device_id, **over}, env={})


def test_publisher_retains_state_answers_ha_status_and_leaves_offline(broker):
    cfg = _cfg(broker.port)
    commands = []
    pub = MqttPublisher(cfg.mqtt, cfg.homeassistant, lambda p, t: commands.append(p))
    pub.start()
    sub = subscriber(broker.port, "pub")
    try:
        wait_for(sub, lambda m: m.topic.endswith("availability") and m.payload == b"online", 10)
        pub.publish("mood", {"ts": 1.0, "valence": 0.5, "arousal": 0.1})
        pub.publish("stats", {"x": float("nan")})  # refused: never invalid JSON on the wire
        wait_for(sub, topic_is("mood"), 5)
        # a late subscriber gets availability, discovery and mood as retained messages
        late = subscriber(broker.port, "pub")
        seen = []
        for _ in range(3):
            wait_for(late, lambda m: m.retain, 5, seen)
        assert {m.topic.rsplit("/", 1)[-1] for m in seen} == {"availability", "config", "mood"}
        late.stop()
        # Home Assistant restarts: it says online and gets discovery again
        ha = make_client(cfg.mqtt, "ha-test")
        ha.connect("127.0.0.1", broker.port)
        ha.loop_start()
        ha.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
        wait_for(sub, lambda m: m.topic == "homeassistant/device/pub/config", 5)
        ha.publish("moodedge/pub/cmd", b'{"cmd": "status"}', qos=1).wait_for_publish(5)
        ha.loop_stop()
        ha.disconnect()
    finally:
        pub.stop()
    off = wait_for(sub, topic_is("availability"), 5)
    sub.stop()
    assert off.payload == b"offline"
    assert commands == [b'{"cmd": "status"}']
    assert pub.counters["dropped"] == 1 and pub.counters["connects"] == 1


def _malformed(rng: random.Random, i: int) -> bytes:
    """Command ``i``: JSON objects carry ``"id": i`` so their answers can be matched."""
    kind = i % 10
    if kind == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    if kind == 1:
        return b'{"cmd": "set_policy", "policy": '  # truncated JSON
    if kind == 2:
        return json.dumps(rng.choice([[], 1, None, "pause", 2.5, True])).encode()
    if kind == 3:
        return json.dumps({"cmd": rng.choice([1, None, [], {}, "explode"]), "id": i}).encode()
    if kind == 4:
        return json.dumps({"cmd": "set_target", "valence": rng.choice(["x", 5, None, []]),
                           "arousal": 0, "id": i}).encode()
    if kind == 5:
        return json.dumps({"cmd": "feedback", "uri": rng.choice([1, "", None]),
                           "kind": "like", "id": i}).encode()
    if kind == 6:
        return b'{"cmd": "recommend", "extra": "' + b"x" * rng.randint(5000, 200_000) + b'"}'
    if kind == 7:
        return b"[" * 1500 + b"]" * 1500
    if kind == 8:
        return json.dumps({"cmd": "pause", "what": rng.choice(["mic", 3, []]), "id": i}).encode()
    return json.dumps({"cmd": "set_policy", "policy": "target", "id": i}).encode()  # no target


def test_a_thousand_malformed_commands_are_each_answered(broker, tmp_path):
    """Answers are matched to requests by id (QoS 1 may deliver a command twice, and
    answers from the recommender's thread come later): every command with an id gets
    its own answer, and at least as many id-less answers as id-less commands arrive."""
    conf = daemon_config(tmp_path, broker.port, "fuzz")
    sub = subscriber(broker.port, "fuzz", discovery=False)
    proc = start_daemon(tmp_path, "--config", str(conf), "--audio-file", str(DEMO_CLIPS[0]),
                        "--loop")
    client = make_client(_cfg(broker.port).mqtt, "fuzzer")
    rng = random.Random(1234)
    payloads = [_malformed(rng, i) for i in range(1000)]
    with_id = {i for i in range(1000) if i % 10 in (3, 4, 5, 8, 9)}
    by_id, idless = {}, []
    try:
        wait_for(sub, lambda m: m.topic.endswith("availability") and m.payload == b"online", 20)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        infos = [client.publish("moodedge/fuzz/cmd", p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(10)
        while set(by_id) != with_id or len(idless) < 1000 - len(with_id):
            e = wait_for(sub, topic_is("events"), 30).json()
            if e.get("id") is None:
                idless.append(e)
            elif e["id"] in with_id:
                by_id[e["id"]] = e
        client.publish("moodedge/fuzz/cmd", b'{"cmd": "status", "id": "after"}', qos=1)
        ok = wait_for(sub, lambda m: topic_is("events")(m) and m.json().get("id") == "after",
                      10).json()
        assert proc.poll() is None, daemon_log(tmp_path)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        client.loop_stop()
        client.disconnect()
        stop(proc)
        sub.stop()
    errors = [*by_id.values(), *idless]
    assert all(e["ok"] is False and e["error"] for e in errors)
    assert sum("payload too large" in e["error"] for e in idless) >= 100
    assert sum("nested too deeply" in e["error"] for e in idless) >= 100
    # set_policy goes to the recommender's bounded queue: on a loaded machine some are
    # answered "busy" instead (still an answer, and the daemon stays up)
    policy = [by_id[i]["error"] for i in with_id if i % 10 == 9]
    needs = sum("needs a target" in e for e in policy)
    busy = sum(e.endswith("busy: too many commands queued; try again") for e in policy)
    assert needs + busy == 100 and needs > 0, (needs, busy)
    assert all("expected a number" in by_id[i]["error"] for i in with_id if i % 10 == 4)
    assert ok["ok"] is True and ok["id"] == "after"
    assert ok["result"]["sources"]["audio"]["state"] == "running"
    assert MAX_PAYLOAD == 4096


def test_listen_prints_what_a_subscriber_sees_and_its_timeout_covers_connecting(broker, tmp_path):
    """``edge-cli listen`` had no test against a broker; and with no broker it waited 10 s
    whatever --timeout said."""
    from conftest import run_cli

    cfg = _cfg(broker.port)
    c = make_client(cfg.mqtt, "listen-test")
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    c.publish("moodedge/lst/mood", b'{"label": "calm"}', qos=1, retain=True).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()
    res = run_cli("listen", "--mqtt-host", "127.0.0.1", "--mqtt-port", str(broker.port),
                  "--device-id", "lst", "--json", "--count", "1", "--timeout", "30")
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["topic"] == "moodedge/lst/mood" and got["payload"] == {"label": "calm"}
    port = broker.port
    broker.stop()
    res = run_cli("listen", "--mqtt-host", "127.0.0.1", "--mqtt-port", str(port), "--timeout", "1")
    assert res.returncode == 1 and f"no MQTT broker answered at 127.0.0.1:{port} within 1 s" \
        in res.stderr, res.stderr
