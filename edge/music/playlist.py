"""M3U playlists of recommended tracks, for players that read playlists.

Extended M3U (UTF-8, ``#EXTM3U``): one ``#EXTINF:<seconds>,<artist> - <title>`` line and
one location per track.  A ``file://`` URI is written as its local path (what every
player reads), ``http(s)://`` as it is; tracks with other URIs (``search:``,
``spotify:``) have no location a playlist player can open and are left out (counted).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from edge.music.catalog import Track


def location(uri: str) -> str | None:
    """What an M3U line holds for ``uri``; None when a playlist player cannot open it."""
    u = urlparse(uri)
    if u.scheme == "file":
        return unquote(u.path)
    if u.scheme in ("http", "https"):
        return uri
    return None


def m3u_text(tracks: Sequence[Track]) -> tuple[str, int]:
    """(playlist text, number of tracks left out for want of a location)."""
    lines = ["#EXTM3U"]
    left_out = 0
    for t in tracks:
        loc = location(t.uri)
        if loc is None:
            left_out += 1
            continue
        seconds = -1 if t.duration_s is None else int(round(t.duration_s))
        name = f"{t.artist} - {t.title}".replace("\n", " ")
        lines += [f"#EXTINF:{seconds},{name}", loc]
    return "\n".join(lines) + "\n", left_out


def _umask() -> int:
    """The process's umask, read without changing it (Linux), else the usual 022."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def write_m3u(path: Path, tracks: Sequence[Track]) -> tuple[int, int]:
    """Write the playlist atomically; returns (tracks written, tracks left out).  The
    file gets the mode a plain write would give it (an existing playlist's, else the
    umask's), so that a player running as another user can read it; missing parent
    folders are made.  IsADirectoryError when ``path`` is a folder."""
    text, left_out = m3u_text(tracks)
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; expected the playlist's file name")
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            os.fchmod(f.fileno(), mode)  # mkstemp's file is 0600: a playlist is for players
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(tracks) - left_out, left_out
