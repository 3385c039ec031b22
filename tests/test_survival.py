"""Issue 17: the daemon survives what a device meets (no microphone, bad files, hostile
numbers, broken TLS, floods, signals early, state file modes)."""

from __future__ import annotations

import sys
import threading
import time
import types

from test_daemon_support import speech_model

from edge.config import load_config
from edge.daemon.base import DropQueue, SourceStatus, StageStats
from edge.daemon.clock import Clock, Replay
from edge.daemon.sources import AudioWorker


def _wait(pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def _audio_worker(files, **kw):
    from edge.audio.speech import speech_recogniser

    p = speech_recogniser(speech_model()).params
    cfg = load_config(None, env={})
    args = dict(stop=threading.Event(), status=SourceStatus(), paused=threading.Event(),
                stats=StageStats("audio"), retry=(0.05, 0.1), stall_s=5.0)
    args.update(kw)
    clock = Replay(fast=True) if files else Clock()
    return AudioWorker(p, cfg.audio, files, DropQueue(10_000, StageStats("speech")), clock,
                       **args)


def _sounddevice_without_input(monkeypatch):
    """sounddevice as on a host with no audio input: opening the default input raises
    ``PortAudioError('Error querying device -1')`` (an Exception, not a RuntimeError, in
    sounddevice 0.5).  The real module when PortAudio loads, else a module of that shape."""
    try:
        import sounddevice as sd
    except OSError:  # no PortAudio library here
        sd = types.ModuleType("sounddevice")

        class PortAudioError(Exception):
            pass

        sd.PortAudioError = PortAudioError
        sd.query_devices = lambda *a, **k: []
        monkeypatch.setitem(sys.modules, "sounddevice", sd)
    assert not issubclass(sd.PortAudioError, RuntimeError)

    def no_input(*a, **k):
        raise sd.PortAudioError("Error querying device -1")

    monkeypatch.setattr(sd, "InputStream", no_input)
    return sd


def test_no_default_microphone_is_retried_not_fatal(monkeypatch):
    _sounddevice_without_input(monkeypatch)
    from edge.daemon import sources as daemon_sources

    monkeypatch.setattr(daemon_sources.audio, "reinit_portaudio", lambda: None)
    w = _audio_worker([])
    w.start()
    try:
        assert _wait(lambda: w.failed is not None or getattr(w.status.get("audio"),
                                                               "retries", 0) >= 2)
        st = w.status.get("audio")
        assert st.state == "retrying" and "Error querying device -1" in st.detail, st
        assert w.is_alive() and w.failed is None and w.healthy(15.0)
    finally:
        w.stop_event.set()
        w.join(5)
    assert w.failed is None
