"""``edge-cli demo``: the first command a new user runs."""

from __future__ import annotations

from conftest import run_cli
from test_daemon_support import DEMO_CLIPS, needs_mosquitto, speech_model

from edge.demo import MEDIA_DIR


def test_demo_media_is_small_16k_and_documented():
    import soundfile as sf

    assert len(DEMO_CLIPS) == 3
    assert sum(p.stat().st_size for p in MEDIA_DIR.iterdir()) < 300_000
    for p in DEMO_CLIPS:
        info = sf.info(str(p))
        assert (info.samplerate, info.channels) == (16000, 1) and info.duration >= 2.0
    assert "espeak-ng" in (MEDIA_DIR / "README.md").read_text()


@needs_mosquitto
def test_demo_runs_broker_daemon_and_subscriber_then_stops_everything():
    r = run_cli("demo", "--fast", "--speech-model", str(speech_model()), timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    out = r.stdout
    assert "Mosquitto on 127.0.0.1:" in out
    assert "moodedge/demo/availability  online" in out
    assert "Home Assistant discovery: 15 entities" in out
    assert "moodedge/demo/mood  " in out and "voice: " in out
    assert "moodedge/demo/tracks  policy match" in out and "      1. " in out
    assert "moodedge/demo/availability  offline" in out
    assert "daemon exit code 0" in out
