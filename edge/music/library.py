"""The listener's own files: scan folders, read tags, place each track in A/V space.

:func:`scan` walks folders, reads tags (mutagen), decodes the middle excerpt
(:func:`edge.audio.sources.decode_excerpt`), runs the music-emotion model (:mod:`edge.music.emotion`) and
upserts the track into the catalogue with a ``file://`` URI (or the configured URI
template).  The ``library`` table beside the catalogue's ``tracks`` remembers, per
file, its size and mtime, the estimator that placed it (the model's sha256 and the A/V
mapping, :func:`estimator_id`: a rescan skips unchanged files placed by the same
estimator, failed ones too, and estimates again what an older model or mapping placed),
the tags, the model's estimate, lexicon coordinates and which source each number came
from.

Results are committed in small batches as they arrive, so an interrupted scan
(Ctrl-C) keeps what it finished and the next run goes on from there.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from edge.audio.sources import MUSIC_SUFFIXES, AudioFileError, decode_excerpt
from edge.music.catalog import Catalog, CatalogError, Track

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".wmv", ".flv")
SCAN_SUFFIXES = frozenset(MUSIC_SUFFIXES + VIDEO_SUFFIXES)
DEFAULT_URI_TEMPLATE = "{file_uri}"
URI_FIELDS = ("file_uri", "path", "mbid", "artist", "title", "album")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS library (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error TEXT,
    uri TEXT,
    artist TEXT, title TEXT, album TEXT, duration_s REAL, mbid TEXT,
    model_valence REAL, model_arousal REAL, quadrant TEXT, probabilities TEXT,
    lexicon_valence REAL, lexicon_arousal REAL, lexicon_source TEXT,
    scanned_at REAL NOT NULL,
    estimator TEXT
);
"""
_COLUMNS = ("path", "size", "mtime_ns", "status", "error", "uri", "artist", "title", "album",
            "duration_s", "mbid", "model_valence", "model_arousal", "quadrant", "probabilities",
            "lexicon_valence", "lexicon_arousal", "lexicon_source", "scanned_at", "estimator")


def estimator_id(model_path: Path | None) -> str:
    """What places a file: the music model's weights (its manifest's sha256) and the
    probabilities-to-A/V mapping (:data:`edge.music.emotion.VA_MAPPING`)."""
    from edge.manifest import load_manifest, manifest_path
    from edge.music import emotion
    from edge.runtime import default_models_dir

    path = Path(model_path) if model_path else default_models_dir() / emotion.DEFAULT_MODEL
    return f"{load_manifest(manifest_path(path)).sha256}:{emotion.VA_MAPPING}"


@dataclass(frozen=True)
class Tags:
    artist: str | None = None
    title: str | None = None
    album: str | None = None
    mbid: str | None = None  # MusicBrainz recording id (Picard's musicbrainz_trackid)


@dataclass(frozen=True)
class ScanResult:
    """One file's outcome: a placed track, or a failure with its reason."""

    path: str
    size: int
    mtime_ns: int
    error: str | None = None
    tags: Tags = field(default_factory=Tags)
    duration_s: float | None = None
    quadrant: str | None = None
    probabilities: dict[str, float] | None = None
    valence: float | None = None
    arousal: float | None = None
    uri: str | None = None

    def to_json(self) -> dict:
        if self.error is not None:
            return {"path": self.path, "status": "failed", "error": self.error}
        return {"path": self.path, "status": "ok", "uri": self.uri, "artist": self.tags.artist,
                "title": self.tags.title, "album": self.tags.album, "mbid": self.tags.mbid,
                "duration_s": None if self.duration_s is None else round(self.duration_s, 2),
                "quadrant": self.quadrant, "valence": round(self.valence or 0.0, 4),
                "arousal": round(self.arousal or 0.0, 4),
                "probabilities": {k: round(v, 4) for k, v in (self.probabilities or {}).items()}}


@dataclass
class ScanSummary:
    scanned: int = 0
    skipped: int = 0
    ignored: int = 0  # files that are not audio or video (covers, playlists, ...)
    failed: list[tuple[str, str]] = field(default_factory=list)
    # skipped files that failed in an earlier scan and have not changed since: still bad
    failed_before: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False

    def to_json(self) -> dict:
        return {"scanned": self.scanned, "skipped": self.skipped, "ignored": self.ignored,
                "failed": len(self.failed),
                "failures": [{"path": p, "error": e} for p, e in self.failed],
                "failed_before": [{"path": p, "error": e} for p, e in self.failed_before],
                "interrupted": self.interrupted}


