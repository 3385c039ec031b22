"""M3U playlists of recommended tracks, for players that read playlists.

Extended M3U (UTF-8, ``#EXTM3U``): one ``#EXTINF:<seconds>,<artist> - <title>`` line and
one location per track.  A ``file://`` URI is written as its local path (what every
player reads), ``http(s)://`` as it is; tracks with other URIs (``search:``,
``spotify:``) have no location a playlist player can open and are left out (counted).
"""

from __future__ import annotations

import os
import secrets
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
        mode: int | None = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = None  # a new file: 0666 less the umask, as a plain write (not mkstemp's 0600)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(tracks) - left_out, left_out
