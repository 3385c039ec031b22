"""edge-cli: argument parsing and printing only; the work is done by the library."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from edge import __version__

log = logging.getLogger("edge.cli")

DEFAULT_SPEECH_MODEL = "speech_emotion.tflite"
DEFAULT_FACE_MODEL = "face_expression.tflite"


def _add_predict(sub) -> None:
    ap = sub.add_parser(
        "predict",
        help="recognise emotion in audio files and face images (folders are searched recursively)",
        description="Recognise the speaker's emotion in WAV/FLAC files and the facial expression "
                    "of the largest face in images (JPEG, PNG, ...), on this machine.",
    )
    ap.add_argument("paths", nargs="+", type=Path, help="audio files, images or folders")
    ap.add_argument("--json", action="store_true", help="one JSON object per file per line")
    ap.add_argument("--speech-model", type=Path, default=None,
                    help=f"speech .tflite (default: models_tflite/{DEFAULT_SPEECH_MODEL})")
    ap.add_argument("--vad-threshold-db", type=float, default=None,
                    help="frame level (dBFS, pre-emphasised) that counts as sound")
    ap.add_argument("--resample", action="store_true",
                    help="resample audio at other rates to the model's (default: such a file "
                         "is an error)")
    ap.add_argument("--face-model", type=Path, default=None,
                    help=f"face .tflite (default: models_tflite/{DEFAULT_FACE_MODEL})")
    ap.add_argument("--face-crops", action="store_true",
                    help="images are already aligned face crops (as in FER-2013): skip detection")
    ap.add_argument("--annotate", type=Path, default=None, metavar="OUT_DIR",
                    help="write each image with its face box and label drawn on it to OUT_DIR")
    ap.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from edge.predict import predict_paths

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


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edge-cli", description="MoodEdge on-device emotion and music")
    ap.add_argument("--version", action="version", version=f"moodedge {__version__}")
    ap.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_predict(sub)
    from edge.calibrate_cli import add_commands as add_calibrate
    from edge.music.cli import add_commands as add_music

    add_music(sub)
    add_calibrate(sub)
    from edge.daemon_cli import add_commands as add_daemon

    add_daemon(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
