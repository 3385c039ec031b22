"""The on-device track catalogue: an embedded SQLite store plus CSV import.

Each track has a ``uri`` (what a player plays), ``title``, ``artist`` and a position
in arousal/valence space, ``valence`` and ``arousal`` in [-1, 1], with optional
``duration_s`` and ``genre``.  Plays and listener feedback live in the same file.

URI schemes the catalogue stores (they are opaque keys to it; the player decides):

- ``spotify:track:<id>``: a Spotify track (the Spotify-features CSV layout);
- ``file:///path/song.flac``, ``http(s)://…``: local files (``edge-cli library scan``,
  :mod:`edge.music.library`) and streams (generic CSV);
- ``search:<Artist> - <Title>[#<tag>]``: no playable URI is known; a player that can
  play by search text (e.g. Music Assistant's ``play_media`` with a Home Assistant
  media player) should search for the text between ``search:`` and ``#``.  The
  optional ``#<tag>`` keeps two source rows for the same song distinct (PMEmo has a
  few songs twice, e.g. ``#pmemo-90``).  :func:`search_text` extracts the text.

CSV import (:meth:`Catalog.import_csv`) is all-or-nothing: the whole file is parsed
and validated first, and written in one transaction, so a bad file leaves the
catalogue exactly as it was.  Errors name the file, line and column.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import re
import sqlite3
import string
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.music.tracks import (  # noqa: F401 - re-exported
    FEEDBACK_KINDS,
    CatalogError,
    CatalogSnapshot,
    Track,
)

log = logging.getLogger(__name__)

STARTER_CATALOGUE = Path(__file__).resolve().parent / "data" / "starter_catalogue.csv"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracks (
    uri TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    artist TEXT NOT NULL,
    valence REAL NOT NULL CHECK (valence BETWEEN -1 AND 1),
    arousal REAL NOT NULL CHECK (arousal BETWEEN -1 AND 1),
    duration_s REAL,
    genre TEXT
);
CREATE TABLE IF NOT EXISTS plays (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uri TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uri TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('like', 'skip', 'dislike')),
    ts REAL NOT NULL
);
"""


@dataclass(frozen=True)
class ColumnMapping:
    """How one CSV layout's columns become a :class:`Track`.

    ``uri`` is a ``str.format`` template over the row's columns (``"{uri}"``,
    ``"spotify:track:{id}"``).  With ``unit_scale`` the valence/arousal columns are in
    [0, 1] and are mapped to [-1, 1] by ``2x − 1``.  ``duration_scale`` converts the
    duration column to seconds (Spotify gives milliseconds).
    """

    uri: str
    title: str
    artist: str
    valence: str
    arousal: str
    unit_scale: bool = False
    duration: str | None = None
    duration_scale: float = 1.0
    genre: str | None = None

    def required_columns(self) -> list[str]:
        return [*_template_fields(self.uri), self.title, self.artist, self.valence, self.arousal]


def _template_fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


#: The CSV layouts ``import_csv`` knows by name.
FORMATS: dict[str, ColumnMapping] = {
    # Spotify audio features (e.g. data_moods.csv): energy is the arousal proxy.
    "spotify": ColumnMapping(
        uri="spotify:track:{id}", title="name", artist="artist", valence="valence",
        arousal="energy", unit_scale=True, duration="length", duration_scale=0.001,
    ),
    # PMEmo static annotations (pmemo_static_va.csv): mean human ratings in [0, 1].
    "pmemo": ColumnMapping(
        uri="search:{artist} - {title}#pmemo-{musicId}", title="title", artist="artist",
        valence="valence", arousal="arousal", unit_scale=True,
    ),
    # uri,title,artist,valence,arousal[,duration,genre] already in [-1, 1].
    "generic": ColumnMapping(
        uri="{uri}", title="title", artist="artist", valence="valence",
        arousal="arousal", duration="duration", genre="genre",
    ),
}


def search_uri(artist: str, title: str, tag: str | None = None) -> str:
    """``search:<artist> - <title>[#tag]`` for a track with no playable URI.

    The search text runs to the last ``#``, so a text that itself holds a ``#`` always
    gets a (possibly empty) tag.
    """
    text = f"{artist} - {title}"
    return f"search:{text}#{tag}" if tag or "#" in text else f"search:{text}"


def search_text(uri: str) -> str | None:
    """The search text of a ``search:`` URI (up to its last ``#``), else None."""
    if not uri.startswith("search:"):
        return None
    return uri[len("search:"):].rsplit("#", 1)[0]

