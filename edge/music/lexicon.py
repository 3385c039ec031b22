"""Human-tagged A/V lexicons (MuSe, Deezer) and matching them to the scanned library.

Files the user downloads under their own licences; nothing of them ships.

- ``muse``: MuSe v3 (``muse_v3.csv``, Akiki & Burghardt 2021): ``track``, ``artist``,
  ``valence_tags``/``arousal_tags`` on Warriner's 1–9 scale (mapped to [-1, 1] by
  ``(x − 5) / 4``), ``mbid``, ``spotify_id``.
- ``deezer``: the Deezer mood-detection CSVs (Delbouys et al. 2018): ``artist_name``,
  ``track_name``, ``valence``/``arousal`` standardised (z-scores, mapped by
  ``clip(z / 2, −1, 1)``), ``dzr_sng_id``.

:func:`import_lexicon` validates the whole file first (a wrong header names the missing
columns) and replaces that source's rows in one transaction, so a bad file writes
nothing.  :func:`match_library` gives each scanned track the lexicon's coordinates where
its MusicBrainz recording id or its normalised artist+title (:func:`normalise`) match,
and records the source (``muse:mbid``, ``deezer:artist+title``); the catalogue's
``tracks`` then carry the human-tagged numbers, which the recommender uses.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from edge.music.catalog import (
    Catalog,
    CatalogError,
    csv_number,
    dict_reader,
    read_utf8,
    refuse_repeated_columns,
)
from edge.music.library import Library

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lexicon (
    source TEXT NOT NULL, key TEXT NOT NULL, mbid TEXT,
    artist TEXT NOT NULL, title TEXT NOT NULL, valence REAL NOT NULL, arousal REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS lexicon_key ON lexicon (source, key);
CREATE INDEX IF NOT EXISTS lexicon_mbid ON lexicon (source, mbid);
"""


@dataclass(frozen=True)
class LexiconFormat:
    artist: str
    title: str
    valence: str
    arousal: str
    mbid: str | None
    scale: str  # "warriner" (1..9) or "z" (standardised)


LEXICON_FORMATS: dict[str, LexiconFormat] = {
    "muse": LexiconFormat("artist", "track", "valence_tags", "arousal_tags", "mbid", "warriner"),
    "deezer": LexiconFormat("artist_name", "track_name", "valence", "arousal", None, "z"),
}

_FEAT = re.compile(r"\s*[\(\[]?\s*\b(feat|ft|featuring|with)\b\.?\s.*$", re.I)
_SUFFIX = re.compile(
    r"\s*(?:[\(\[][^\)\]]*\b(?:remaster(?:ed)?|live|mono|stereo|version|edit|mix|demo|deluxe)\b"
    r"[^\)\]]*[\)\]]|\s-\s.*\b(?:remaster(?:ed)?|live|mono|stereo|version|edit|mix|demo)\b.*)\s*$",
    re.I)


def normalise(text: str) -> str:
    """Case-, accent- and punctuation-free text without "feat." parts or remaster suffixes."""
    t = unicodedata.normalize("NFKD", text)
    t = "".join(c for c in t if not unicodedata.combining(c)).casefold().replace("&", " and ")
    for _ in range(2):
        t = _SUFFIX.sub("", _FEAT.sub("", t))
    t = re.sub(r"[^\w\s]|_", " ", t)
    t = " ".join(t.split())
    return t[4:] if t.startswith("the ") else t


def key(artist: str, title: str) -> str:
    return f"{normalise(artist)}\t{normalise(title)}"


def _scaled(raw: str | None, where: str, column: str, scale: str, decimal_comma: bool) -> float:
    x = csv_number(raw, where, column, decimal_comma)
    if scale == "warriner":
        if not 1.0 <= x <= 9.0:
            raise CatalogError(f"{where}, column {column!r}: {(raw or '').strip()} "
                               "is outside Warriner's [1, 9]")
        return (x - 5.0) / 4.0
    return max(-1.0, min(1.0, x / 2.0))


