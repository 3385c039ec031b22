"""edge-cli: argument parsing and printing only; the work is done by the library."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from edge import __version__
from edge.argtypes import number
from edge.paths import path_arg


def one_blas_thread() -> None:
    """One BLAS thread per process unless the user says otherwise; effective only before
    NumPy loads (building the parser loads it).  The feature path's matrices are small
    (a clip's frames by 257 bins by 40 bands), and OpenBLAS's threads (one per core by
    default) spin beside the scanner's and the daemon's workers: features cost 170 ms of
    CPU per scanned track with them and 40 ms without.  ``predict`` too: over the 360 RAVDESS
    test clips on the 2-core machine, 3.8 s with one thread against 4.7 s with two (medians
    of five, session 21; an earlier feature path had gained from two)."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


log = logging.getLogger("edge.cli")


def _add_predict(sub) -> None:
    from edge.runtime import resolve_model_path

    ap = sub.add_parser(
        "predict",
        help="recognise emotion in audio files and face images (folders are searched recursively)",
        description="Recognise the speaker's emotion in audio files (WAV, FLAC, Ogg/Opus) and the "
                    "facial expression of the largest face in images (JPEG, PNG, ...), on this machine.",
    )
    ap.add_argument("paths", nargs="+", type=path_arg, help="audio files, images or folders")
    ap.add_argument("--json", action="store_true", help="one JSON object per file per line")
    ap.add_argument("--speech-model", type=path_arg, default=None,
                    help=f"speech .tflite (default: {resolve_model_path('speech')})")
    ap.add_argument("--vad-threshold-db", type=number(-120.0, 0.0), default=None,
                    help="frame level (dBFS, pre-emphasised) that counts as sound")
    ap.add_argument("--resample", action="store_true",
                    help="resample audio at other rates to the model's (default: such a file "
                         "is an error)")
    ap.add_argument("--face-model", type=path_arg, default=None,
                    help=f"face .tflite (default: {resolve_model_path('face')})")
    ap.add_argument("--face-crops", action="store_true",
                    help="images are already aligned face crops (as in FER-2013): skip detection")
    ap.add_argument("--annotate", type=path_arg, default=None, metavar="OUT_DIR",
                    help="write each image with its face box and label drawn on it to OUT_DIR")
    ap.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from edge.predict import predict_paths

    if args.annotate is not None and args.annotate.exists() and not args.annotate.is_dir():
        print(f"error: --annotate {args.annotate}: is a file; expected a folder for the "
              "annotated images", file=sys.stderr)
        return 2
    failures = 0
    for item in predict_paths(args.paths, args.speech_model, args.vad_threshold_db,
                              args.face_model, args.face_crops, args.annotate,
                              args.resample):
        if item.error is not None:
            failures += 1
            print(f"error: {item.error}", file=sys.stderr)
            if args.json:
                print(json.dumps({"path": item.path, "error": item.error}), flush=True)
            continue
        if args.json:
            print(json.dumps(item.as_json()), flush=True)
        else:
            r = item.result
            face = hasattr(r, "faces")
            label = r.label or ("(no face)" if face else "(no speech)")
            va = "" if r.valence is None else f"  valence {r.valence:+.2f} arousal {r.arousal:+.2f}"
            faces = f"  faces {r.faces}" if face else ""
            print(f"{item.path}: {label}  confidence {r.confidence:.2f}{va}{faces}", flush=True)
    return 1 if failures else 0


def _add_doctor(sub) -> None:
    ap = sub.add_parser(
        "doctor", help="check the install: models, interpreter, microphone, camera, broker, ...",
        description="What is installed, found and reachable, one PASS/WARN/FAIL line each with "
                    "advice; every check is bounded in time. Exit code 1 if any check fails.")
    ap.add_argument("--config", type=path_arg, default=None,
                    help="the TOML config the daemon uses (e.g. /etc/moodedge/config.toml)")
    ap.add_argument("--json", action="store_true", help="one JSON object with every check")
    ap.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    import time
    from dataclasses import asdict

    from edge.doctor import failed, run_doctor

    start = time.monotonic()
    results = run_doctor(args.config)
    elapsed = round(time.monotonic() - start, 2)
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "warn", "fail")}
    if args.json:
        print(json.dumps({"ok": not failed(results), **counts, "elapsed_s": elapsed,
                          "checks": [asdict(r) for r in results]}), flush=True)
    else:
        for r in results:
            print(r.line())
        print(f"{counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail ({elapsed} s)")
    return 1 if failed(results) else 0


def _add_music(sub) -> None:
    from edge.music.cli import add_commands

    add_commands(sub)


def _add_calibrate(sub) -> None:
    from edge.calibrate_cli import add_commands

    add_commands(sub)


def _add_daemon(sub) -> None:
    from edge.daemon_cli import add_commands

    add_commands(sub)


#: the commands, in the order --help lists them, and what adds each group to the parser
COMMANDS = ((("predict",), _add_predict), (("doctor",), _add_doctor),
            (("catalog", "recommend", "library", "playlist"), _add_music),
            (("calibrate",), _add_calibrate), (("run", "listen", "config", "demo"), _add_daemon))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with a known ``command`` only its group is built (its modules alone are
    imported: `predict` starts without the daemon's, the catalogue's and calibration's)."""
    ap = argparse.ArgumentParser(prog="edge-cli", description="MoodEdge on-device emotion and music")
    ap.add_argument("--version", action="version", version=f"moodedge {__version__}")
    ap.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    known = any(command in names for names, _ in COMMANDS)
    for names, add in COMMANDS:
        if not known or command in names:
            add(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    one_blas_thread()
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
