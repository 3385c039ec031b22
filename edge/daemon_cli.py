"""``edge-cli run | listen | config | demo``: argument parsing and printing only.

``edge.cli`` calls :func:`add_commands` with its argparse subparsers; each command sets
``func`` to a handler ``(args) -> int`` (the exit code).
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import signal
import sys
import time
from pathlib import Path
from typing import Any

from edge.argtypes import number
from edge.config import EXAMPLE, ConfigError, load_config
from edge.paths import path_arg

log = logging.getLogger("edge.daemon_cli")


def _add_broker_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=path_arg, default=None,
                   help="TOML config file (default: built-in defaults; see edge-cli config example)")
    p.add_argument("--mqtt-host", default=None, help="broker host (overrides mqtt.host)")
    p.add_argument("--mqtt-port", type=number(1, 65535, integer=True), default=None,
                   help="broker port (overrides mqtt.port)")
    p.add_argument("--device-id", default=None, help="overrides mqtt.device_id")
    p.add_argument("--topic-prefix", default=None, help="overrides mqtt.topic_prefix")


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser(
        "run", help="run the device daemon (microphone + camera → MQTT)",
        description="The MoodEdge daemon: listens and looks, publishes mood and music over "
                    "MQTT until SIGTERM.  With no --config: microphone + camera, broker on "
                    "localhost:1883.  With file inputs, only the files are used.")
    _add_broker_overrides(run)
    run.add_argument("--audio-file", type=path_arg, action="append", default=[], metavar="PATH",
                     help="audio file (WAV, FLAC, Ogg/Opus) or folder instead of the microphone (repeatable)")
    run.add_argument("--image-dir", type=path_arg, default=None,
                     help="folder of images instead of the camera (at camera.fps)")
    run.add_argument("--video-file", type=path_arg, default=None,
                     help="video file instead of the camera (needs OpenCV)")
    run.add_argument("--fast", action="store_true",
                     help="read files as fast as the pipeline goes, not in real time")
    run.add_argument("--loop", action="store_true", help="replay the files forever")
    run.add_argument("--exit-when-done", action="store_true",
                     help="exit once the files are processed and the results published")
    run.set_defaults(func=cmd_run)

    listen = sub.add_parser("listen", help="print the device's MQTT topics as a subscriber sees them")
    _add_broker_overrides(listen)
    listen.add_argument("--discovery", action="store_true",
                        help="also the Home Assistant discovery message")
    listen.add_argument("--json", action="store_true", help="one JSON object per message")
    listen.add_argument("--count", type=number(0, integer=True), default=0,
                        help="stop after N messages (default 0: no limit)")
    listen.add_argument("--timeout", type=number(0.0), default=0.0,
                        help="stop after S seconds (default 0: until Ctrl-C)")
    listen.set_defaults(func=cmd_listen)

    config = sub.add_parser("config", help="check a config file, or print an example")
    csub = config.add_subparsers(dest="config_command", required=True)
    check = csub.add_parser("check", help="validate a TOML config file")
    check.add_argument("file", type=path_arg)
    check.set_defaults(func=cmd_config_check)
    example = csub.add_parser("example", help="print a commented example config (the defaults)")
    example.set_defaults(func=cmd_config_example)

    demo = sub.add_parser(
        "demo", help="see it work: private broker + daemon over demo media + a subscriber",
        description="Starts a private Mosquitto on a free loopback port, runs the daemon over "
                    "the demo clips (or your files), prints what a subscriber receives, and "
                    "stops everything.  Needs the mosquitto binary.")
    demo.add_argument("--audio-file", type=path_arg, action="append", default=[], metavar="PATH",
                      help="your own audio file (WAV, FLAC, Ogg/Opus) or folder (repeatable)")
    demo.add_argument("--image-dir", type=path_arg, default=None, help="your own images")
    demo.add_argument("--video-file", type=path_arg, default=None, help="your own video")
    demo.add_argument("--speech-model", type=path_arg, default=None,
                      help="a speech .tflite (with its .json) instead of the shipped one")
    demo.add_argument("--fast", action="store_true", help="do not pace the files in real time")
    demo.add_argument("--raw", action="store_true", help="print payloads as received")
    demo.add_argument("--timeout", type=number(0.0, above=True), default=120.0,
                      help="give up after S seconds")
    demo.set_defaults(func=cmd_demo)


def _config(args: argparse.Namespace):
    return load_config(args.config, {
        "mqtt.host": args.mqtt_host, "mqtt.port": args.mqtt_port,
        "mqtt.device_id": args.device_id, "mqtt.topic_prefix": args.topic_prefix,
    })


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def cmd_run(args: argparse.Namespace) -> int:
    # SIGHUP (reload) before the daemon's handlers exist must not kill it: ignored until
    # Daemon.run installs them (the calibration is read at start anyway)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from edge.audio.sources import AUDIO_SUFFIXES, iter_audio_files
    from edge.daemon import Daemon, RunOptions

    if args.verbose == 0:  # a daemon says what it does: INFO to stderr (the journal)
        logging.getLogger().setLevel(logging.INFO)
    try:
        cfg = _config(args)
    except ConfigError as exc:
        return _fail(str(exc))
    file_options = [o for o, on in (("--fast", args.fast), ("--loop", args.loop),
                                     ("--exit-when-done", args.exit_when_done)) if on]
    if file_options and not (args.audio_file or args.image_dir or args.video_file):
        return _fail(f"{'/'.join(file_options)}: only with files (--audio-file, --image-dir, "
                     "--video-file); the microphone and camera run until stopped")
    if args.loop and args.exit_when_done:
        return _fail("--loop replays the files for ever: it cannot be combined with --exit-when-done")
    for p in args.audio_file:
        if not p.exists():
            return _fail(f"--audio-file {p}: not found")
    if args.audio_file and not list(iter_audio_files(args.audio_file)):
        return _fail(f"--audio-file: no audio files ({'/'.join(AUDIO_SUFFIXES)}) in "
                     f"{', '.join(map(str, args.audio_file))}")
    if args.image_dir is not None:
        from edge.vision.sources import IMAGE_SUFFIXES, iter_image_files

        if not args.image_dir.is_dir():
            return _fail(f"--image-dir {args.image_dir}: not a directory")
        if next(iter_image_files([args.image_dir]), None) is None:
            return _fail(f"--image-dir {args.image_dir}: no images ({'/'.join(IMAGE_SUFFIXES)}) in it")
    if args.video_file is not None:
        problem = _unplayable_video(args.video_file)
        if problem:
            return _fail(f"--video-file {args.video_file}: {problem}")
    options = RunOptions(tuple(args.audio_file), args.image_dir, args.video_file, args.fast,
                         args.loop, args.exit_when_done)
    return Daemon(cfg, options).run()


def _unplayable_video(path: Path) -> str | None:
    """Why the daemon could not show ``path``'s frames, or None when its first frame
    decodes: a file given on the command line that cannot be read is the user's slip,
    not a camera to retry for ever."""
    if not path.is_file():
        return "not found"
    from edge.vision.sources import ImageError, VideoFile

    try:
        with VideoFile(path) as video:
            if next(video.frames(), None) is None:
                return "no frame OpenCV can decode in it (not a video, or cut off)"
    except ImageError as exc:
        return exc.problem
    return None


def _print_message(msg: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"topic": msg.topic, "retain": msg.retain, "payload": msg.json()}),
              flush=True)
    else:
        text = msg.payload.decode("utf-8", "replace")
        print(f"{msg.topic}{' (retained)' if msg.retain else ''}  {text}", flush=True)


def cmd_listen(args: argparse.Namespace) -> int:
    from edge.publish.mqtt import Subscriber, Topics

    try:
        cfg = _config(args)
    except ConfigError as exc:
        return _fail(str(exc))
    topics = Topics.of(cfg.mqtt, cfg.homeassistant)
    wanted = [f"{topics.base}/#"] + ([topics.discovery] if args.discovery else [])
    sub = Subscriber(cfg.mqtt, wanted)
    end = (time.monotonic() + args.timeout) if args.timeout > 0 else None  # connecting too
    try:
        sub.start(timeout=min(10.0, args.timeout) if end is not None else 10.0)
    except TimeoutError as exc:
        return _fail(str(exc), 1)
    print(f"listening on {', '.join(wanted)} at {cfg.mqtt.host}:{cfg.mqtt.port} "
          "(Ctrl-C to stop)", file=sys.stderr)
    n = 0
    try:
        while (args.count <= 0 or n < args.count) and (end is None or time.monotonic() < end):
            try:
                msg = sub.messages.get(timeout=0.2)
            except queue.Empty:
                continue
            _print_message(msg, args.json)
            n += 1
    finally:
        sub.stop()
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        return _fail(str(exc))
    for problem in _unloadable(cfg):
        return _fail(f"{args.file}: {problem}")
    m = cfg.mqtt
    print(f"ok: {args.file}: device {m.device_id}, broker {m.host}:{m.port}"
          f"{' (TLS)' if m.tls.enabled else ''}, topics {m.base_topic}/…")
    return 0


def _unloadable(cfg) -> list[str]:
    """Each enabled modality's recogniser and model loaded as the daemon loads them: why the
    daemon would run without one, naming the config key that decides it."""
    from edge.daemon.wiring import load_face, load_speech

    out = []
    for section, model_key, what, load in (("audio", "speech_model", "the voice", load_speech),
                                           ("camera", "face_model", "the faces", load_face)):
        if not getattr(cfg, section).enabled:
            continue
        rec, why = load(cfg)
        if rec is None:
            key = model_key if "model unavailable" in why else "recogniser"
            out.append(f"{section}.{key}: {why} (the daemon would run without {what})")
    return out


def cmd_config_example(args: argparse.Namespace) -> int:
    sys.stdout.write(EXAMPLE)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from edge.demo.runner import run_demo

    return run_demo(args.audio_file, args.image_dir, args.video_file, args.fast, args.raw,
                    args.timeout, speech_model=args.speech_model)
