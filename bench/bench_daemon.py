"""The daemon's CPU and memory on this machine; prints one JSON object.

    python bench/bench_daemon.py [--seconds 60] [--soak-minutes 10] [--speech-model M] [--scene still]

* steady: `edge-cli run` against a private Mosquitto, with 16 kHz audio (the demo clips,
  looped, in real time) and 2 fps 640×480 frames from an image folder through the
  shipped face model: with --scene alternate (default), half of the frames hold a real
  face (FER-2013 PrivateTest crops, upscaled, from ../shared/data or --data), each at
  another place, half are faceless (the detector looks at every frame); with --scene
  still, one person sits still (the detector's last faces are reused, [face]
  still_frames); with --scene shifting, that person shifts a few pixels every frame
  (BlazeFace looks again only through the windows around them).  Without the data, or
  with --stub-face, frames go through the stand-in recogniser edge.demo.stub_face and
  the face model's cost is not included.
  After a warm-up, CPU % of one core (utime+stime over wall time) and RSS are read from
  /proc/<pid>.  Targets: <= 10 % of one core, <= 80 MB.
* soak: the same inputs with --fast --loop (as fast as the pipeline goes) until at least
  --soak-minutes of audio went through; RSS and thread count after the first tenth of
  the input versus at the end.  Targets: RSS growth <= 5 MB, thread count unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.demo import MEDIA_DIR  # noqa: E402
from edge.demo.broker import Broker  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_sample(pid: int) -> tuple[float, int, int]:
    """(cpu seconds, rss bytes, threads) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    threads = int(fields[17])
    with open(f"/proc/{pid}/statm") as f:
        rss = int(f.read().split()[1]) * PAGE
    return cpu, rss, threads


def libraries(pid: int, names=("cv2", "tensorflow", "scipy")) -> list[str]:
    """Which of these packages have shared objects mapped into the process."""
    with open(f"/proc/{pid}/maps") as f:
        paths = {line.split()[-1] for line in f if "/" in line}
    return sorted(n for n in names if any(f"/{n}/" in p or f"/{n}." in p for p in paths))


SCENES = {
    "alternate": "every other frame a different real FER-2013 face at another place, faceless frames between",
    "still": "one real FER-2013 face, the person sitting still: the same scene with fresh sensor noise",
    "shifting": "one real FER-2013 face moving a few pixels from frame to frame (a person shifting "
                "in a chair), fresh sensor noise",
}


def face_frames(fer_npz: Path, n: int, scene: str = "alternate") -> list[np.ndarray]:
    """n 640×480 frames (SCENES): real PrivateTest faces upscaled to 200 px on a smooth
    gradient with sensor noise."""
    import cv2

    with np.load(fer_npz) as z:
        crops = z["pixels"][z["usage"] == 2][:n]
    rng = np.random.default_rng(0)
    base = np.tile(np.linspace(60, 160, 640, dtype=np.float32), (480, 1))
    frames = []
    for i in range(n):
        g = base + rng.normal(0, 4, base.shape)
        if scene in ("still", "shifting"):
            x, y = (120, 80) if scene == "still" else (120 + 6 * (i % 4), 80 + 4 * (i % 3))
            g[y : y + 200, x : x + 200] = cv2.resize(crops[0], (200, 200), interpolation=cv2.INTER_CUBIC) \
                + rng.normal(0, 4, (200, 200))
        elif i % 2 == 0:
            x, y = 120 + 40 * (i % 5), 80 + 20 * (i % 3)
            g[y : y + 200, x : x + 200] = cv2.resize(crops[i], (200, 200),
                                                     interpolation=cv2.INTER_CUBIC)
        frames.append(cv2.cvtColor(np.clip(g, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR))
    return frames


def write_inputs(tmp: Path, port: int, speech_model: Path | None, fer_npz: Path | None,
                 scene: str = "alternate") -> Path:
    img = tmp / "frames"
    img.mkdir()
    if fer_npz is not None:
        frames = face_frames(fer_npz, 20, scene)
    else:
        rng = np.random.default_rng(0)
        frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(20)]
    for i, frame in enumerate(frames):
        np.save(img / f"{i:03d}.npy", frame)
    extra = f'\n[audio]\nspeech_model = "{speech_model}"\n' if speech_model else ""
    recogniser = "edge.vision.expression:face_recogniser" if fer_npz else "edge.demo.stub_face:factory"
    conf = tmp / "bench.toml"
    conf.write_text(f"""[mqtt]
host = "127.0.0.1"
port = {port}
device_id = "bench"
[camera]
recogniser = "{recogniser}"
fps = 2.0
[stats]
interval_s = 10.0
[daemon]
state_dir = "{tmp / 'state'}"
{extra}""")
    return conf


