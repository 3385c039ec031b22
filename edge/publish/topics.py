"""The topic table: every MQTT topic under ``<topic_prefix>/<device_id>``, with its
retain flag, QoS, payload builder and documentation, in one place.

:class:`Topics` (the full topic names), :meth:`MqttPublisher.publish
<edge.publish.mqtt.MqttPublisher.publish>` (QoS and retain) and the table in
``docs/daemon.md`` (checked by ``tests/test_topics.py``) all come from :data:`TOPICS`:
adding a topic is one row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, make_dataclass
from typing import Any

from edge.config import HomeAssistantConfig, MqttConfig
from edge.publish import payloads as P
from edge.publish.discovery import discovery_topic


@dataclass(frozen=True)
class Topic:
    name: str
    retain: bool | None  # None: the daemon subscribes (commands in)
    qos: int
    builder: Callable[..., dict[str, Any]] | None  # None: plain text, or incoming
    doc: str  # the payload, as docs/daemon.md's topic table says it


TOPICS: tuple[Topic, ...] = (
    Topic("availability", True, 1, None,
          "`online` / `offline` (`offline` is the last will, and is published on SIGTERM)"),
    Topic("mood", True, 1, P.mood_payload,
          '`{"ts", "valence", "arousal", "confidence", "quadrant", "emotion", "sources": '
          '{"voice": {"label", "confidence", "age_s", "valence", "arousal", "share"}, '
          '"face": {…}}, "faces", "faces_classified", "face_reason"}`'),
    Topic("tracks", True, 1, P.tracks_payload,
          '`{"ts", "policy", "target", "trigger", "mood": {…}, "tracks": [{"uri", "title", '
          '"artist", "valence", "arousal", "reason"}]}`'),
    Topic("stats", False, 0, P.stats_payload,
          "every `stats.interval_s` (and right after a calibration reload): per-stage "
          "counters (processed, dropped, errors) and `latency_ms_median`, `cpu_percent`, "
          "`rss_mb`, `threads`, `uptime_s`, `healthy`, `sources`, `paused`, `policy`, "
          "`calibration`, `interpreter`, `versions`, `mqtt` counters, `face_detector` "
          "(`{\"scans\", \"reused\"}`: frames the face detector looked at, frames that kept the last "
          "faces because nothing moved; BlazeFace adds `windows_looked`, `windows_reused`: its "
          "windows looked through again and kept; null without)"),
    Topic("cmd", None, 1, None, "commands, below"),
    Topic("events", False, 1, P.event_payload,
          'one answer per command: `{"ts", "id", "cmd", "ok", "result"}` or '
          '`{…, "ok": false, "error"}`'),
)
BY_NAME: dict[str, Topic] = {t.name: t for t in TOPICS}
DISCOVERY = Topic("discovery", True, 1, None, "Home Assistant device discovery")  # not under base


def _of(cls: type, mqtt: MqttConfig, ha: HomeAssistantConfig) -> Any:
    b = mqtt.base_topic
    return cls(base=b, discovery=discovery_topic(ha.prefix, mqtt.device_id),
               ha_status=f"{ha.prefix}/status", **{t.name: f"{b}/{t.name}" for t in TOPICS})


#: Full topic names: ``Topics.of(mqtt, ha).mood`` is ``<base>/mood``; also ``base``,
#: ``discovery`` (Home Assistant's device config) and ``ha_status`` (its birth message).
Topics = make_dataclass("Topics", ["base", *BY_NAME, "discovery", "ha_status"], frozen=True,
                        namespace={"of": classmethod(_of)})


def doc_rows() -> list[str]:
    """The rows of docs/daemon.md's topic table, as the table says them."""
    def flag(r: bool | None) -> str:
        return "—" if r is None else ("yes" if r else "no")

    rows = [f"| `…/{t.name}` | {flag(t.retain)} | {t.qos} | {t.doc} |" for t in TOPICS]
    d = DISCOVERY
    return [*rows, f"| `homeassistant/device/<device_id>/config` | {flag(d.retain)} | {d.qos} | "
                   f"{d.doc} |"]
