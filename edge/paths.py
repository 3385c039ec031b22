"""Where the device keeps its state (catalogue, calibration)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$MOODEDGE_STATE_DIR``; else systemd's ``$STATE_DIRECTORY`` (/var/lib/moodedge under
    the unit's StateDirectory=); else ``~/.local/share/moodedge``."""
    env = os.environ if env is None else env
    for key in ("MOODEDGE_STATE_DIR", "STATE_DIRECTORY"):
        if env.get(key):
            return Path(env[key].split(":")[0])
    return Path.home() / ".local" / "share" / "moodedge"
