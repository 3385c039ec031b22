"""Live or replayed time, injected into the stages instead of flags.

:class:`Clock` is the live one: an observation is stamped when it is read, sources run
at the device's pace, and a full queue drops.  :class:`Replay` is file input: in real
time (paced, stamped when read), or ``fast``, as fast as the pipeline takes it (a full
queue waits, observations are stamped with media time, and fusion's "now" follows the
newest observation, so a replayed run gives the same numbers however loaded the
machine is); ``loop`` replays the files forever.
"""

from __future__ import annotations

import threading
import time


class Pacer:
    """Waits so that media time ``t`` is reached at start + ``t`` (or never waits)."""

    def __init__(self, stop: threading.Event, realtime: bool) -> None:
        self.stop, self.realtime = stop, realtime
        self.start = time.monotonic()

    def wait(self, media_t: float) -> bool:
        """False when stopping."""
        if self.realtime:
            delay = self.start + media_t - time.monotonic()
            if delay > 0:
                return not self.stop.wait(delay)
        return not self.stop.is_set()


class Clock:
    """Live input."""

    files = False  # sources are files: their end is the end of input
    loop = False  # replay the files forever
    wait_for_room = False  # a full queue waits instead of dropping

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def stamp(self, media_s: float) -> float:
        """The timestamp of an observation at media time ``media_s`` of its source."""
        return time.monotonic()

    def now(self, latest_ts: float | None) -> float:
        """Fusion's present, given the newest observation's timestamp."""
        return time.monotonic()

    def pacer(self, stop: threading.Event) -> Pacer:
        """Paces one opening of a file source (live sources pace themselves)."""
        return Pacer(stop, realtime=False)


class Replay(Clock):
    """File input, in real time or ``fast``; ``loop`` forever."""

    files = True

    def __init__(self, fast: bool = False, loop: bool = False) -> None:
        super().__init__()
        self.fast, self.loop, self.wait_for_room = fast, loop, fast

    def stamp(self, media_s: float) -> float:
        return self.t0 + media_s if self.fast else time.monotonic()

    def now(self, latest_ts: float | None) -> float:
        return latest_ts if self.fast and latest_ts is not None else time.monotonic()

    def pacer(self, stop: threading.Event) -> Pacer:
        return Pacer(stop, realtime=not self.fast)