def read_tags(path: Path) -> Tags:
    """Artist, title, album and MusicBrainz recording id; empty where the file has none."""
    import mutagen

    try:
        f = mutagen.File(str(path), easy=True)
    except Exception:  # mutagen raises many kinds on odd files; tags are optional
        return Tags()
    if f is None or not f.tags:
        return Tags()

    def first(key: str) -> str | None:
        try:
            values = f.tags.get(key)
        except (KeyError, ValueError):
            return None
        text = (values[0] if isinstance(values, list) and values else values) or ""
        return str(text).strip() or None

    return Tags(first("artist"), first("title"), first("album"), first("musicbrainz_trackid"))


def track_uri(template: str, path: Path, tags: Tags) -> str:
    """The URI a player gets: ``template`` over URI_FIELDS; ``file://`` when a field it
    needs (e.g. ``{mbid}``) is not known for this file."""
    values = {"file_uri": path.resolve().as_uri(), "path": str(path.resolve()),
              "mbid": tags.mbid, "artist": tags.artist, "title": tags.title, "album": tags.album}
    try:
        return template.format_map({k: v for k, v in values.items() if v})
    except KeyError:
        return values["file_uri"]


def check_uri_template(template: str) -> None:
    import string

    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    bad = [f for f in fields if f not in URI_FIELDS]
    if bad:
        raise CatalogError(f"URI template {template!r}: unknown field(s) {bad}; "
                           f"expected some of {list(URI_FIELDS)}")
    if not fields:  # the catalogue is keyed by URI: one track would stand for every file
        raise CatalogError(f"URI template {template!r} names no field, so every file would get "
                           f"the same URI and replace the one before; use some of {list(URI_FIELDS)} "
                           "(e.g. '{file_uri}')")


def walk(paths: list[Path]) -> Iterator[tuple[Path, os.stat_result | None]]:
    """(file, stat) for every file under ``paths`` (sorted per folder); a candidate
    suffix decides nothing here."""
    for root in paths:
        if root.is_file():
            yield root, root.stat()
            continue
        if not root.is_dir():
            yield root, None
            continue
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for e in reversed([e for e in entries if e.is_dir(follow_symlinks=False)]):
                stack.append(Path(e.path))
            for e in entries:
                if e.is_file():
                    yield Path(e.path), e.stat()


class Analyser:
    """Decode, tag and estimate one file; one model per worker thread."""

    def __init__(self, model_path: Path | None, uri_template: str) -> None:
        self._local = threading.local()
        self._model_path = model_path
        self.uri_template = uri_template
        self._first = self._model()  # fail early (missing model) before any file

    def _model(self):
        m = getattr(self._local, "model", None)
        if m is None:
            from edge.music.emotion import MusicEmotion

            m = self._local.model = MusicEmotion(self._model_path)
        return m

    def __call__(self, path: Path, size: int, mtime_ns: int) -> ScanResult:
        base = {"path": str(path), "size": size, "mtime_ns": mtime_ns}
        suffix = path.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            return ScanResult(**base, error=f"video file ({suffix[1:].upper()}): no audio decoder "
                                            "for video containers here; extract the audio first")
        model = self._model()
        p = model.params
        try:
            audio, duration = decode_excerpt(path, p.sample_rate, p.excerpt_s, p.min_s)
        except AudioFileError as e:
            return ScanResult(**base, error=e.problem)
        except OSError as e:
            return ScanResult(**base, error=f"unreadable ({e.strerror or e})")
        est = model.estimate(audio)
        tags = read_tags(path)
        tags = Tags(tags.artist or "Unknown artist", tags.title or path.stem, tags.album, tags.mbid)
        return ScanResult(**base, tags=tags, duration_s=duration, quadrant=est.quadrant,
                          probabilities=est.probabilities, valence=est.valence,
                          arousal=est.arousal, uri=track_uri(self.uri_template, path, tags))


