"""How the daemon's music detector (:mod:`edge.audio.music_heard`) does in the rooms.

Streams built from the seeded room conditions of :mod:`training.room_eval` (validation
speakers and artists with :data:`~training.room_eval.VAL_SEED` for choosing the
parameters; ``--split test`` once, to write down), each window through the device's own
path (:meth:`edge.audio.speech.SpeechRecogniser.classify_window` on the streaming
windows, then :func:`~edge.audio.music_heard.window_kind` and the hysteresis):

* ``music``: each song alone in a room (a fresh detector per song): the share of songs
  heard by their end, the seconds until heard, the share of windows heard after the
  first ``span_s``;
* ``talk_over_music``: each song, then talkers (``room_music10`` clips) over music: the
  share of the talking windows with the music still heard;
* ``music_stops``: each song, then the room's noise alone (about 16 s): seconds until no
  longer heard;
* ``talk_in_room``: talkers in rooms with 15 dB noise, 4 s of that noise alone between
  them: the share of windows with music (falsely) heard;
* ``noise``: room noises alone (fan, street, pink + hum) at the level they have under
  the talkers: the share of windows with music heard.

``python -m training.music_heard_eval [--split val|test] [--model M.tflite]`` prints JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edge.audio import features as F
from edge.audio.music_heard import MusicHeard, MusicHeardParams, heard_over, window_kind
from training import rooms as R
from training.room_eval import TEST_SEED, VAL_SEED, _hum_and_pink, simulate

NOISES = ("fan", "street", "pink+hum")


def kinds(rec, signal: np.ndarray, params: MusicHeardParams) -> list[str]:
    """The window kinds the daemon's speech stage gives ``signal``."""
    feats = F.mfcc(signal, rec.params)
    out = []
    for w in F.windows(feats, rec.params):
        r = rec.classify_window(w)
        out.append(window_kind(r.heard, r.level_db, rec.vad.threshold_db, params.loud_db))
    return out


def first(flags: list[bool], value: bool) -> int | None:
    return next((i for i, f in enumerate(flags) if f == value), None)


def room_noises(signals: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """A noise per talker clip, at the level ``room_noise15`` gives it under that talker."""
    rng = np.random.default_rng([seed, 77])
    out = []
    for i, y in enumerate(signals):
        kind = NOISES[i % len(NOISES)]
        n = _hum_and_pink(len(y), rng) if kind == "pink+hum" else R.noise(kind, len(y), rng)
        level = float(np.sqrt(np.mean(y**2))) / 10 ** (15 / 20)
        out.append((n / max(float(np.std(n)), 1e-9) * level).astype(np.float32))
    return out


def evaluate(rec, talk: list[np.ndarray], songs: list[np.ndarray], seed: int,
             params: MusicHeardParams) -> dict:
    hop = rec.params.hop_s
    span = round(params.span_s / hop)
    in_room = simulate("room_noise15", talk, seed).signals
    over_music = simulate("room_music10", talk, seed, songs).signals
    played = simulate("music_only", songs, seed, songs).signals
    noise = room_noises(in_room, seed)
    k_room = [kinds(rec, x, params) for x in in_room]
    k_over = [kinds(rec, x, params) for x in over_music]
    k_noise = [kinds(rec, x, params) for x in noise]
    gap = [kinds(rec, x[: int(4 * rec.params.sample_rate)], params) for x in noise]
    k_played = [kinds(rec, x, params) for x in played]

    songs_heard, to_on, after_span, over, to_off = 0, [], [], [], []
    for i, k in enumerate(k_played):
        m = MusicHeard(params, hop)
        flags = m.over(k)
        songs_heard += bool(flags[-1])
        if first(flags, True) is not None:
            to_on.append(first(flags, True) * hop)
        after_span += flags[span:]
        talk_stream = [w for j in range(6) for w in k_over[(6 * i + j) % len(k_over)]]
        over += m.copy().over(talk_stream)
        stops = [w for j in range(8) for w in k_noise[(8 * i + j) % len(k_noise)]]
        off = first(m.copy().over(stops), False)
        if flags[-1]:
            to_off.append(None if off is None else off * hop)
    room_stream = [w for a, b in zip(k_room, gap) for w in (*a, *b)]
    noise_stream = [w for k in k_noise for w in k]
    stopped = [t for t in to_off if t is not None]
    return {
        "seed": seed, "talker_clips": len(talk), "songs": len(songs), "params": vars_of(params),
        "music_songs_heard": songs_heard / max(len(played), 1),
        "music_seconds_to_heard_median": _median(to_on),
        "music_windows_heard_after_span": float(np.mean(after_span)) if after_span else None,
        "talk_over_music_windows_heard": float(np.mean(over)) if over else None,
        "music_stops_seconds_to_off_median": _median(stopped),
        "music_stops_not_off_within_stream": len(to_off) - len(stopped),
        "talk_in_room_windows_heard": float(np.mean(heard_over(room_stream, params, hop))),
        "noise_windows_heard": float(np.mean(heard_over(noise_stream, params, hop))),
        "kinds": {name: _shares(k) for name, k in
                  (("music", [w for k in k_played for w in k]),
                   ("talk_in_room", [w for k in k_room for w in k]), ("noise", noise_stream))},
    }


def _median(xs: list[float]) -> float | None:
    return float(np.median(xs)) if xs else None


def _shares(k: list[str]) -> dict:
    return {kind: round(k.count(kind) / max(len(k), 1), 4) for kind in ("quiet", "sound", "speech")}


def vars_of(params: MusicHeardParams) -> dict:
    from dataclasses import asdict

    return asdict(params)


def main(argv: list[str] | None = None) -> int:
    from edge.audio.speech import speech_recogniser
    from training.datasets import by_split, fourq_split, load_corpora, read_4q
    from training.speech import load_signals

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--model", default=None, help="speech .tflite (default: the shipped one)")
    ap.add_argument("--split", choices=["val", "test"], default="val")
    ap.add_argument("--clips", type=int, default=0, help="talker clips (0: all of the split)")
    args = ap.parse_args(argv)
    rec = speech_recogniser(args.model)
    if not rec.hears_music:
        raise SystemExit(f"{rec.model.path}: no no-speech output: this model cannot hear music")
    clips = by_split(load_corpora(Path(args.data), ["ravdess"]))[args.split]
    clips = clips[: args.clips] if args.clips else clips
    music = [c for c in read_4q(Path(args.data) / "music" / "4q") if fourq_split(c.artist) == args.split]
    sr = rec.params.sample_rate
    res = evaluate(rec, load_signals(clips, sr), load_signals(music, sr),
                   VAL_SEED if args.split == "val" else TEST_SEED, MusicHeardParams())
    print(json.dumps({"model": str(rec.model.path), "model_sha256": rec.model.manifest.sha256,
                      "split": args.split, **res}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
