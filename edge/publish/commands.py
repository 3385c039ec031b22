"""The ``…/cmd`` topic's JSON commands, in one table.

Every command is a JSON object with ``"cmd"`` and, optionally, an ``"id"`` (string or
integer, echoed in the answer on ``…/events``).  :data:`COMMANDS` gives each command
its schema (its keys and a parser, without side effects), its handler, the thread the
handler runs on, and the line ``docs/daemon.md`` shows for it (checked by
``tests/test_commands_doc.py``).  :func:`parse_command` reads the schema; the daemon's
dispatcher (:mod:`edge.daemon.control`) runs the handler on its thread.  Adding a
command is one row here and one handler.

A handler is called as ``handler(ctx, command)`` with the daemon's :class:`Control`; it
returns the answer's ``result`` (or None when it answered itself) and raises ValueError
(CatalogError is one) for an answer with ``"ok": false``.

Unknown commands or keys, wrong types and out-of-range values are a
:class:`CommandError` whose message says what was expected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from edge.music.recommend import Policy
from edge.music.tracks import FEEDBACK_KINDS

MAX_PAYLOAD = 4096
PAUSABLE = ("audio", "camera")
PLAYBACK_STATES = ("playing", "paused", "idle")
#: Home Assistant's media_player states, as an automation forwards them, → ours
PLAYBACK_ALIASES = {"buffering": "playing", "off": "idle", "on": "idle", "standby": "idle",
                    "unavailable": "idle", "unknown": "idle"}
# where a handler runs: on the MQTT thread (quick, in memory), the main thread (file
# I/O, hand-over to the stages), or the recommender's thread (SQLite lives there)
NOW, MAIN, TRACKS = "mqtt", "main", "tracks"


class CommandError(ValueError):
    """A command that cannot be carried out; ``id``/``cmd`` are echoed when known."""

    def __init__(self, message: str, id: str | int | None = None, cmd: str | None = None):
        super().__init__(message)
        self.id = id
        self.cmd = cmd


# -- the schemas: each command's arguments --------------------------------------------


@dataclass(frozen=True)
class PolicyArgs:
    policy: Policy
    target: tuple[float, float] | None = None


@dataclass(frozen=True)
class PauseArgs:
    what: tuple[str, ...]


@dataclass(frozen=True)
class TrackArgs:
    uri: str
    kind: str | None = None


@dataclass(frozen=True)
class PlaybackArgs:
    state: str


@dataclass(frozen=True)
class Command:
    cmd: str
    id: str | int | None = None
    args: Any = None  # the command's schema object (None: no arguments)


def _unit(value: Any, name: str) -> float:
    # an int is compared as it is: math.isfinite(10**400) raises OverflowError
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (isinstance(value, float) and not math.isfinite(value))):
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


def _set_policy(data: dict[str, Any]) -> PolicyArgs:
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
    return PolicyArgs(policy, target)


def _set_target(data: dict[str, Any]) -> PolicyArgs:
    for key in ("valence", "arousal"):
        if key not in data:
            raise ValueError(f"{key}: missing (expected a number in [-1, 1])")
    return PolicyArgs(Policy.TARGET, (_unit(data["valence"], "valence"),
                                      _unit(data["arousal"], "arousal")))


def _what(data: dict[str, Any]) -> PauseArgs:
    what = data.get("what", "all")
    if what == "all":
        return PauseArgs(PAUSABLE)
    if what not in PAUSABLE:
        raise ValueError(f"what: expected one of {[*PAUSABLE, 'all']}, got {_brief(what)}")
    return PauseArgs((what,))


def _feedback(data: dict[str, Any]) -> TrackArgs:
    kind = data.get("kind")
    if kind not in FEEDBACK_KINDS:
        raise ValueError(f"kind: expected one of {list(FEEDBACK_KINDS)}, got {_brief(kind)}")
    return TrackArgs(_uri(data.get("uri")), kind)


def _played(data: dict[str, Any]) -> TrackArgs:
    return TrackArgs(_uri(data.get("uri")))


def _playback(data: dict[str, Any]) -> PlaybackArgs:
    state = data.get("state")
    said = state.strip().lower() if isinstance(state, str) else None
    said = PLAYBACK_ALIASES.get(said, said) if said is not None else None
    if said not in PLAYBACK_STATES:
        raise ValueError(f"state: expected one of {list(PLAYBACK_STATES)} (or a Home Assistant "
                         f"media_player state: {sorted(PLAYBACK_ALIASES)}), got {_brief(state)}")
    return PlaybackArgs(said)


def _none(data: dict[str, Any]) -> None:
    return None


# -- the handlers: what each command does, through the daemon's Control ---------------


class Control(Protocol):
    """What the handlers change (the daemon implements it)."""

    def pause(self, what: Sequence[str], pause: bool) -> dict[str, Any]: ...
    def status(self) -> dict[str, Any]: ...
    def reload_calibration(self, trigger: str, ident: Any) -> bool: ...
    def set_policy(self, policy: Policy, target: tuple[float, float] | None
                   ) -> dict[str, Any]: ...
    def feedback(self, uri: str, kind: str) -> None: ...
    def played(self, uri: str) -> None: ...
    def recommend_now(self) -> dict[str, Any]: ...
    def set_playback(self, state: str) -> dict[str, Any]: ...


def _on_pause(ctx: Control, c: Command) -> dict[str, Any]:
    return ctx.pause(c.args.what, True)


def _on_resume(ctx: Control, c: Command) -> dict[str, Any]:
    return ctx.pause(c.args.what, False)


def _on_status(ctx: Control, c: Command) -> dict[str, Any]:
    return ctx.status()


def _on_reload(ctx: Control, c: Command) -> None:
    ctx.reload_calibration("cmd", c.id)  # answers itself (SIGHUP shares the answer)


def _on_policy(ctx: Control, c: Command) -> dict[str, Any]:
    return ctx.set_policy(c.args.policy, c.args.target)


def _on_feedback(ctx: Control, c: Command) -> dict[str, Any]:
    ctx.feedback(c.args.uri, c.args.kind)
    return {"uri": c.args.uri, "kind": c.args.kind}


def _on_played(ctx: Control, c: Command) -> dict[str, Any]:
    ctx.played(c.args.uri)
    return {"uri": c.args.uri}


def _on_recommend(ctx: Control, c: Command) -> dict[str, Any]:
    return ctx.recommend_now()


def _on_playback(ctx: Control, c: Command) -> dict[str, Any]:
    return ctx.set_playback(c.args.state)


# -- the table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    keys: frozenset[str]  # the arguments it takes besides "cmd" and "id"
    parse: Callable[[dict[str, Any]], Any]  # data → its schema object; ValueError says why
    handler: Callable[[Control, Command], dict[str, Any] | None]
    thread: str  # NOW | MAIN | TRACKS
    example: str  # the line docs/daemon.md shows
    doc: str
    rate_limited: bool = False  # it adds rows on disk: the dispatcher's write rate applies


def _spec(keys: str, parse: Callable[[dict[str, Any]], Any], handler: Callable[..., Any],
          thread: str, example: dict[str, Any], doc: str, rate_limited: bool = False) -> Spec:
    return Spec(frozenset(keys.split()), parse, handler, thread,
                json.dumps(example, ensure_ascii=False), doc, rate_limited)


COMMANDS: dict[str, Spec] = {
    "set_policy": _spec("policy target", _set_policy, _on_policy, TRACKS,
                        {"cmd": "set_policy", "policy": "uplift"},
                        "match | uplift | calm | target (with [valence, arousal])"),
    "set_target": _spec("valence arousal", _set_target, _on_policy, TRACKS,
                        {"cmd": "set_target", "valence": 0.4, "arousal": -0.6},
                        'policy "target" toward that point'),
    "pause": _spec("what", _what, _on_pause, NOW, {"cmd": "pause", "what": "audio"},
                   "privacy: audio | camera | all"),
    "resume": _spec("what", _what, _on_resume, NOW, {"cmd": "resume", "what": "all"},
                    "audio | camera | all (default)"),
    "feedback": _spec("uri kind", _feedback, _on_feedback, TRACKS,
                      {"cmd": "feedback", "uri": "spotify:track:…", "kind": "like"},
                      "like | skip | dislike", rate_limited=True),
    "played": _spec("uri", _played, _on_played, TRACKS,
                    {"cmd": "played", "uri": "spotify:track:…"}, "a player started this track",
                    rate_limited=True),
    "recommend": _spec("", _none, _on_recommend, TRACKS, {"cmd": "recommend", "id": 1},
                       "new tracks now (or when the interval allows)"),
    "status": _spec("", _none, _on_status, NOW, {"cmd": "status"},
                    "sources, pauses, policy, calibration"),
    "reload_calibration": _spec("", _none, _on_reload, MAIN, {"cmd": "reload_calibration"},
                                "re-read calibration.json (like SIGHUP)"),
    "playback": _spec("state", _playback, _on_playback, NOW,
                      {"cmd": "playback", "state": "playing"},
                      "the hub's player: playing | paused | idle, or its media_player state "
                      "(voice weighs less while playing)"),
}


def doc_lines() -> list[str]:
    """The command list of docs/daemon.md: each command's example and what it does."""
    return [f"    {s.example:<56} {s.doc}" for s in COMMANDS.values()]


