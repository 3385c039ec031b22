"""Speech path speed and memory on this machine; prints one JSON object.

    python bench/bench_speech.py [--data ../shared/data] [--repeats 5] [--noise-suppression L]

* mfcc_ms_per_s_audio: edge.audio.features.mfcc on 1 s of real speech (median).
* streaming_mfcc_ms_per_s_audio: the same through StreamingMFCC in 100 ms blocks.
* inference_ms_per_window / inference_ms_per_s_audio: the int8 model, one window at a
  time as the daemon runs it (windows per second of audio = 1 / hop_s).
* speech_stage_ms_per_0.5s_audio: what the daemon does every hop (0.5 s): stream that
  audio's MFCC (+pitch) frames in 100 ms blocks, then gate and classify the newest window
  (energy gate, the int8 model with its no-speech output, edge.audio.speech.gate).
* mic_resample_48k_ms_per_s_audio: a 48 kHz-only microphone's stream resampled to the
  model's rate in 100 ms blocks (edge.audio.resample.StreamResampler), on top of the rest.
* denoise_ms_per_s_audio: the noise-suppression front end alone (edge.audio.denoise) at
  the level the features use (the manifest's, or ``--noise-suppression L`` to time the
  stages as a model with that level would run them); null when off.
* predict_process: `edge-cli predict --json` over the 360 RAVDESS test clips (actors
  19-24) in a fresh process: wall time and peak RSS (median over repeats), and which
  heavy modules (tensorflow, keras, scipy, sklearn) that process imported (must be none).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.audio import denoise  # noqa: E402
from edge.audio import features as F  # noqa: E402
from edge.audio.sources import load_audio  # noqa: E402
from edge.audio.speech import SpeechRecogniser  # noqa: E402
from edge.runtime import default_models_dir, load_model  # noqa: E402

# VmHWM is this process's own peak RSS (reset at exec); a child's ru_maxrss would also
# count the benchmark's pages it shared between fork and exec.
# REPORT ends every fresh-process script run_predict runs: the script sets ``rc``.
REPORT = """
import json, os, sys
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'scipy', 'sklearn'})
hwm = None
if os.path.exists('/proc/self/status'):
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM'):
            hwm = int(line.split()[1])
open(sys.argv[1], 'w').write(json.dumps({'rc': rc, 'heavy_modules': heavy, 'vmhwm_kb': hwm}))
"""
WRAPPER = """
import sys
from edge.cli import main
rc = main(['predict', '--json', *sys.argv[2:]])
""" + REPORT


def median_ms(fn, repeats: int, inner: int = 1) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t) / inner * 1000)
    return round(statistics.median(times), 3)


def run_predict(args: list[str | Path], script: str = WRAPPER) -> dict:
    """Run ``script`` (default: `edge-cli predict --json`) in a fresh process; wall, peak RSS."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", script, out, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    info = json.loads(Path(out).read_text())
    os.unlink(out)
    peak_kb = info.pop("vmhwm_kb") or usage.ru_maxrss
    return {"wall_s": wall, "peak_rss_mb": peak_kb / 1024, "lines": stdout.count(b"\n"), **info}


def summarise_runs(runs: list[dict], unit: str) -> dict:
    """Medians over repeated ``run_predict`` results: wall time, time per item, peak RSS."""
    wall = statistics.median(r["wall_s"] for r in runs)
    items = max(1, runs[0]["lines"])
    return {
        f"{unit}s": runs[0]["lines"],
        "wall_s_median": round(wall, 3),
        f"ms_per_{unit}_median": round(wall / items * 1000, 3),
        "peak_rss_mb_median": round(statistics.median(r["peak_rss_mb"] for r in runs), 1),
        "exit_codes": sorted({r["rc"] for r in runs}),
        "heavy_modules_imported": sorted({m for r in runs for m in r["heavy_modules"]}),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--model", default=str(default_models_dir() / "speech_emotion.tflite"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--noise-suppression", type=int, choices=range(5), default=None, metavar="L",
                    help="time the in-process stages with this suppression level instead of "
                         "the manifest's (the predict process keeps the model's own)")
    args = ap.parse_args()

    model = load_model(Path(args.model), "speech")
    p = F.FeatureParams.from_dict(model.manifest.features)
    if args.noise_suppression is not None:
        p = replace(p, noise_suppression=args.noise_suppression)
    ravdess = Path(args.data) / "speech" / "ravdess"
    x = load_audio(ravdess / "Actor_19" / "03-01-05-02-01-01-19.flac", p.sample_rate)
    one_s = x[p.sample_rate : 2 * p.sample_rate]

    def streaming():
        s = F.StreamingMFCC(p)
        for i in range(0, len(one_s), p.sample_rate // 10):
            s.push(one_s[i : i + p.sample_rate // 10])

    rec = SpeechRecogniser(model)
    raw = F.windows(F.mfcc(x, p), p)[0]
    half = x[: int(p.hop_s * p.sample_rate)]

    def stage():  # one hop of the daemon's speech stage
        s = F.StreamingMFCC(p)
        for i in range(0, len(half), p.sample_rate // 10):
            s.push(half[i : i + p.sample_rate // 10])
        rec.classify_window(raw)

    from edge.audio.resample import StreamResampler, resample

    x48 = resample(one_s, p.sample_rate, 48000)

    def mic_resample():
        r = StreamResampler(48000, p.sample_rate)
        for i in range(0, len(x48), 4800):
            r.push(x48[i : i + 4800])

    window = F.normalise(raw[None], p)
    model.predict(window)  # warm-up
    infer = median_ms(lambda: model.predict(window), args.repeats * 4, inner=10)
    windows_per_s = 1.0 / p.hop_s

    folders = [ravdess / f"Actor_{a:02d}" for a in range(19, 25)]
    # the process loads the model being measured, not the shipped one
    runs = [run_predict(["--speech-model", args.model, *folders]) for _ in range(args.repeats)]
    result = {
        "bench": "speech",
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "arch": platform.machine(), "cpus": os.cpu_count()},
        "model": Path(args.model).name,
        "model_bytes": Path(args.model).stat().st_size,
        "interpreter": model.interpreter_module,
        "repeats": args.repeats,
        "mfcc_ms_per_s_audio": median_ms(lambda: F.mfcc(one_s, p), args.repeats * 4, inner=10),
        "streaming_mfcc_ms_per_s_audio": median_ms(streaming, args.repeats * 4, inner=10),
        "inference_ms_per_window": infer,
        "inference_ms_per_s_audio": round(infer * windows_per_s, 3),
        "speech_stage_ms_per_0.5s_audio": median_ms(stage, args.repeats * 4, inner=10),
        "mic_resample_48k_ms_per_s_audio": median_ms(mic_resample, args.repeats * 4, inner=3),
        "noise_suppression": p.noise_suppression,
        "denoise_ms_per_s_audio": (median_ms(lambda: denoise.suppress(one_s, p.noise_suppression),
                                             args.repeats * 4, inner=10)
                                   if p.noise_suppression else None),
        "no_speech_gate": model.manifest.gate or None,
        "predict_process": summarise_runs(runs, "clip"),
    }
    result["tensorflow_imported"] = "tensorflow" in result["predict_process"]["heavy_modules_imported"]
    print(json.dumps(result, indent=1))
    return 0 if not result["tensorflow_imported"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