def start(conf: Path, tmp: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "edge.cli", "run", "--config", str(conf), "--loop",
            "--image-dir", str(tmp / "frames"), *extra]
    for clip in sorted(MEDIA_DIR.glob("*.flac")):
        argv += ["--audio-file", str(clip)]
    log = open(tmp / f"daemon{len(extra)}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> int:
    proc.terminate()
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def steady(conf: Path, tmp: Path, seconds: float, warmup: float) -> dict:
    """CPU and RSS from /proc; the daemon's own last ``…/stats`` says what its stages did
    (frames the face detector looked at against frames that kept the last faces)."""
    from edge.config import load_config
    from edge.publish.mqtt import Subscriber

    cfg = load_config(conf, env={})
    sub = Subscriber(cfg.mqtt, [f"{cfg.mqtt.base_topic}/stats"]).start()
    proc = start(conf, tmp)
    try:
        time.sleep(warmup)
        c0, _, _ = proc_sample(proc.pid)
        t0 = time.monotonic()
        rss_max, rss = 0, []
        while time.monotonic() - t0 < seconds:
            time.sleep(1.0)
            _, r, threads = proc_sample(proc.pid)
            rss.append(r)
            rss_max = max(rss_max, r)
        c1, r1, threads = proc_sample(proc.pid)
        wall = time.monotonic() - t0
        loaded = libraries(proc.pid)
    finally:
        rc = stop(proc)
        sub.stop()
    stats = None
    while not sub.messages.empty():
        stats = sub.messages.get_nowait().json()
    stages = {k: {n: v[n] for n in ("processed", "dropped", "errors") if n in v}
              for k, v in (stats or {}).get("stages", {}).items()}
    return {"cpu_percent_one_core": round(100 * (c1 - c0) / wall, 2),
            "rss_mb": round(r1 / 2**20, 1), "rss_max_mb": round(rss_max / 2**20, 1),
            "threads": threads, "measured_s": round(wall, 1), "warmup_s": warmup,
            "exit_code_on_sigterm": rc, "heavy_libraries_loaded": loaded,
            "last_stats": {"stages": stages, "face_detector": (stats or {}).get("face_detector")}}


def soak(conf: Path, tmp: Path, minutes: float) -> dict:
    """Audio minutes processed are read from the daemon's speech window counter."""
    import queue

    from edge.config import load_config
    from edge.publish.mqtt import Subscriber

    cfg = load_config(conf, env={})
    sub = Subscriber(cfg.mqtt, [f"{cfg.mqtt.base_topic}/stats"]).start()
    proc = start(conf, tmp, "--fast")
    hop_s = 0.5  # windows per second of audio = 1 / hop_s
    first = last = None
    t0 = time.monotonic()
    try:
        while True:
            try:
                msg = sub.messages.get(timeout=30)
            except queue.Empty:
                raise RuntimeError("no stats from the daemon for 30 s") from None
            windows = msg.json()["stages"]["audio"].get("windows", 0)
            audio_min = windows * hop_s / 60
            _, rss, threads = proc_sample(proc.pid)
            if first is None and audio_min >= minutes / 10:
                first = (audio_min, rss, threads)
            last = (audio_min, rss, threads)
            if audio_min >= minutes:
                break
    finally:
        rc = stop(proc)
        sub.stop()
    assert first is not None and last is not None
    return {"input_audio_minutes": round(last[0], 1), "wall_s": round(time.monotonic() - t0, 1),
            "rss_start_mb": round(first[1] / 2**20, 2), "rss_end_mb": round(last[1] / 2**20, 2),
            "rss_growth_mb": round((last[1] - first[1]) / 2**20, 2),
            "threads_start": first[2], "threads_end": last[2], "exit_code_on_sigterm": rc}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="steady-state measurement")
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--soak-minutes", type=float, default=10.0, help="0 skips the soak")
    ap.add_argument("--speech-model", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--stub-face", action="store_true",
                    help="frames through the stand-in recogniser, not the face model")
    ap.add_argument("--scene", choices=sorted(SCENES), default="alternate",
                    help="what the camera sees: " + "; ".join(f"{k}: {v}" for k, v in SCENES.items()))
    args = ap.parse_args()
    fer_npz = args.data / "face" / "fer2013.npz"
    fer_npz = None if args.stub_face or not fer_npz.is_file() else fer_npz
    out: dict = {"machine": platform.machine(), "cpus": os.cpu_count(),
                 "python": platform.python_version(),
                 "inputs": "16 kHz demo clips looped in real time + 640x480 frames at 2 fps "
                           + (f"through the shipped face model ({SCENES[args.scene]})" if fer_npz
                              else "(stand-in face recogniser)"),
                 "scene": args.scene if fer_npz else None}
    with Broker() as broker, tempfile.TemporaryDirectory(prefix="moodedge-bench-") as t:
        tmp = Path(t)
        conf = write_inputs(tmp, broker.port, args.speech_model, fer_npz, args.scene)
        out["steady"] = steady(conf, tmp, args.seconds, args.warmup)
        if args.soak_minutes > 0:
            out["soak"] = soak(conf, tmp, args.soak_minutes)
    s = out["steady"]
    checks = {"cpu <= 10% of one core": s["cpu_percent_one_core"] <= 10.0,
              "rss <= 80 MB": s["rss_max_mb"] <= 80.0}
    if "soak" in out:
        checks["soak rss growth <= 5 MB"] = out["soak"]["rss_growth_mb"] <= 5.0
        checks["soak threads stable"] = out["soak"]["threads_start"] == out["soak"]["threads_end"]
    out["targets_met"] = checks
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
