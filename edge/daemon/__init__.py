"""The device daemon, by concern: :mod:`~edge.daemon.wiring` (the :class:`Daemon`: its
lifecycle and main loop), :mod:`~edge.daemon.pipeline` (the stages and their queues),
:mod:`~edge.daemon.clock` (live or replayed time), :mod:`~edge.daemon.sources`,
:mod:`~edge.daemon.stages` and :mod:`~edge.daemon.tracks` (the workers),
:mod:`~edge.daemon.control` (commands → handlers), :mod:`~edge.daemon.state` (what
commands change), :mod:`~edge.daemon.calibration` and :mod:`~edge.daemon.health`
(watchdog, sd_notify, stats)."""

from edge.daemon.calibration import Calibrated
from edge.daemon.health import sd_notify, watchdog_interval
from edge.daemon.pipeline import RunOptions
from edge.daemon.state import DaemonState
from edge.daemon.wiring import Daemon

__all__ = ["Calibrated", "Daemon", "DaemonState", "RunOptions", "sd_notify", "watchdog_interval"]