class Library:
    """The ``library`` table in the catalogue file, written through a :class:`Catalog`."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.db = catalog._db
        self.db.executescript(_SCHEMA)
        have = {row[1] for row in self.db.execute("PRAGMA table_info(library)")}
        if "estimator" not in have:  # a catalogue from before rows recorded it
            with self.db:
                self.db.execute("ALTER TABLE library ADD COLUMN estimator TEXT")

    def known(self) -> dict[str, tuple[tuple[int, int, str | None], str | None]]:
        """path -> ((size, mtime_ns, estimator), the error it failed with or None) of every
        file scanned before."""
        return {p: ((s, m, e), err if status == "failed" else None) for p, s, m, e, status, err in
                self.db.execute("SELECT path, size, mtime_ns, estimator, status, error FROM library")}

    def store(self, results: list[ScanResult], estimator: str | None = None) -> None:
        """Upsert results (one transaction): failures in ``library`` only, tracks in both.

        Lexicon coordinates a file already has are kept, and win over the model's."""
        now = time.time()
        tracks: list[Track] = []
        with self.db:
            for r in results:
                row = self.db.execute("SELECT uri, lexicon_valence, lexicon_arousal, lexicon_source "
                                      "FROM library WHERE path = ?", (r.path,)).fetchone()
                old_uri, *lex = row if row else (None, None, None, None)
                if old_uri and old_uri != r.uri:
                    self.db.execute("DELETE FROM tracks WHERE uri = ?", (old_uri,))
                ok = r.error is None
                self.db.execute(
                    f"INSERT OR REPLACE INTO library ({', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_COLUMNS))})",
                    (r.path, r.size, r.mtime_ns, "ok" if ok else "failed", r.error, r.uri,
                     r.tags.artist, r.tags.title, r.tags.album, r.duration_s, r.tags.mbid,
                     r.valence, r.arousal, r.quadrant,
                     json.dumps(r.probabilities) if ok else None, *lex, now, estimator))
                if ok:
                    v, a = (lex[0], lex[1]) if lex[0] is not None else (r.valence, r.arousal)
                    tracks.append(Track(r.uri, r.tags.title or "", r.tags.artist or "", v, a,
                                        r.duration_s, None))
        if tracks:
            self.catalog.add_tracks(tracks)

    def rows(self) -> list[dict]:
        cur = self.db.execute("SELECT * FROM library WHERE status = 'ok' ORDER BY path")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur]


def scan(
    catalog: Catalog,
    paths: list[Path],
    *,
    workers: int = 2,
    model_path: Path | None = None,
    uri_template: str = DEFAULT_URI_TEMPLATE,
    on_result: Callable[[ScanResult], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    batch: int = 16,
) -> ScanSummary:
    """Scan ``paths`` into ``catalog``; a bad file is a listed failure, never an abort.

    ``on_result`` sees every new result; ``on_progress(done, todo)`` after each.
    KeyboardInterrupt stops the scan after committing what is done
    (``summary.interrupted``).
    """
    check_uri_template(uri_template)
    lib = Library(catalog)
    known = lib.known()
    estimator = estimator_id(model_path)
    summary = ScanSummary()
    todo: list[tuple[Path, int, int]] = []
    for path, st in walk(paths):
        if st is None:
            summary.failed.append((str(path), "not found"))
            continue
        if path.suffix.lower() not in SCAN_SUFFIXES:
            summary.ignored += 1
            continue
        seen, error = known.get(str(path), (None, None))
        if seen == (st.st_size, st.st_mtime_ns, estimator):
            summary.skipped += 1
            if error is not None:
                summary.failed_before.append((str(path), error))
            continue
        todo.append((path, st.st_size, st.st_mtime_ns))
    if not todo:
        return summary
    analyse = Analyser(model_path, uri_template)
    pending: list[ScanResult] = []

    def take(r: ScanResult) -> None:
        pending.append(r)
        if r.error is None:
            summary.scanned += 1
        else:
            summary.failed.append((r.path, r.error))
        if on_result:
            on_result(r)
        if len(pending) >= batch:
            lib.store(pending, estimator)
            pending.clear()
        if on_progress:
            on_progress(summary.scanned + len(summary.failed), len(todo))

    pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="scan")
    try:
        queue = iter(todo)
        running = set()
        for item in queue:
            running.add(pool.submit(analyse, *item))
            if len(running) >= 2 * max(1, workers):
                break
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                take(fut.result())
                nxt = next(queue, None)
                if nxt is not None:
                    running.add(pool.submit(analyse, *nxt))
    except KeyboardInterrupt:
        summary.interrupted = True
        for fut in running:
            fut.cancel()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if pending:
            lib.store(pending, estimator)
    return summary
