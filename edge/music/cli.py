"""``edge-cli catalog import`` and ``edge-cli recommend`` (and, from
:mod:`edge.music.library_cli`, ``library scan|match`` and ``playlist``): parsing and printing only.

``edge.cli`` calls :func:`add_commands` with its argparse subparsers; each command
sets ``func`` to a handler ``(args) -> int`` (exit code).  Errors go to stderr with a
non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import sys

from edge.argtypes import number
from edge.music.catalog import FORMATS, Catalog, CatalogError, default_db_path
from edge.music.lexicon import LEXICON_FORMATS, import_lexicon
from edge.music.recommend import Policy, Recommender
from edge.paths import path_arg

_unit = number(-1.0, 1.0)
_positive = number(1, integer=True)


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=path_arg, default=None,
                   help="catalogue file (default: $MOODEDGE_STATE_DIR/catalogue.sqlite "
                        "or ~/.local/share/moodedge/catalogue.sqlite)")


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``catalog import`` and ``recommend`` to an argparse subparsers object."""
    cat = subparsers.add_parser("catalog", help="manage the music catalogue")
    cat_sub = cat.add_subparsers(dest="catalog_command", required=True)
    imp = cat_sub.add_parser("import", help="import tracks from a CSV file (all or nothing)")
    imp.add_argument("file", type=path_arg, help="CSV file")
    imp.add_argument("--format", choices=sorted([*FORMATS, *LEXICON_FORMATS]), default="generic",
                     help="column layout: spotify (valence/energy in [0,1], id), pmemo, "
                          "or generic (uri,title,artist,valence,arousal[,duration,genre] "
                          "in [-1,1]); default generic. muse (muse_v3.csv) and deezer (mood "
                          "detection CSVs) are lexicons for 'library match', not tracks")
    _add_db(imp)
    imp.set_defaults(func=cmd_import)

    rec = subparsers.add_parser("recommend", help="recommend tracks for a mood")
    add_mood_args(rec)
    rec.add_argument("-n", type=_positive, default=5, help="how many tracks (default 5)")
    rec.add_argument("--json", action="store_true", help="print JSON")
    _add_db(rec)
    rec.set_defaults(func=cmd_recommend)

    from edge.music.library_cli import add_commands as add_library

    add_library(subparsers, _add_db, _positive)


def add_mood_args(p: argparse.ArgumentParser) -> None:
    """The mood and where the music leads it: ``recommend``'s and ``playlist``'s options."""
    p.add_argument("--valence", type=_unit, required=True, help="current valence in [-1, 1]")
    p.add_argument("--arousal", type=_unit, required=True, help="current arousal in [-1, 1]")
    p.add_argument("--policy", choices=[p.value for p in Policy], default=None,
                   help="match (default), uplift, calm, or target (the default when a target is given)")
    p.add_argument("--target-valence", type=_unit, default=None, help="policy target: valence to lead to")
    p.add_argument("--target-arousal", type=_unit, default=None, help="policy target: arousal to lead to")


def policy_and_target(args: argparse.Namespace) -> tuple[str, tuple[float, float] | None]:
    """The policy and target point :func:`add_mood_args`' options ask for; ValueError
    naming the option when they do not fit together."""
    given = args.target_valence is not None, args.target_arousal is not None
    if any(given) and not all(given):
        raise ValueError("give both --target-valence and --target-arousal")
    target = (args.target_valence, args.target_arousal) if all(given) else None
    policy = args.policy or (Policy.TARGET.value if target else Policy.MATCH.value)
    if policy == Policy.TARGET.value and target is None:
        raise ValueError("--policy target needs --target-valence and --target-arousal")
    if target is not None and policy != Policy.TARGET.value:
        raise ValueError(f"--target-valence/--target-arousal apply to --policy target, not {policy!r}")
    return policy, target


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def cmd_import(args: argparse.Namespace) -> int:
    db = args.db or default_db_path()
    try:
        with Catalog(db) as catalog:
            if args.format in LEXICON_FORMATS:
                n = import_lexicon(catalog, args.file, args.format)
                print(f"imported {n} {args.format} lexicon rows from {args.file} into {db}; "
                      f"'edge-cli library match {args.format}' applies them to scanned tracks")
                return 0
            n = catalog.import_csv(args.file, args.format)
            total = len(catalog)
    except (CatalogError, OSError) as e:
        return _fail(str(e))
    print(f"imported {n} tracks from {args.file} into {db} ({total} tracks in all)")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    try:
        policy, target = policy_and_target(args)
    except ValueError as e:
        return _fail(str(e))
    db = args.db or default_db_path()
    try:
        with Catalog(db) as catalog:
            if len(catalog) == 0:
                n = catalog.ensure_tracks()
                print(f"note: {db} was empty; imported the starter catalogue ({n} tracks)",
                      file=sys.stderr)
            recs = Recommender(catalog).recommend(
                (args.valence, args.arousal), policy, args.n, target=target
            )
    except (CatalogError, ValueError, OSError) as e:
        return _fail(str(e))
    if args.json:
        print(json.dumps([r.to_dict() for r in recs], indent=2))
        return 0
    for i, r in enumerate(recs, 1):
        t, why = r.track, r.reason
        print(f"{i:2d}. {t.artist} - {t.title}  (v={t.valence:+.2f} a={t.arousal:+.2f})  "
              f"step {why['step']}/{why['steps']} d={why['distance']:.3f}  {t.uri}")
    return 0
