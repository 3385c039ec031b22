"""Rate-limited logging for repeating errors: a new error is logged at once, its repeats
are counted and summarised at most once every ``every_s`` seconds, and the recovery says
how many there were.  A device that retries a missing microphone or an unreachable broker
for a week writes a few lines an hour, not a line per retry."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

EVERY_S = 60.0  # a repeating error is summarised at most once a minute
MAX_KINDS = 32  # a key's different reasons logged each at once; past these, only counted


@dataclass
class _Seen:
    kinds: set[str]  # every kind of failure logged for the key since it last worked
    logged_at: float
    repeats: int = 0  # since the last line
    total: int = 1


class RepeatLog:
    """``report(key, message)`` logs ``message`` the first time, and each message (or
    ``kind``) the key has not had since it last worked; one it has had is counted, and
    logged with its count once ``every_s`` has passed since the key's last line, so two
    reasons taking turns are two lines, not a line per retry.  ``clear(key, how)`` logs
    the recovery (with the count) if the key was failing.  Thread-safe."""

    def __init__(self, logger: logging.Logger, every_s: float = EVERY_S,
                 level: int = logging.WARNING, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.logger, self.every_s, self.level, self.clock = logger, every_s, level, clock
        self._lock = threading.Lock()
        self._seen: dict[str, _Seen] = {}

    def report(self, key: str, message: str, detail: str = "", kind: str | None = None
               ) -> bool:
        """Count one occurrence; True when a line was logged.  ``detail`` (e.g. the
        latest of many different errors) is shown but not compared; ``kind`` (the
        message when not given) is what is compared, for messages whose wording varies
        with the same cause."""
        now = self.clock()
        text = f"{message}: {detail}" if detail else message
        kind = message if kind is None else kind
        with self._lock:
            s = self._seen.get(key)
            if s is None:
                self._seen[key] = _Seen({kind}, now)
                line = text
            elif kind not in s.kinds and len(s.kinds) < MAX_KINDS:
                s.kinds.add(kind)
                s.total += 1
                s.repeats, s.logged_at = 0, now
                line = text
            else:
                s.total += 1
                s.repeats += 1
                if now - s.logged_at < self.every_s:
                    return False
                line = (f"{text} (repeated {s.repeats} time(s) in the last "
                        f"{now - s.logged_at:.0f} s, {s.total} in all)")
                s.repeats, s.logged_at = 0, now
        self.logger.log(self.level, "%s", line)
        return True

    def count(self, key: str) -> int:
        """How many times ``key`` failed since it was last cleared."""
        with self._lock:
            s = self._seen.get(key)
            return 0 if s is None else s.total

    def clear(self, key: str, how: str = "") -> None:
        """``key`` works again: forget it, and log ``how`` with the count if it was failing."""
        with self._lock:
            s = self._seen.pop(key, None)
        if s is not None and how:
            self.logger.info("%s (after %d failure(s))", how, s.total)
