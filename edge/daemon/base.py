"""Building blocks of the pipeline: stage counters, dropping queues, source status,
worker threads with heartbeats, the end-of-input sentinel, and the publishing
interface the stages talk to."""

from __future__ import annotations

import logging
import queue
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from edge.lograte import RepeatLog

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where the stages' results go (MQTT in the daemon, a list in tests); ``topic`` is
    a name in :data:`edge.publish.topics.TOPICS`."""

    def publish(self, topic: str, payload: dict[str, Any]) -> None: ...


class _End:
    def __repr__(self) -> str:
        return "END"


#: End of input: a file source puts it on its queue when its files are done; each stage
#: passes it on, so fusion and the recommender know when everything before it is done.
END = _End()


class StageStats:
    """Counters and a window of recent per-item latencies for one stage."""

    def __init__(self, name: str, window: int = 256) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {"processed": 0, "dropped": 0}
        self._lat: deque[float] = deque(maxlen=window)

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + n

    def processed(self, seconds: float) -> None:
        with self._lock:
            self._counts["processed"] += 1
            self._lat.append(seconds)

    def get(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            lat = list(self._lat)
            out: dict[str, Any] = dict(self._counts)
        out["latency_ms_median"] = round(statistics.median(lat) * 1000, 3) if lat else None
        return out


class DropQueue:
    """A bounded queue: ``offer`` never blocks (a full queue drops the item and counts it);
    ``put_wait`` waits for room (for file sources run faster than real time)."""

    def __init__(self, maxsize: int, stats: StageStats) -> None:
        self._q: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self.stats = stats

    def offer(self, item: Any) -> bool:
        try:
            self._q.put_nowait(item)
            return True
        except queue.Full:
            self.stats.count("dropped")
            return False

    def put_wait(self, item: Any, stop: threading.Event) -> bool:
        while not stop.is_set():
            try:
                self._q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def push(self, item: Any, wait: bool, stop: threading.Event) -> bool:
        """``put_wait`` when ``wait`` (file input run fast) or for :data:`END` (never
        dropped), else ``offer``."""
        return self.put_wait(item, stop) if wait or item is END else self.offer(item)

    def get(self, timeout: float) -> Any | None:
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None


@dataclass
class SourceState:
    state: str  # running | starting | retrying | paused | absent | disabled | finished
    detail: str = ""
    since: float = 0.0
    retries: int = 0


class SourceStatus:
    """What each modality is doing, for ``…/stats`` and the logs.  A source that keeps
    failing is logged once and then counted (:class:`~edge.lograte.RepeatLog`: a line a
    minute with the count), never a line per retry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, SourceState] = {}
        self._failing = RepeatLog(log)

    def set(self, name: str, state: str, detail: str = "", retries: int = 0) -> None:
        with self._lock:
            old = self._states.get(name)
            same = old is not None and (old.state, old.detail) == (state, detail)
            if same:
                old.retries = retries
            else:
                self._states[name] = SourceState(state, detail, time.time(), retries)
        if state == "retrying":  # the reason without its changing "; retry in N s"
            self._failing.report(name, f"{name}: retrying ({detail.split('; retry in')[0]})")
            return
        if same:
            return
        failures = self._failing.count(name)
        self._failing.clear(name)
        level = logging.WARNING if state == "absent" and detail else logging.INFO
        log.log(level, "%s: %s%s%s", name, state, f" ({detail})" if detail else "",
                f" after {failures} failure(s)" if failures and state == "running" else "")

    def get(self, name: str) -> SourceState | None:
        with self._lock:
            s = self._states.get(name)
            return None if s is None else SourceState(**asdict(s))

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: {**asdict(v), "since": round(v.since, 3)} for k, v in self._states.items()}


def backoff(lo: float, hi: float) -> Iterator[float]:
    """lo, 2·lo, 4·lo, … capped at hi."""
    d = lo
    while True:
        yield d
        d = min(hi, d * 2)


class Worker(threading.Thread):
    """A pipeline stage: ``step()`` is called until stop; each call beats the heart.

    An exception escaping ``step`` is logged and the worker is marked failed, so the
    daemon stops feeding the systemd watchdog and is restarted.

    Other threads change a running worker's settings with :meth:`call_soon`: the call
    runs on the worker's own thread between items, so a stage never sees half an update.
    """

    def __init__(self, name: str, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.stop_event = stop
        self.heartbeat = time.monotonic()
        self.finished = False
        self.failed: str | None = None
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def beat(self) -> None:
        self.heartbeat = time.monotonic()

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` on this worker's thread before its next item (thread-safe)."""
        self._calls.put(fn)

    def run_pending(self) -> None:
        """Run the calls handed over with :meth:`call_soon` (on this worker's thread)."""
        while True:
            try:
                fn = self._calls.get_nowait()
            except queue.Empty:
                return
            fn()

    def run(self) -> None:
        try:
            self.setup()
            while not self.stop_event.is_set() and not self.finished:
                self.beat()
                self.run_pending()
                self.step()
        except Exception as exc:  # noqa: BLE001 - report, then let the watchdog act
            self.failed = f"{type(exc).__name__}: {exc}"
            log.exception("worker %s failed", self.name)
        finally:
            self.teardown()

    def setup(self) -> None:
        """Runs on the worker's own thread before the first step."""

    def step(self) -> None:
        raise NotImplementedError

    def teardown(self) -> None:
        """Runs on the worker's own thread after the last step."""

    def healthy(self, max_silence_s: float) -> bool:
        if self.failed:
            return False
        if self.finished:
            return True
        return self.is_alive() and time.monotonic() - self.heartbeat < max_silence_s