class _RepeatedKey(ValueError):
    pass


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object hook: a key given twice is ambiguous (json.loads keeps the last)."""
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _RepeatedKey(f"key {k!r} is given twice; which is meant cannot be told")
        out[k] = v
    return out


def parse_command(payload: bytes | str) -> Command:
    """Parse one ``cmd`` payload; raises :class:`CommandError` with a clear message."""
    if len(payload) > MAX_PAYLOAD:
        raise CommandError(f"payload too large ({len(payload)} bytes; at most {MAX_PAYLOAD})")
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        data = json.loads(text, object_pairs_hook=_no_repeated_keys)
    except _RepeatedKey as exc:
        raise CommandError(str(exc)) from None
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
    if not isinstance(cmd, str) or cmd not in COMMANDS:
        raise CommandError(f"cmd: expected one of {list(COMMANDS)}, got {_brief(cmd)}", ident)
    spec = COMMANDS[cmd]
    extra = sorted(set(data) - spec.keys - {"cmd", "id"})
    if extra:
        raise CommandError(f"{cmd}: unknown key(s) {extra}; expected "
                           f"{sorted(spec.keys) or 'no arguments'}", ident, cmd)
    try:
        return Command(cmd, ident, spec.parse(data))
    except (ValueError, OverflowError) as exc:  # OverflowError: a number beyond a float
        raise CommandError(f"{cmd}: {exc}", ident, cmd) from None
