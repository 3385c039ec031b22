"""``edge-cli demo``: start a private Mosquitto, run the daemon over demo media, print
what a subscriber (Home Assistant, say) receives, then stop everything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from edge.config import load_config
from edge.demo import MEDIA_DIR
from edge.demo.broker import Broker
from edge.publish.mqtt import Message, Subscriber

DEVICE_ID = "demo"
PREFIX = "moodedge"


def _demo_config(port: int, extra: str = "") -> str:
    return f"""# written by edge-cli demo
[mqtt]
host = "127.0.0.1"
port = {port}
device_id = "{DEVICE_ID}"
topic_prefix = "{PREFIX}"

[tracks]
min_interval_s = 3.0
min_move = 0.1

[stats]
interval_s = 5.0
{extra}"""


def describe(msg: Message) -> str:
    """One line (or a few) for a message, as a person reads it."""
    name = msg.topic.rsplit("/", 1)[-1]
    data = msg.json()
    if not isinstance(data, dict):
        return f"{msg.topic}  {data}"
    if msg.topic.endswith("/config") and "cmps" in data:
        names = ", ".join(c.get("name", "?") for c in data["cmps"].values())
        return f"{msg.topic}  Home Assistant discovery: {len(data['cmps'])} entities ({names})"
    if name == "mood":
        src = "; ".join(f"{m}: {s.get('label')} ({s.get('confidence')}, {s.get('age_s')} s old)"
                        for m, s in data.get("sources", {}).items())
        return (f"{msg.topic}  {data.get('quadrant')} / {data.get('emotion')}  valence "
                f"{data.get('valence'):+.2f} arousal {data.get('arousal'):+.2f} confidence "
                f"{data.get('confidence'):.2f}  [{src}]")
    if name == "tracks":
        lines = [f"{msg.topic}  policy {data.get('policy')} ({data.get('trigger')}), "
                 f"{len(data.get('tracks', []))} tracks:"]
        lines += [f"      {i}. {t['artist']} - {t['title']}  (v {t['valence']:+.2f}, "
                  f"a {t['arousal']:+.2f})" for i, t in enumerate(data.get("tracks", []), 1)]
        return "\n".join(lines)
    if name == "stats":
        st = data.get("stages", {})
        sp = st.get("speech", {})
        return (f"{msg.topic}  cpu {data.get('cpu_percent')}%  rss {data.get('rss_mb')} MB  "
                f"speech windows {sp.get('processed')} (dropped {sp.get('dropped')}, median "
                f"{sp.get('latency_ms_median')} ms)  sources "
                + ", ".join(f"{k}={v['state']}" for k, v in data.get("sources", {}).items()))
    return f"{msg.topic}  {json.dumps(data)[:200]}"


def run_demo(audio: Sequence[Path] = (), image_dir: Path | None = None,
             video_file: Path | None = None, fast: bool = False, raw: bool = False,
             timeout: float = 120.0, out: TextIO = sys.stdout,
             speech_model: Path | None = None) -> int:
    """Returns 0 when a subscriber saw availability, mood and tracks."""
    audio = list(audio) or sorted(MEDIA_DIR.glob("*.flac"))
    with Broker() as broker, tempfile.TemporaryDirectory(prefix="moodedge-demo-") as tmp:
        conf = Path(tmp) / "demo.toml"
        extra = "" if speech_model is None else (
            f"\n[audio]\nspeech_model = {json.dumps(str(Path(speech_model).resolve()))}\n")
        conf.write_text(_demo_config(broker.port, extra), encoding="utf-8")
        cfg = load_config(conf, env={})
        print(f"== Mosquitto on 127.0.0.1:{broker.port} (private, stopped at the end)", file=out)
        topics = [f"{cfg.mqtt.base_topic}/#",
                  f"{cfg.homeassistant.prefix}/device/{cfg.mqtt.device_id}/config"]
        argv = [sys.executable, "-m", "edge.cli", "-v", "run", "--config", str(conf),
                "--exit-when-done"]
        for a in audio:
            argv += ["--audio-file", str(a)]
        if image_dir:
            argv += ["--image-dir", str(image_dir)]
        if video_file:
            argv += ["--video-file", str(video_file)]
        if fast:
            argv.append("--fast")
        print("== daemon: " + " ".join(a if " " not in a else repr(a) for a in argv[1:]), file=out)
        print(f"== a subscriber on {', '.join(topics)} receives:", file=out, flush=True)
        seen: Counter[str] = Counter()
        log_path = Path(tmp) / "daemon.log"
        with Subscriber(cfg.mqtt, topics) as sub, open(log_path, "wb") as log_file:
            env = {**os.environ, "MOODEDGE_STATE_DIR": str(Path(tmp) / "state")}
            proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env)
            t0 = time.monotonic()
            try:
                while True:
                    done = proc.poll() is not None
                    _print_pending(sub, t0, seen, raw, out)
                    if done or time.monotonic() - t0 > timeout:
                        break
                    time.sleep(0.1)
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                time.sleep(0.3)
                _print_pending(sub, t0, seen, raw, out)
        ok = all(seen[k] for k in ("availability", "mood", "tracks"))
        print(f"== received: {dict(seen)}; daemon exit code {proc.returncode}", file=out)
        if not ok or proc.returncode != 0:
            print("== demo FAILED; daemon log:\n" + log_path.read_text(errors="replace")[-4000:],
                  file=out)
            return 1
        print("== done.  Next: edge-cli config example > moodedge.toml; edit the broker; "
              "edge-cli run --config moodedge.toml", file=out)
        return 0


def _print_pending(sub: Subscriber, t0: float, seen: Counter[str], raw: bool, out: TextIO) -> None:
    import queue

    while True:
        try:
            msg = sub.messages.get_nowait()
        except queue.Empty:
            return
        kind = "discovery" if msg.topic.endswith("/config") else msg.topic.rsplit("/", 1)[-1]
        seen[kind] += 1
        text = f"{msg.topic}  {msg.payload.decode('utf-8', 'replace')}" if raw else describe(msg)
        print(f"[{time.monotonic() - t0:5.1f}s] {text}", file=out, flush=True)


