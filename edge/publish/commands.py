"""The ``…/cmd`` topic's JSON commands: a strict schema, parsed without side effects.

Every command is a JSON object with ``"cmd"`` and, optionally, an ``"id"`` (string or
integer, echoed in the answer on ``…/events``)::

    {"cmd": "set_policy", "policy": "uplift"}            match | uplift | calm | target
    {"cmd": "set_policy", "policy": "target", "target": [0.4, -0.6]}
    {"cmd": "set_target", "valence": 0.4, "arousal": -0.6}   (implies policy "target")
    {"cmd": "pause", "what": "audio"}                     audio | camera | all (default)
    {"cmd": "resume", "what": "all"}
    {"cmd": "feedback", "uri": "spotify:track:…", "kind": "like"}   like | skip | dislike
    {"cmd": "played", "uri": "spotify:track:…"}           a player started this track
    {"cmd": "recommend"}                                   recommend now
    {"cmd": "status"}                                      answer with the daemon's status
    {"cmd": "reload_calibration"}                          re-read calibration.json

Unknown commands or keys, wrong types and out-of-range values are a
:class:`CommandError` whose message says what was expected.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from edge.music.catalog import FEEDBACK_KINDS
from edge.music.recommend import Policy

MAX_PAYLOAD = 4096
PAUSABLE = ("audio", "camera")
_ARGS: dict[str, frozenset[str]] = {
    "set_policy": frozenset({"policy", "target"}),
    "set_target": frozenset({"valence", "arousal"}),
    "pause": frozenset({"what"}),
    "resume": frozenset({"what"}),
    "feedback": frozenset({"uri", "kind"}),
    "played": frozenset({"uri"}),
    "recommend": frozenset(),
    "status": frozenset(),
    "reload_calibration": frozenset(),
}
COMMANDS = tuple(_ARGS)


class CommandError(ValueError):
    """A command that cannot be carried out; ``id``/``cmd`` are echoed when known."""

    def __init__(self, message: str, id: str | int | None = None, cmd: str | None = None):
        super().__init__(message)
        self.id = id
        self.cmd = cmd


@dataclass(frozen=True)
class Command:
    cmd: str
    id: str | int | None = None
    policy: Policy | None = None
    target: tuple[float, float] | None = None
    what: tuple[str, ...] = ()
    uri: str | None = None
    kind: str | None = None


def _unit(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a number in [-1, 1], got {_brief(value)}")
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a number in [-1, 1], got {value}")
    return float(value)


def _brief(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _uri(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 1024:
        raise ValueError(f"uri: expected a non-empty string of at most 1024 characters, "
                         f"got {_brief(value)}")
    return value


def parse_command(payload: bytes | str) -> Command:
    """Parse one ``cmd`` payload; raises :class:`CommandError` with a clear message."""
    if len(payload) > MAX_PAYLOAD:
        raise CommandError(f"payload too large ({len(payload)} bytes; at most {MAX_PAYLOAD})")
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CommandError(f"payload is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise CommandError("payload is nested too deeply") from None
    if not isinstance(data, dict):
        raise CommandError(f"expected a JSON object with \"cmd\", got {_brief(data)}")
    ident = data.get("id")
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, (str, int))
                              or (isinstance(ident, str) and len(ident) > 64)):
        raise CommandError(f"id: expected a string (<= 64 characters) or an integer, "
                           f"got {_brief(ident)}")
    cmd = data.get("cmd")
    if not isinstance(cmd, str) or cmd not in _ARGS:
        raise CommandError(f"cmd: expected one of {list(COMMANDS)}, got {_brief(cmd)}", ident)
    extra = sorted(set(data) - _ARGS[cmd] - {"cmd", "id"})
    if extra:
        raise CommandError(f"{cmd}: unknown key(s) {extra}; expected "
                           f"{sorted(_ARGS[cmd]) or 'no arguments'}", ident, cmd)
    try:
        return _build(cmd, ident, data)
    except ValueError as exc:
        raise CommandError(f"{cmd}: {exc}", ident, cmd) from None


def _build(cmd: str, ident: str | int | None, data: dict[str, Any]) -> Command:
    if cmd == "set_policy":
        try:
            policy = Policy(data.get("policy"))
        except ValueError:
            raise ValueError(f"policy: expected one of {[p.value for p in Policy]}, "
                             f"got {_brief(data.get('policy'))}") from None
        target = data.get("target")
        if target is not None:
            if policy is not Policy.TARGET:
                raise ValueError("target: only applies to policy 'target'")
            if not isinstance(target, list) or len(target) != 2:
                raise ValueError(f"target: expected [valence, arousal], got {_brief(target)}")
            target = (_unit(target[0], "target[0]"), _unit(target[1], "target[1]"))
        return Command(cmd, ident, policy=policy, target=target)
    if cmd == "set_target":
        for key in ("valence", "arousal"):
            if key not in data:
                raise ValueError(f"{key}: missing (expected a number in [-1, 1])")
        target = (_unit(data["valence"], "valence"), _unit(data["arousal"], "arousal"))
        return Command(cmd, ident, policy=Policy.TARGET, target=target)
    if cmd in ("pause", "resume"):
        what = data.get("what", "all")
        if what == "all":
            return Command(cmd, ident, what=PAUSABLE)
        if what not in PAUSABLE:
            raise ValueError(f"what: expected one of {[*PAUSABLE, 'all']}, got {_brief(what)}")
        return Command(cmd, ident, what=(what,))
    if cmd == "feedback":
        kind = data.get("kind")
        if kind not in FEEDBACK_KINDS:
            raise ValueError(f"kind: expected one of {list(FEEDBACK_KINDS)}, got {_brief(kind)}")
        return Command(cmd, ident, uri=_uri(data.get("uri")), kind=kind)
    if cmd == "played":
        return Command(cmd, ident, uri=_uri(data.get("uri")))
    return Command(cmd, ident)
