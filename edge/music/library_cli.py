"""``edge-cli library scan|match`` and ``edge-cli playlist``: parsing and printing only."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from edge.manifest import ModelError
from edge.music.catalog import Catalog, CatalogError, default_db_path
from edge.music.cli import add_mood_args, policy_and_target
from edge.music.lexicon import LEXICON_FORMATS, import_lexicon, match_library
from edge.music.library import DEFAULT_URI_TEMPLATE, URI_FIELDS, ScanResult, check_uri_template, scan
from edge.music.playlist import location, write_m3u
from edge.music.recommend import Recommender
from edge.paths import path_arg


def add_commands(subparsers, add_db, positive) -> None:  # type: ignore[no-untyped-def]
    lib = subparsers.add_parser("library", help="the listener's own music files")
    lib_sub = lib.add_subparsers(dest="library_command", required=True)
    sc = lib_sub.add_parser("scan", help="scan folders of audio files into the catalogue",
                            description="Read tags, estimate valence/arousal with the music model "
                                        "and upsert each track; unchanged files are skipped.")
    sc.add_argument("paths", nargs="+", type=path_arg, help="folders or files")
    sc.add_argument("--workers", type=positive, default=2, help="decoding threads (default 2)")
    sc.add_argument("--json", action="store_true", help="one JSON line per track, then a summary")
    sc.add_argument("--model", type=path_arg, default=None, help="music .tflite (default: shipped)")
    sc.add_argument("--uri-template", default=DEFAULT_URI_TEMPLATE,
                    help=f"URI stored per track, over {{{'}, {'.join(URI_FIELDS)}}} (default "
                         f"{DEFAULT_URI_TEMPLATE}; e.g. 'media-source://jellyfin/{{mbid}}')")
    add_db(sc)
    sc.set_defaults(func=cmd_scan)
    ma = lib_sub.add_parser("match", help="give scanned tracks human-tagged lexicon coordinates")
    ma.add_argument("lexicon", help="an imported lexicon (muse, deezer) or a CSV file (with --format)")
    ma.add_argument("--format", choices=sorted(LEXICON_FORMATS), default=None,
                    help="the CSV's layout when LEXICON is a file (imported first)")
    add_db(ma)
    ma.set_defaults(func=cmd_match)

    pl = subparsers.add_parser("playlist", help="write an M3U playlist for a mood")
    add_mood_args(pl)
    pl.add_argument("-n", type=positive, default=10, help="how many tracks (default 10)")
    pl.add_argument("--m3u", type=path_arg, required=True, metavar="OUT", help="playlist file to write")
    add_db(pl)
    pl.set_defaults(func=cmd_playlist)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


class _Progress:
    """A one-line progress bar on a terminal (stderr); nothing elsewhere."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.on = sys.stderr.isatty()

    def __call__(self, done: int, todo: int) -> None:
        if not self.on:
            return
        rate = done / max(1e-6, time.monotonic() - self.t0)
        bar = "#" * int(30 * done / todo)
        print(f"\r[{bar:<30}] {done}/{todo} {rate:.1f} tracks/s", end="", file=sys.stderr, flush=True)


def cmd_scan(args: argparse.Namespace) -> int:
    db = args.db or default_db_path()
    for path in args.paths:  # a typo is not a scan with one failure: nothing is scanned
        if not Path(path).exists():
            return _fail(f"{path}: no such file or folder")
    try:  # before the catalogue is opened (or created)
        check_uri_template(args.uri_template)
    except CatalogError as e:
        return _fail(str(e))

    def line(r: ScanResult) -> None:
        print(json.dumps(r.to_json()), flush=True)

    progress = _Progress() if not args.json else None
    try:
        with Catalog(db) as catalog:
            s = scan(catalog, args.paths, workers=args.workers, model_path=args.model,
                     uri_template=args.uri_template, on_result=line if args.json else None,
                     on_progress=progress)
            total = len(catalog)
    except (CatalogError, ModelError, OSError) as e:
        return _fail(str(e))
    if progress and progress.on:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps({"summary": s.to_json(), "db": str(db), "tracks": total}))
    else:
        before = f" ({len(s.failed_before)} of them failed before)" if s.failed_before else ""
        print(f"scanned {s.scanned}, skipped {s.skipped} unchanged{before}, failed {len(s.failed)}, "
              f"ignored {s.ignored} non-audio; {total} tracks in {db}")
        for path, why in s.failed:
            print(f"  failed: {path}: {why}")
        for path, why in s.failed_before:
            print(f"  failed before, unchanged: {path}: {why}")
    if s.interrupted:
        print("interrupted: what was scanned is kept; run again to go on", file=sys.stderr)
        return 130
    return 0


def cmd_match(args: argparse.Namespace) -> int:
    db = args.db or default_db_path()
    source = args.lexicon
    try:
        with Catalog(db) as catalog:
            if args.format:
                n = import_lexicon(catalog, Path(args.lexicon), args.format)
                print(f"imported {n} {args.format} lexicon rows from {args.lexicon}")
                source = args.format
            elif source not in LEXICON_FORMATS:
                return _fail(f"{source!r}: expected an imported lexicon {sorted(LEXICON_FORMATS)}, "
                             "or a CSV file with --format")
            m = match_library(catalog, source)
    except (CatalogError, OSError) as e:
        return _fail(str(e))
    print(json.dumps({"lexicon": source, **m.to_json()}))
    return 0


def cmd_playlist(args: argparse.Namespace) -> int:
    try:
        policy, target = policy_and_target(args)
    except ValueError as e:
        return _fail(str(e))
    db = args.db or default_db_path()
    try:
        with Catalog(db) as catalog:
            recs = Recommender(catalog).recommend((args.valence, args.arousal), policy, args.n,
                                                  target=target, only=lambda t: location(t.uri) is not None)
    except (CatalogError, ValueError, OSError) as e:
        return _fail(str(e))
    if not recs:  # the playlist the user has stays as it is
        return _fail(f"{db}: no track in the catalogue has a location a player can open (a file:// "
                     "or http(s):// URI; the starter catalogue's are search terms): scan your music "
                     "first with `edge-cli library scan FOLDER`")
    try:
        written, left_out = write_m3u(args.m3u, [r.track for r in recs])
    except IsADirectoryError as e:
        return _fail(f"--m3u {e}")
    except OSError as e:
        return _fail(f"--m3u {args.m3u}: cannot write the playlist: {e.strerror or e}")
    note = f" ({left_out} without a playable location left out)" if left_out else ""
    print(f"wrote {written} tracks to {args.m3u}{note}")
    return 0 if written else 1
