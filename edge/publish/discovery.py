"""Home Assistant MQTT device-based discovery (``<prefix>/device/<device_id>/config``).

One retained message declares the device and all its entities; Home Assistant
creates them with no YAML.  The entities read the daemon's own topics through value
templates, share the daemon's availability topic, and the controls (policy select,
buttons) publish JSON commands to ``…/cmd``.
"""

from __future__ import annotations

import json
from typing import Any

from edge import __version__
from edge.music.recommend import Policy

ORIGIN = {"name": "moodedge", "sw": __version__}


def discovery_topic(prefix: str, device_id: str) -> str:
    return f"{prefix}/device/{device_id}/config"


def discovery_payload(device_id: str, base_topic: str, name: str = "") -> dict[str, Any]:
    """The device-discovery JSON object for ``device_id`` publishing under ``base_topic``."""
    mood, tracks, cmd = f"{base_topic}/mood", f"{base_topic}/tracks", f"{base_topic}/cmd"
    stats = f"{base_topic}/stats"

    def uid(key: str) -> str:
        return f"moodedge_{device_id}_{key}"

    def sensor(key: str, title: str, topic: str, template: str, **extra: Any) -> dict[str, Any]:
        return {"p": "sensor", "name": title, "unique_id": uid(key), "state_topic": topic,
                "value_template": template, **extra}

    def button(key: str, title: str, command: dict[str, Any], icon: str) -> dict[str, Any]:
        return {"p": "button", "name": title, "unique_id": uid(key), "command_topic": cmd,
                "payload_press": json.dumps(command), "icon": icon}

    measure = {"state_class": "measurement", "suggested_display_precision": 2}
    components = {
        uid("mood"): sensor("mood", "Mood", mood, "{{ value_json.quadrant }}",
                            json_attributes_topic=mood, icon="mdi:emoticon-outline"),
        uid("emotion"): sensor("emotion", "Emotion", mood,
                               "{{ value_json.emotion if value_json.emotion else 'none' }}",
                               icon="mdi:account-voice"),
        uid("valence"): sensor("valence", "Valence", mood, "{{ value_json.valence }}",
                               icon="mdi:thumbs-up-down", **measure),
        uid("arousal"): sensor("arousal", "Arousal", mood, "{{ value_json.arousal }}",
                               icon="mdi:lightning-bolt", **measure),
        uid("confidence"): sensor("confidence", "Mood confidence", mood,
                                  "{{ (value_json.confidence * 100) | round(0) }}",
                                  unit_of_measurement="%", state_class="measurement",
                                  icon="mdi:gauge"),
        uid("faces"): sensor("faces", "Faces seen", mood,
                             "{{ value_json.faces if value_json.faces is defined "
                             "and value_json.faces is not none else None }}",
                             state_class="measurement", icon="mdi:account-group"),
        uid("track"): sensor(
            "track", "Current track", tracks,
            "{{ (value_json.tracks[0].artist ~ ' - ' ~ value_json.tracks[0].title)[:250] "
            "if value_json.tracks else 'none' }}",
            json_attributes_topic=tracks, icon="mdi:music"),
        uid("policy"): {
            "p": "select", "name": "Music policy", "unique_id": uid("policy"),
            "state_topic": tracks, "value_template": "{{ value_json.policy }}",
            "command_topic": cmd,
            "command_template": '{"cmd": "set_policy", "policy": "{{ value }}"}',
            "options": [p.value for p in Policy if p is not Policy.TARGET],
            "icon": "mdi:playlist-music",
        },
        uid("music_heard"): {
            "p": "binary_sensor", "name": "Music heard", "unique_id": uid("music_heard"),
            "state_topic": stats, "icon": "mdi:music-note",
            "value_template": "{{ 'ON' if value_json.music_heard is defined and value_json.music_heard "
                              "and value_json.music_heard.heard else 'OFF' }}",
        },
        uid("cpu"): sensor("cpu", "CPU", stats, "{{ value_json.cpu_percent }}",
                           unit_of_measurement="%", state_class="measurement",
                           entity_category="diagnostic", icon="mdi:cpu-64-bit"),
        uid("calibrated_at"): sensor(
            "calibrated_at", "Calibrated at", stats,
            "{{ value_json.calibration.calibrated_at if value_json.calibration is defined "
            "and value_json.calibration.calibrated_at else None }}",
            device_class="timestamp", entity_category="diagnostic", icon="mdi:tune-vertical",
            json_attributes_topic=stats,
            json_attributes_template="{{ (value_json.calibration | default({})) | tojson }}"),
        uid("reload_calibration"): dict(
            button("reload_calibration", "Reload calibration", {"cmd": "reload_calibration"},
                   "mdi:reload"), entity_category="config"),
        uid("recommend"): button("recommend", "Recommend now", {"cmd": "recommend"},
                                 "mdi:playlist-play"),
        uid("pause"): button("pause", "Pause listening and looking",
                             {"cmd": "pause", "what": "all"}, "mdi:eye-off"),
        uid("resume"): button("resume", "Resume listening and looking",
                              {"cmd": "resume", "what": "all"}, "mdi:eye"),
    }
    return {
        "dev": {"ids": [f"moodedge_{device_id}"], "name": name or f"MoodEdge {device_id}",
                "mf": "MoodEdge", "mdl": "MoodEdge emotion-aware music", "sw": __version__},
        "o": ORIGIN,
        "cmps": components,
        "availability_topic": f"{base_topic}/availability",
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
    }
