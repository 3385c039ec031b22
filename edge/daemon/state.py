"""What commands change and a restart keeps: policy, target, privacy pauses.

:class:`State` is its one owner: the recommender reads the policy and target from it,
the sources read the pause events, the command handlers change it, and every change
is saved to ``state.json`` in the state directory.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.music.recommend import Policy
from edge.publish.commands import PAUSABLE

log = logging.getLogger(__name__)

STATE_FILE = "state.json"


@dataclass
class DaemonState:
    """The saved form of :class:`State`."""

    policy: Policy
    target: tuple[float, float] | None
    paused: set[str] = field(default_factory=set)

    def to_json(self) -> str:
        return json.dumps({"policy": self.policy.value,
                           "target": list(self.target) if self.target else None,
                           "paused": sorted(self.paused)})

    @classmethod
    def load(cls, path: Path, default: DaemonState) -> DaemonState:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            policy = Policy(data["policy"])
            target = data.get("target")
            target = (float(target[0]), float(target[1])) if target else None
            if target is not None and not all(-1.0 <= x <= 1.0 for x in target):  # NaN too
                raise ValueError(f"target {list(target)}: expected numbers in [-1, 1]")
            if policy is Policy.TARGET and target is None:
                raise ValueError("policy target without a target")
            paused = {p for p in data.get("paused", []) if p in PAUSABLE}
            return cls(policy, target, paused)
        except FileNotFoundError:
            return default
        except (OSError, ValueError, KeyError, TypeError, IndexError, OverflowError) as exc:
            log.warning("%s: ignoring unreadable state (%s)", path, exc)
            return default

    def save(self, path: Path) -> None:
        """Atomically, readable by the daemon's user only (0600; a directory it creates
        0700): the pauses say when someone is listened to."""
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), 0o600)  # a stale .tmp keeps its old mode otherwise
                f.write(self.to_json())
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("%s: cannot save state: %s", path, exc)


class State:
    """The live state, thread-safe; ``paused[modality]`` is an Event the stages read."""

    def __init__(self, path: Path, policy: Policy, target: tuple[float, float] | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._saved = DaemonState.load(path, DaemonState(policy, target))
        self.paused = {m: threading.Event() for m in PAUSABLE}
        self.playback: dict[str, Any] = {"state": "unknown", "since": None}
        # what the microphone hears (edge.audio.music_heard); None: not listening for it
        self.heard: dict[str, Any] | None = None
        for m in self._saved.paused:
            self.paused[m].set()

    @property
    def policy(self) -> Policy:
        return self._saved.policy

    @property
    def target(self) -> tuple[float, float] | None:
        return self._saved.target

    def set_playback(self, state: str, now: float) -> dict[str, Any]:
        """What the hub says its player is doing (not kept across restarts: a stale
        'playing' after a reboot would mute the voice for nothing)."""
        with self._lock:
            if state != self.playback["state"]:
                self.playback = {"state": state, "since": round(now, 3)}
                log.info("playback %s (from the hub)", state)
            return dict(self.playback)

    def set_heard(self, heard: bool, now: float) -> None:
        """Whether the microphone hears music (``heard`` stays None while not listening)."""
        with self._lock:
            if self.heard is None or heard != self.heard["heard"]:
                if self.heard is not None or heard:
                    log.info("music %s (microphone)", "heard" if heard else "no longer heard")
                self.heard = {"heard": heard, "since": round(now, 3)}

    def music_playing(self) -> bool:
        """Music in the room: the hub says its player plays, or the microphone hears it."""
        with self._lock:
            return self.playback["state"] == "playing" or bool(self.heard and self.heard["heard"])

    def paused_list(self) -> list[str]:
        return sorted(self._saved.paused)

    def set_policy(self, policy: Policy, target: tuple[float, float] | None) -> bool:
        """True (and saved) when this changes the policy or target."""
        with self._lock:
            s = self._saved
            if (policy, target) == (s.policy, s.target):
                return False
            s.policy, s.target = policy, target
            s.save(self.path)
            return True

    def pause(self, what: Sequence[str], pause: bool) -> dict[str, Any]:
        """Pause (or resume) the modalities ``what``: privacy, kept across restarts."""
        with self._lock:
            for w in what:
                (self.paused[w].set if pause else self.paused[w].clear)()
                (self._saved.paused.add if pause else self._saved.paused.discard)(w)
            self._saved.save(self.path)
            log.info("%s %s (privacy)", "paused" if pause else "resumed", ", ".join(what))
            return {"paused": self.paused_list()}
