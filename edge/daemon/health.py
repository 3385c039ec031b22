"""Health and stats: the systemd notify protocol (``sd_notify`` over ``$NOTIFY_SOCKET``;
no dependency) and its watchdog, process metrics, and the ``…/stats`` payload."""

from __future__ import annotations

import importlib
import logging
import os
import platform
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from edge import __version__
from edge.daemon.base import SourceStatus, StageStats, Worker
from edge.publish.payloads import stats_payload

log = logging.getLogger(__name__)

MAX_SILENCE_S = 15.0  # a worker that has not beaten this long is stuck


def sd_notify(message: str, env: dict[str, str] | None = None) -> bool:
    """Send ``message`` (e.g. ``READY=1``) to systemd; False when not run by systemd."""
    addr = (os.environ if env is None else env).get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):  # abstract namespace
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(addr)
            s.sendall(message.encode())
        return True
    except OSError as exc:
        log.warning("sd_notify(%s) failed: %s", message.split("\n")[0], exc)
        return False


def watchdog_interval(env: dict[str, str] | None = None) -> float | None:
    """Half of systemd's ``WatchdogSec`` (seconds), or None when there is no watchdog."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.1, int(usec) / 2e6)
    except (ValueError, OverflowError):
        return None


def rss_bytes() -> int:
    """Resident set size now (Linux /proc; else the peak from getrusage)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class CpuMeter:
    """Process CPU time over wall time since the last call, in % of one core."""

    def __init__(self) -> None:
        self._last = (self._cpu(), time.monotonic())

    @staticmethod
    def _cpu() -> float:
        t = os.times()
        return t.user + t.system

    def percent(self) -> float:
        cpu, wall = self._cpu(), time.monotonic()
        (c0, w0), self._last = self._last, (cpu, wall)
        return round(100.0 * (cpu - c0) / max(wall - w0, 1e-6), 2)


def versions(interpreter: str | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {"moodedge": __version__, "python": platform.python_version()}
    for name, module in (("numpy", "numpy"), ("paho_mqtt", "paho.mqtt")):
        try:
            out[name] = importlib.import_module(module).__version__
        except (ImportError, AttributeError):
            out[name] = None
    out["interpreter"] = interpreter
    return out


class Health:
    """Whether every worker is alive and beating, and the ``…/stats`` payload."""

    def __init__(self, stats: Mapping[str, StageStats], status: SourceStatus) -> None:
        self.stats, self.status = stats, status
        self.workers: Sequence[Worker] = ()
        self.started = time.monotonic()
        self.cpu = CpuMeter()

    def healthy(self) -> bool:
        return bool(self.workers) and all(w.healthy(MAX_SILENCE_S) for w in self.workers)

    def failed(self) -> dict[str, str]:
        return {w.name: w.failed for w in self.workers if w.failed}

    def payload(self, interpreter: str | None, settings: Callable[[], dict[str, Any]],
                mqtt: dict[str, Any] | None) -> dict[str, Any]:
        """``settings()`` gives ``paused``, ``policy``, ``calibration``, ``playback`` and
        ``music_heard``."""
        return stats_payload(
            wall_ts=time.time(), uptime_s=time.monotonic() - self.started,
            cpu_percent=self.cpu.percent(), rss_bytes=rss_bytes(),
            threads=threading.active_count(), healthy=self.healthy(),
            stages={n: s.snapshot() for n, s in self.stats.items()},
            sources=self.status.snapshot(), **settings(), interpreter=interpreter,
            versions=versions(interpreter), mqtt=mqtt, failed=self.failed())
