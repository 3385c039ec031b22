"""The topic and command tables are the one source: Topics, the docs' tables and the
Home Assistant templates are checked against them and against the payload builders."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from conftest import ROOT

from edge.config import load_config
from edge.daemon.health import versions
from edge.mood.fusion import MoodFuser, Observation
from edge.music.catalog import Catalog
from edge.music.recommend import Policy, Recommender
from edge.publish import payloads as P
from edge.publish.commands import COMMANDS, doc_lines, parse_command
from edge.publish.discovery import discovery_payload
from edge.publish.topics import BY_NAME, TOPICS, Topics, doc_rows

DOC = (ROOT / "docs" / "daemon.md").read_text(encoding="utf-8")


def test_the_docs_topic_table_is_the_topic_table():
    section = DOC.split("## MQTT topics", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| `")]
    assert table == doc_rows()


def test_the_docs_command_list_is_the_command_table():
    listed = [line for line in DOC.splitlines() if line.startswith('    {"cmd"')]
    assert listed == doc_lines()
    for spec, line in zip(COMMANDS.values(), listed):
        parse_command(spec.example.encode())  # every documented example is valid
        assert spec.example in line


def test_topics_come_from_the_table():
    cfg = load_config(None, {"mqtt.device_id": "pi"}, env={})
    t = Topics.of(cfg.mqtt, cfg.homeassistant)
    names = [f.name for f in dataclasses.fields(t)]
    assert names == ["base", *(x.name for x in TOPICS), "discovery", "ha_status"]
    assert t.mood == "moodedge/pi/mood" and t.discovery == "homeassistant/device/pi/config"
    assert {n for n, x in BY_NAME.items() if x.builder is not None} == {
        "mood", "tracks", "stats", "events"}


def _payloads(tmp_path):
    f = MoodFuser(load_config(None, env={}).fusion)
    f.observe(Observation.from_probabilities("voice", 0.0, {"angry": 0.9, "calm": 0.1}))
    f.observe(Observation.from_probabilities("face", 1.0, {"happy": 0.97, "sad": 0.03}))
    est = f.estimate(1.5)
    with Catalog(tmp_path / "c.sqlite") as cat:
        cat.ensure_tracks()
        recs = Recommender(cat).recommend((est.valence, est.arousal), Policy.MATCH, 5)
    cal = {"calibrated_at": "2024-05-01T10:00:00+00:00", "age_s": 5.0, "vad_threshold_db": -75.0,
           "offsets": {}, "reliability": {}, "stale_models": [], "error": None}
    stats = P.stats_payload(wall_ts=time.time(), uptime_s=1.0, cpu_percent=3.5, rss_bytes=2**26,
                            threads=9, healthy=True, stages={}, sources={}, paused=[],
                            policy=Policy.MATCH, calibration=cal,
                            playback={"state": "playing", "since": 1.0}, interpreter=None,
                            versions=versions(None))
    faces = P.FrameFaces(2, 1)
    return {"mood": P.mood_payload(est, {"voice": "angry", "face": "happy"}, time.time(), faces),
            "tracks": P.tracks_payload(recs, Policy.MATCH, None, "first mood", est, time.time()),
            "stats": stats}


def test_home_assistant_templates_render_from_the_payload_builders(tmp_path):
    jinja2 = pytest.importorskip("jinja2")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)  # a missing field fails
    env.filters["tojson"] = json.dumps
    built = {k: json.loads(json.dumps(v)) for k, v in _payloads(tmp_path).items()}
    comps = discovery_payload("pi", "moodedge/pi")["cmps"]
    rendered = 0
    for c in comps.values():
        topic = c.get("state_topic") or c.get("json_attributes_topic")
        if topic is None:
            continue
        payload = built[topic.rsplit("/", 1)[-1]]
        for key in ("value_template", "json_attributes_template"):
            if key in c:
                out = env.from_string(c[key]).render(value_json=payload)
                assert out not in ("", "None") or key != "value_template" or \
                    c["unique_id"].endswith("calibrated_at"), (c["unique_id"], out)
                rendered += 1
    assert rendered >= 10
    assert env.from_string(comps["moodedge_pi_mood"]["value_template"]).render(
        value_json=built["mood"]) == built["mood"]["quadrant"]
    faces = env.from_string(comps["moodedge_pi_faces"]["value_template"])
    assert faces.render(value_json=built["mood"]) == "2"
    # no camera frames yet (null), or a payload from before the field: unknown in HA
    assert faces.render(value_json=dict(built["mood"], faces=None)) == "None"
    assert faces.render(value_json={"quadrant": "calm"}) == "None"
    policy = comps["moodedge_pi_policy"]
    assert env.from_string(policy["value_template"]).render(value_json=built["tracks"]) == "match"