def default_db_path(env: Mapping[str, str] | None = None) -> Path:
    """``catalogue.sqlite`` in the state directory (see edge.paths.default_state_dir)."""
    from edge.paths import default_state_dir

    return default_state_dir(env) / "catalogue.sqlite"


def read_utf8(path: Path) -> str:
    """The text of a UTF-8 CSV; CatalogError naming line and column of a bad byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        start = data.rfind(b"\n", 0, e.start) + 1
        prefix = data[start:e.start].decode("utf-8", "replace")
        field_no = len(next(csv.reader([prefix]))) - 1 if prefix else 0
        header = next(csv.reader([data.split(b"\n", 1)[0].decode("utf-8", "replace")]), [])
        column = repr(header[field_no]) if line > 1 and field_no < len(header) else field_no + 1
        raise CatalogError(
            f"{path}: line {line}, column {column} (byte {e.start - start + 1}): not valid "
            f"UTF-8 (byte 0x{data[e.start]:02x}); save the file as UTF-8"
        ) from None


#: Field separators a CSV header may use: the comma, and the semicolon or tab that
#: spreadsheet programs write where the comma is the decimal sign (LibreOffice, Excel
#: in most of Europe).
DELIMITERS = (",", ";", "\t")
_DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+(?:[eE][-+]?\d+)?")


def dict_reader(text: str) -> tuple[csv.DictReader, bool]:
    """A DictReader over ``text`` split by its header line's separator (the one that gives
    that line the most fields; the comma on a tie), and whether numbers may be written
    with a decimal comma (any separator but the comma)."""
    first = text.split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=lambda d: (len(next(csv.reader([first], delimiter=d))), d == ","))
    return csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter), delimiter != ","


def csv_number(raw: str | None, where: str, column: str, decimal_comma: bool = False) -> float:
    """A CSV field as a finite number (``0,5`` too when ``decimal_comma``); CatalogError
    naming the line and column otherwise."""
    text = (raw or "").strip()
    if decimal_comma and _DECIMAL_COMMA.fullmatch(text):
        text = text.replace(",", ".")
    try:
        x = float(text)
    except ValueError:
        raise CatalogError(f"{where}, column {column!r}: {text!r} is not a number") from None
    if not math.isfinite(x):
        raise CatalogError(f"{where}, column {column!r}: {text} is not a finite number")
    return x


def _number(raw: str | None, where: str, column: str, lo: float, hi: float, *,
            optional: bool = False, decimal_comma: bool = False) -> float | None:
    text = (raw or "").strip()
    if not text:
        if optional:
            return None
        raise CatalogError(f"{where}, column {column!r}: missing value")
    x = csv_number(text, where, column, decimal_comma)
    if not lo <= x <= hi:
        raise CatalogError(f"{where}, column {column!r}: {text} is outside [{lo:g}, {hi:g}]")
    return x


def refuse_repeated_columns(path: Path, header: list[str], used: list[str]) -> None:
    """A column the layout reads that the header names more than once is ambiguous (a
    csv.DictReader row keeps the last one's value): refuse it."""
    for column in dict.fromkeys(used):
        n = header.count(column)
        if n > 1:
            raise CatalogError(f"{path}: line 1: column {column!r} is in the header {n} times; "
                               "keep one (which is meant cannot be told)")


def parse_csv(path: str | Path, mapping: ColumnMapping) -> list[Track]:
    """Read and validate every row of a CSV file; :class:`CatalogError` on the first problem."""
    path = Path(path)
    text = read_utf8(path)
    if not text.strip():
        raise CatalogError(f"{path}: the file is empty (no header, no tracks)")
    reader, comma = dict_reader(text)
    header = reader.fieldnames or []
    missing = [c for c in mapping.required_columns() if c not in header]
    if missing:
        fits = [n for n, m in FORMATS.items() if all(c in header for c in m.required_columns())]
        hint = f" (it looks like --format {fits[0]})" if fits else ""
        raise CatalogError(
            f"{path}: line 1: missing column(s) {missing}; the header has {list(header)}{hint}"
        )
    refuse_repeated_columns(path, list(header), [*mapping.required_columns(),
                                                 *filter(None, (mapping.duration, mapping.genre))])
    lo = 0.0 if mapping.unit_scale else -1.0
    uri_cols = _template_fields(mapping.uri)
    tracks: list[Track] = []
    seen: dict[str, int] = {}
    for row in reader:
        where = f"{path}: line {reader.line_num}"
        if None in row:
            raise CatalogError(f"{where}: more fields than the header has columns")
        v = _number(row.get(mapping.valence), where, mapping.valence, lo, 1.0, decimal_comma=comma)
        a = _number(row.get(mapping.arousal), where, mapping.arousal, lo, 1.0, decimal_comma=comma)
        assert v is not None and a is not None
        if mapping.unit_scale:
            v, a = 2.0 * v - 1.0, 2.0 * a - 1.0
        for col in uri_cols:
            if not (row.get(col) or "").strip():
                raise CatalogError(f"{where}, column {col!r}: missing value (needed for the URI)")
        uri = mapping.uri.format_map({k: (val or "").strip() for k, val in row.items()})
        if uri in seen:
            raise CatalogError(
                f"{where}, column {'/'.join(uri_cols)!r}: duplicate URI {uri!r} "
                f"(first on line {seen[uri]})"
            )
        seen[uri] = reader.line_num
        duration = None
        if mapping.duration and mapping.duration in header:
            duration = _number(row.get(mapping.duration), where, mapping.duration, 0.0, math.inf,
                               optional=True, decimal_comma=comma)
            duration = None if duration is None else duration * mapping.duration_scale
        genre = ((row.get(mapping.genre) or "").strip() or None) if mapping.genre else None
        tracks.append(Track(uri, (row[mapping.title] or "").strip(),
                            (row[mapping.artist] or "").strip(), v, a, duration, genre))
    if not tracks:
        raise CatalogError(f"{path}: no tracks (the file has a header but no rows)")
    return tracks


#: The history kept (newest rows; older ones deleted as new ones come): plays feed the
#: no-repeat and artist windows (tens of rows), feedback the ranking.  Bounded so a client
#: flooding ``played``/``feedback`` cannot fill the SD card: at most ~1 kB a play row
#: (a URI is at most 1024 characters) and ~100 B a feedback row (catalogued URIs only),
#: about 2 MB in all; SQLite reuses the freed pages, so the file stops growing.
MAX_PLAYS = 1000
MAX_FEEDBACK = 10_000

#: Value of one feedback event for ranking: likes pull, skips and dislikes push.
FEEDBACK_VALUE: dict[str, float] = {"like": 1.0, "skip": -0.5, "dislike": -1.5}


def _private_file(path: Path) -> None:
    """The catalogue holds the play and feedback history: readable by its owner only
    (created 0600, in a directory created 0700; an existing one loses group/other
    access).  SQLite gives its journal the database's mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # an empty file is a new db
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
    except OSError as exc:  # read-only file or another owner's: sqlite reports what matters
        log.warning("%s: cannot make it private to its owner: %s", path, exc)


class Catalog:
    """A SQLite-backed catalogue.  ``Catalog(":memory:")`` works for tests.

    The A/V arrays are loaded once into a :class:`CatalogSnapshot` and cached until
    an import or feedback changes them.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            if Path(self.path).is_dir():
                raise CatalogError(f"{self.path}: is a folder; expected the catalogue's file "
                                   "(a SQLite file made by edge-cli, or a new path)")
            _private_file(Path(self.path))
        self._db = sqlite3.connect(self.path)
        try:
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:  # not a database, or one that cannot be written
            self._db.close()
            raise CatalogError(f"{self.path}: cannot open it as the catalogue ({exc}); expected "
                               "a SQLite file made by edge-cli, or a new path") from exc
        self._version = 0
        self._snapshot: CatalogSnapshot | None = None
        self._data_version = -1

    # -- lifecycle -------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        """The SQLite connection (the library and lexicon tables live in the same file)."""
        return self._db

    def changed(self) -> None:
        """Invalidate the snapshot after tracks or feedback changed."""
        self._version += 1
        self._snapshot = None

    # -- tracks ----------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM tracks").fetchone()[0])

    def add_tracks(self, tracks: Iterable[Track]) -> int:
        """Insert or replace tracks (by URI) in one transaction; returns how many."""
        rows = [(t.uri, t.title, t.artist, float(t.valence), float(t.arousal),
                 t.duration_s, t.genre) for t in tracks]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO tracks VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        self.changed()
        return len(rows)

    def import_csv(self, path: str | Path, fmt: str | ColumnMapping = "generic") -> int:
        """Import a CSV in a named layout (``FORMATS``) or a :class:`ColumnMapping`.

        All-or-nothing; tracks whose URI is already in the catalogue are replaced.
        Returns the number of tracks imported.
        """
        if isinstance(fmt, str):
            if fmt not in FORMATS:
                raise CatalogError(f"unknown format {fmt!r}; choose one of {sorted(FORMATS)}")
            fmt = FORMATS[fmt]
        n = self.add_tracks(parse_csv(path, fmt))
        log.info("imported %d tracks from %s", n, path)
        return n

    def ensure_tracks(self, starter: str | Path = STARTER_CATALOGUE) -> int:
        """Import the starter catalogue if the catalogue is empty; returns the track count."""
        if len(self) == 0:
            self.import_csv(starter, "generic")
        return len(self)

    def get(self, uri: str) -> Track | None:
        row = self._db.execute("SELECT * FROM tracks WHERE uri = ?", (uri,)).fetchone()
        return Track(*row) if row else None

    def tracks(self) -> list[Track]:
        return [Track(*r) for r in self._db.execute("SELECT * FROM tracks ORDER BY uri")]

    def snapshot(self) -> CatalogSnapshot:
        """Cached arrays of every track; rebuilt after an import or new feedback, here or
        by another process (``edge-cli library scan`` or ``catalog import`` while the
        daemon runs: SQLite's ``data_version`` moves when another connection commits)."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self.changed()
        if self._snapshot is None:
            self._snapshot, self._data_version = self._build_snapshot(), version
        return self._snapshot

    def _build_snapshot(self) -> CatalogSnapshot:
        tracks = tuple(self.tracks())
        n = len(tracks)
        va = np.array([(t.valence, t.arousal) for t in tracks], dtype=np.float64).reshape(n, 2)
        artist_index: dict[str, int] = {}
        artist_ids = np.array(
            [artist_index.setdefault(t.artist.casefold(), len(artist_index)) for t in tracks],
            dtype=np.int64,
        )
        index = {t.uri: i for i, t in enumerate(tracks)}
        feedback = np.zeros(n, dtype=np.float64)
        for uri, kind, count in self._db.execute(
            "SELECT uri, kind, COUNT(*) FROM feedback GROUP BY uri, kind"
        ):
            if uri in index:
                feedback[index[uri]] += FEEDBACK_VALUE[kind] * count
        v, a = np.ascontiguousarray(va[:, 0]), np.ascontiguousarray(va[:, 1])
        return CatalogSnapshot(self._version, tracks, va, v, a, artist_ids, feedback, index)

    # -- plays and feedback ----------------------------------------------------
    def record_play(self, uri: str, ts: float | None = None) -> None:
        """Remember that ``uri`` was played (for the no-repeat window)."""
        with self._db:
            cur = self._db.execute("INSERT INTO plays (uri, ts) VALUES (?, ?)",
                                   (uri, time.time() if ts is None else float(ts)))
            self._db.execute("DELETE FROM plays WHERE id <= ?", (cur.lastrowid - MAX_PLAYS,))

    def recent_plays(self, limit: int) -> list[str]:
        """URIs of the last ``limit`` plays, newest first (repeats included)."""
        if limit <= 0:
            return []
        rows = self._db.execute("SELECT uri FROM plays ORDER BY id DESC LIMIT ?", (int(limit),))
        return [r[0] for r in rows]

    def record_feedback(self, uri: str, kind: str, ts: float | None = None) -> None:
        """Store ``like``/``skip``/``dislike`` for a catalogued track."""
        if kind not in FEEDBACK_KINDS:
            raise CatalogError(f"unknown feedback {kind!r}; choose one of {list(FEEDBACK_KINDS)}")
        if self.get(uri) is None:
            raise CatalogError(f"feedback for unknown track {uri!r}")
        with self._db:
            cur = self._db.execute("INSERT INTO feedback (uri, kind, ts) VALUES (?, ?, ?)",
                                   (uri, kind, time.time() if ts is None else float(ts)))
            self._db.execute("DELETE FROM feedback WHERE id <= ?",
                             (cur.lastrowid - MAX_FEEDBACK,))
        self.changed()

    def feedback_counts(self, uri: str) -> dict[str, int]:
        rows = self._db.execute("SELECT kind, COUNT(*) FROM feedback WHERE uri = ? GROUP BY kind", (uri,))
        return {k: int(c) for k, c in rows}