def parse_lexicon(path: Path, fmt: str) -> list[tuple[str, str | None, str, str, float, float]]:
    """Rows (key, mbid, artist, title, valence, arousal); CatalogError naming the problem."""
    if fmt not in LEXICON_FORMATS:
        raise CatalogError(f"unknown lexicon format {fmt!r}; choose one of {sorted(LEXICON_FORMATS)}")
    spec = LEXICON_FORMATS[fmt]
    text = read_utf8(Path(path))
    reader, comma = dict_reader(text)
    header = reader.fieldnames or []
    required = [spec.artist, spec.title, spec.valence, spec.arousal] + ([spec.mbid] if spec.mbid else [])
    missing = [c for c in required if c not in header]
    if missing:
        raise CatalogError(f"{path}: line 1: missing column(s) {missing} for --format {fmt}; "
                           f"the header has {list(header)}")
    refuse_repeated_columns(Path(path), list(header), required)
    rows = []
    for row in reader:
        where = f"{path}: line {reader.line_num}"
        artist, title = (row[spec.artist] or "").strip(), (row[spec.title] or "").strip()
        if not artist or not title:
            raise CatalogError(f"{where}: missing artist or title")
        v = _scaled(row[spec.valence], where, spec.valence, spec.scale, comma)
        a = _scaled(row[spec.arousal], where, spec.arousal, spec.scale, comma)
        mbid = ((row.get(spec.mbid) or "").strip().lower() or None) if spec.mbid else None
        rows.append((key(artist, title), mbid, artist, title, v, a))
    if not rows:
        raise CatalogError(f"{path}: no rows (the file has a header but no data)")
    return rows


def import_lexicon(catalog: Catalog, path: Path, fmt: str) -> int:
    """Replace the ``fmt`` lexicon with the file's rows (all or nothing); returns the count."""
    rows = parse_lexicon(path, fmt)
    db = catalog.db
    db.executescript(_SCHEMA)
    with db:
        db.execute("DELETE FROM lexicon WHERE source = ?", (fmt,))
        db.executemany("INSERT INTO lexicon VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [(fmt, *r) for r in rows])
    return len(rows)


@dataclass(frozen=True)
class MatchSummary:
    by_mbid: int
    by_name: int
    unmatched: int

    def to_json(self) -> dict:
        return {"matched_by_mbid": self.by_mbid, "matched_by_artist_title": self.by_name,
                "unmatched": self.unmatched}


def match_library(catalog: Catalog, source: str) -> MatchSummary:
    """Give scanned tracks the ``source`` lexicon's coordinates where MBID or name match."""
    db = catalog.db
    db.executescript(_SCHEMA)
    if not db.execute("SELECT 1 FROM lexicon WHERE source = ? LIMIT 1", (source,)).fetchone():
        raise CatalogError(f"no {source!r} lexicon in the catalogue; import it first "
                           f"(edge-cli catalog import --format {source} FILE)")
    lib = Library(catalog)
    by_mbid = by_name = unmatched = 0
    updates = []
    for row in lib.rows():
        hit, how = None, ""
        if row["mbid"]:
            hit = db.execute("SELECT valence, arousal FROM lexicon WHERE source = ? AND mbid = ?",
                             (source, row["mbid"].lower())).fetchone()
            how = "mbid"
        if hit is None:
            hit = db.execute("SELECT valence, arousal FROM lexicon WHERE source = ? AND key = ?",
                             (source, key(row["artist"] or "", row["title"] or ""))).fetchone()
            how = "artist+title"
        if hit is None:
            unmatched += 1
            continue
        by_mbid += how == "mbid"
        by_name += how == "artist+title"
        updates.append((hit[0], hit[1], f"{source}:{how}", row["path"], row["uri"]))
    with db:
        db.executemany("UPDATE library SET lexicon_valence = ?, lexicon_arousal = ?, "
                       "lexicon_source = ? WHERE path = ?", [u[:4] for u in updates])
        db.executemany("UPDATE tracks SET valence = ?, arousal = ? WHERE uri = ?",
                       [(u[0], u[1], u[4]) for u in updates])
    catalog.changed()
    return MatchSummary(by_mbid, by_name, unmatched)
