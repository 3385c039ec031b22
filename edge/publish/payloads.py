"""Every JSON payload the daemon publishes is built here, and only here.

The Home Assistant templates (:mod:`edge.publish.discovery`) read these fields;
``tests/test_topics.py`` renders them against payloads built by these functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edge.mood.fusion import MoodEstimate
from edge.music.recommend import Policy, Recommendation
from edge.num import rnd


@dataclass(frozen=True)
class FrameFaces:
    """What the latest camera frame showed (``faces``, ``faces_classified``,
    ``face_reason`` in ``…/mood``); None where the recogniser does not say."""

    seen: int | None  # faces detected in the frame
    classified: int | None  # of those, the faces given a guess
    reason: str | None = None  # why the frame's face label is null ("no face", ...)


def mood_payload(est: MoodEstimate, labels: Mapping[str, str | None],
                 wall_ts: float, faces: FrameFaces | None = None) -> dict[str, Any]:
    """``…/mood``: the fused point and, per modality, label, confidence, age; and the
    faces of the latest camera frame (all None without camera frames)."""
    sources = {
        m: {"label": labels.get(m), "confidence": rnd(c.confidence),
            "age_s": rnd(c.age_s, 2), "valence": rnd(c.valence),
            "arousal": rnd(c.arousal), "share": rnd(c.share)}
        for m, c in sorted(est.contributions.items())
    }
    live = [(c.share, m) for m, c in est.contributions.items() if c.weight > 0]
    emotion = labels.get(max(live)[1]) if live else None
    return {"ts": round(wall_ts, 3), "valence": rnd(est.valence),
            "arousal": rnd(est.arousal), "confidence": rnd(est.confidence),
            "quadrant": est.quadrant, "emotion": emotion, "sources": sources,
            "faces": None if faces is None else faces.seen,
            "faces_classified": None if faces is None else faces.classified,
            "face_reason": None if faces is None else faces.reason}


def tracks_payload(recs: Sequence[Recommendation], policy: Policy,
                   target: tuple[float, float] | None, trigger: str,
                   est: MoodEstimate | None, wall_ts: float) -> dict[str, Any]:
    """``…/tracks``: the list chosen, for which mood, policy and reason."""
    point = (est.valence, est.arousal) if est is not None else (0.0, 0.0)
    mood = {"valence": rnd(point[0]), "arousal": rnd(point[1]),
            "confidence": rnd(est.confidence) if est else 0.0,
            "quadrant": est.quadrant if est else "neutral"}
    return {"ts": round(wall_ts, 3), "policy": policy.value,
            "target": list(target) if target else None, "trigger": trigger, "mood": mood,
            "tracks": [r.to_dict() for r in recs]}


def event_payload(ident: Any, cmd: str | None, ok: bool, result: Any, wall_ts: float,
                  **extra: Any) -> dict[str, Any]:
    """``…/events``: the answer to one command (``result`` when ok, else ``error``)."""
    payload: dict[str, Any] = {"ts": round(wall_ts, 3), "id": ident, "cmd": cmd, "ok": ok}
    payload["result" if ok else "error"] = result
    payload.update(extra)
    return payload


def status_result(sources: dict[str, Any], paused: Sequence[str], policy: Policy,
                  calibration: dict[str, Any], mqtt_connected: bool) -> dict[str, Any]:
    """The ``result`` of ``{"cmd": "status"}``."""
    return {"sources": sources, "paused": sorted(paused), "policy": policy.value,
            "calibration": calibration, "mqtt_connected": mqtt_connected}


def stats_payload(*, wall_ts: float, uptime_s: float, cpu_percent: float, rss_bytes: int,
                  threads: int, healthy: bool, stages: dict[str, Any], sources: dict[str, Any],
                  paused: Sequence[str], policy: Policy, calibration: dict[str, Any],
                  playback: dict[str, Any], interpreter: str | None,
                  versions: dict[str, str | None],
                  mqtt: dict[str, Any] | None = None,
                  failed: dict[str, str] | None = None,
                  music_heard: dict[str, Any] | None = None,
                  face_detector: dict[str, int] | None = None) -> dict[str, Any]:
    """``…/stats``: counters, latencies, resources, sources and the settings in effect;
    ``music_heard``: whether the microphone hears music and since when (None: it is not
    listening for it: no speech model with a no-speech output, or ``audio.music.enabled``
    false); ``face_detector``: frames the face detector looked at and frames that kept the
    last faces, and for a window detector its windows looked through and kept (None: no
    such detector yet)."""
    payload: dict[str, Any] = {
        "ts": round(wall_ts, 3), "uptime_s": round(uptime_s, 1), "cpu_percent": cpu_percent,
        "rss_mb": round(rss_bytes / 2**20, 1), "threads": threads, "healthy": healthy,
        "stages": stages, "sources": sources, "paused": sorted(paused), "policy": policy.value,
        "calibration": calibration, "playback": playback, "music_heard": music_heard,
        "face_detector": face_detector, "interpreter": interpreter,
        "versions": versions,
    }
    if mqtt is not None:
        payload["mqtt"] = mqtt
    if failed:
        payload["failed"] = failed
    return payload
