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


def path_arg(text: str) -> Path:
    """An argparse ``type`` for file and folder arguments: an empty string (a script's unset
    variable, ``--audio-file "$FILE"``) is refused instead of becoming ``Path("")``, which
    is the current folder: a predict, scan or capture of whatever lies there."""
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file or folder, got an empty string")
    return Path(text)
