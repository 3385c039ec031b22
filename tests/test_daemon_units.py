"""Daemon pieces in-process: streaming windows, device retry, tracks pacing, privacy
pause, persisted state, sd_notify, health."""

from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest
from test_daemon_support import DEMO_CLIPS, ListSink, speech_model

from edge.audio import features as F
from edge.audio.sources import load_audio
from edge.config import load_config
from edge.daemon import Daemon, DaemonState, RunOptions, sd_notify, watchdog_interval
from edge.daemon import sources as daemon_sources
from edge.daemon.base import END, DropQueue, SourceStatus, StageStats
from edge.daemon.clock import Clock, Replay
from edge.daemon.control import DaemonControl, Dispatcher
from edge.daemon.sources import AudioWorker
from edge.daemon.state import State
from edge.daemon.tracks import TracksWorker
from edge.mood.fusion import FusionParams, ModalityContribution, MoodEstimate, Observation
from edge.music.recommend import Policy
from edge.publish.commands import COMMANDS, TRACKS, parse_command
from edge.publish.payloads import mood_payload
from edge.vision.sources import load_image


def _audio_worker(files, out, **kw):
    from edge.audio.speech import speech_recogniser

    p = speech_recogniser(speech_model()).params
    cfg = load_config(None, env={})
    defaults = dict(stop=threading.Event(), status=SourceStatus(), paused=threading.Event(),
                    stats=StageStats("audio"), retry=(0.05, 0.1), stall_s=5.0)
    defaults.update(kw)
    clock = Replay(fast=True) if files else Clock()
    clock.t0 = 0.0  # observations stamped with media time
    return p, AudioWorker(p, cfg.audio, files, out, clock, **defaults)


def test_streaming_windows_equal_the_offline_windows():
    out = DropQueue(1000, StageStats("speech"))
    p, w = _audio_worker([DEMO_CLIPS[0]], out)
    w.setup()
    w.step()
    assert w.finished and w.status.get("audio").state == "finished"
    got = []
    while (item := out.get(timeout=0)) is not None:
        got.append(item)
    assert got.pop() is END  # the end of input follows the last window
    offline = F.windows(F.mfcc(load_audio(DEMO_CLIPS[0], p.sample_rate), p), p)
    assert len(got) == len(offline)
    for (win, _), ref in zip(got, offline):
        np.testing.assert_allclose(win, ref, rtol=1e-5, atol=1e-4)
    ts = [t for _, t in got]
    assert ts == sorted(ts) and ts[-1] == pytest.approx(w.media_s)


def test_a_failing_microphone_is_retried_with_backoff_then_runs(monkeypatch):
    opens, rescans, states = [], [], []

    def fake_mic(device, rate, block_s, stop=None):
        opens.append(time.monotonic())
        if len(opens) <= 2:  # PortAudio at boot, before the USB microphone appears
            raise RuntimeError("Error querying device -1")  # as sounddevice raises it
        for i in range(60):
            if stop():
                return
            if i == 5:
                states.append(w.status.get("audio").state)
            yield np.zeros(int(rate * block_s), np.float32)
        # then the microphone is unplugged: the stream ends

    monkeypatch.setattr(daemon_sources.audio, "microphone_blocks", fake_mic)
    monkeypatch.setattr(daemon_sources.audio, "reinit_portaudio", lambda: rescans.append(1))
    out = DropQueue(4, StageStats("speech"))
    _, w = _audio_worker([], out)
    w.setup()
    w.step()
    st = w.status.get("audio")
    assert st.state == "retrying" and "Error querying device" in st.detail and st.retries == 1
    assert "retry in 0.05 s" in st.detail
    w.step()
    st = w.status.get("audio")
    assert st.retries == 2 and "retry in 0.1 s" in st.detail  # backoff doubles (capped)
    w.step()  # opens: 6 s of blocks, then the stream ends
    assert states == ["running"]
    st = w.status.get("audio")
    assert st.state == "retrying" and "no data" in st.detail and st.retries == 1
    assert len(rescans) == 3  # PortAudio rescanned before every retry
    assert w.stats.get("windows") == 8  # 598 frames: windows of 200 every 50
    assert out.stats.get("dropped") == 4  # a live source drops, never blocks


def test_a_microphone_that_records_at_48_khz_only_is_resampled_as_it_streams(monkeypatch):
    """Regression: the microphone was opened at the model's 16 kHz only, so a microphone
    whose ALSA device takes 48 kHz only (many I2S ones) failed "Invalid sample rate" and
    the daemon retried for ever without a voice. It now records at the device's own rate
    and resamples the stream. (sounddevice stands in for the hardware: a 48 kHz-only
    device feeding a 440 Hz tone through the callback, as PortAudio does.)"""
    import sys
    import types

    from edge.audio import sources as audio_sources

    sd = types.ModuleType("sounddevice")

    class PortAudioError(Exception):
        pass

    opened = []

    def check_input_settings(device=None, channels=None, samplerate=None, dtype=None):
        if samplerate != 48000:
            raise PortAudioError("Error opening InputStream: Invalid sample rate [PaErrorCode -9997]")

    class InputStream:
        def __init__(self, device, channels, samplerate, dtype, blocksize, callback):
            check_input_settings(samplerate=samplerate)
            opened.append((samplerate, blocksize))
            t = np.arange(48000 * 2) / 48000
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for i in range(0, len(tone), blocksize):  # queued before the first read
                callback(tone[i:i + blocksize, None], blocksize, None, None)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    sd.PortAudioError = PortAudioError
    sd.check_input_settings = check_input_settings
    sd.query_devices = lambda index=None, kind=None: {"name": "i2s mic", "default_samplerate": 48000.0,
                                                      "max_input_channels": 1}
    sd.InputStream = InputStream
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    got = []
    blocks = audio_sources.microphone_blocks(None, 16000, 0.1, stop=lambda: len(got) >= 20)
    for b in blocks:
        got.append(b)
    assert opened == [(48000, 4800)]
    y = np.concatenate(got)
    assert abs(len(y) - 32000) < 80  # 2 s at 16 kHz, less the filter's reach
    want = 0.3 * np.sin(2 * np.pi * 440 * np.arange(len(y)) / 16000)
    assert np.abs(y - want)[100:].max() < 2e-3


def test_an_audio_file_at_another_rate_is_heard_as_the_microphone_would_be(tmp_path):
    """Regression: the daemon's file source (--audio-file, the microphone's stand-in)
    skipped a 44.1 kHz recording with "pass --resample", a flag `edge-cli run` does not
    have; it is now resampled to the model's rate, as a microphone at that rate is."""
    import soundfile as sf

    from edge.audio.resample import resample
    from edge.audio.sources import file_chunks

    x = load_audio(DEMO_CLIPS[0], 16000)
    sf.write(tmp_path / "phone.wav", resample(x, 16000, 44100), 44100)
    errors = []
    chunks = list(file_chunks([tmp_path / "phone.wav"], 16000, on_error=errors.append))
    assert not errors, errors
    y = np.concatenate([c.samples for c in chunks])
    assert len(y) == len(x) and chunks[-1].end_of_file
    assert np.abs(y - x)[1600:-1600].max() < 0.02  # the same sound, band-limited twice


def _estimate(v, a, conf=0.6):
    c = ModalityContribution(v, a, conf, 0.5, conf, 1.0)
    return MoodEstimate(time.monotonic(), v, a, conf, "excited", {"voice": c})


def test_tracks_follow_policy_and_mood_but_at_most_once_per_interval(tmp_path):
    sink, events = ListSink(), []
    cfg = load_config(None, {"tracks.min_interval_s": 0.4, "tracks.min_move": 0.3}, env={})
    state = State(tmp_path / "state.json", Policy.MATCH, None)
    w = TracksWorker(threading.Event(), cfg.tracks, cfg.recommender, tmp_path / "c.sqlite", sink,
                     StageStats("tracks"), SourceStatus(), state)
    clock = [1000.0]  # the interval's clock: the test moves it, no sleeps racing it
    w.now = lambda: clock[0]
    ctx = DaemonControl(state, SourceStatus(), None, lambda: False)
    ctx.tracks = w
    disp = Dispatcher(ctx, lambda ident, cmd, ok, result, **kw: events.append((cmd, ok, result)),
                      StageStats("commands"))

    def submit(payload):  # as the dispatcher hands a tracks command to the running worker
        c = parse_command(payload)
        assert COMMANDS[c.cmd].thread == TRACKS
        w.submit(lambda: disp._on_tracks(COMMANDS[c.cmd], c))

    w.setup()
    w.offer_mood(_estimate(0.5, 0.5))
    w.step()
    assert len(sink.tracks) == 1 and sink.tracks[0]["trigger"] == "first mood"
    w.offer_mood(_estimate(0.52, 0.5))  # a small move: nothing
    submit(b'{"cmd": "set_policy", "policy": "calm", "id": 1}')
    w.step()
    assert len(sink.tracks) == 1 and events[-1][:2] == ("set_policy", True)
    assert events[-1][2]["tracks_in_s"] > 0  # waits for the interval
    clock[0] += 0.45
    w.step()
    assert len(sink.tracks) == 2 and sink.tracks[1]["policy"] == "calm"
    assert state.policy is Policy.CALM
    assert json.loads((tmp_path / "state.json").read_text())["policy"] == "calm"  # saved
    w.offer_mood(_estimate(-0.5, -0.5))  # a big move, inside the interval
    w.step()
    assert len(sink.tracks) == 2
    clock[0] += 0.45
    w.step()
    assert len(sink.tracks) == 3 and sink.tracks[2]["trigger"] == "mood moved"
    uri = sink.tracks[2]["tracks"][0]["uri"]
    submit(json.dumps({"cmd": "feedback", "uri": uri, "kind": "like"}))
    submit(b'{"cmd": "feedback", "uri": "nope:1", "kind": "like"}')
    w.step()
    assert events[-2][:2] == ("feedback", True)
    assert events[-1][1] is False and "unknown track" in events[-1][2]
    w.teardown()


def test_tracks_scanned_while_the_daemon_runs_are_recommended_without_a_restart(tmp_path):
    """Regression: the tracks stage cached the catalogue's arrays until its own import or
    feedback, so music the user scanned or imported with edge-cli while the daemon ran
    (another process writing the same SQLite file) was never recommended until a
    restart. The catalogue now rebuilds its snapshot when SQLite's data_version says
    another connection committed."""
    from edge.music.catalog import Catalog, Track

    sink = ListSink()
    cfg = load_config(None, {"tracks.min_interval_s": 0.0}, env={})
    state = State(tmp_path / "state.json", Policy.MATCH, None)
    db = tmp_path / "c.sqlite"
    w = TracksWorker(threading.Event(), cfg.tracks, cfg.recommender, db, sink,
                     StageStats("tracks"), SourceStatus(), state)
    w.setup()
    w.offer_mood(_estimate(-0.9, 0.9))
    w.step()
    assert not any(t["uri"].startswith("file:") for t in sink.tracks[-1]["tracks"])  # the starter's
    mine = Track("file:///music/tense.flac", "Tense", "Me", -0.9, 0.9)
    with Catalog(db) as cli:  # edge-cli library scan, in another process
        cli.add_tracks([mine])
    w.request("recommend")
    w.step()
    assert len(sink.tracks) == 2 and sink.tracks[-1]["tracks"][0]["uri"] == mine.uri
    w.teardown()


def test_mood_payload_names_each_source_and_the_leading_emotion():
    params = FusionParams()
    from edge.mood.fusion import MoodFuser

    f = MoodFuser(params)
    f.observe(Observation.from_probabilities("voice", 0.0, {"angry": 0.9, "calm": 0.1}))
    f.observe(Observation.from_probabilities("face", 1.0, {"happy": 0.97, "sad": 0.03}))
    p = mood_payload(f.estimate(1.5), {"voice": "angry", "face": "happy"}, 123.0)
    assert p["emotion"] == "happy" and p["ts"] == 123.0
    assert p["sources"]["voice"]["label"] == "angry"
    assert p["sources"]["voice"]["age_s"] == pytest.approx(1.5)
    assert json.loads(json.dumps(p)) == p


def test_without_models_the_daemon_reports_absent_and_pause_persists(tmp_path):
    cfg = load_config(None, {"daemon.state_dir": str(tmp_path)}, env={})
    sink = ListSink()
    d = Daemon(cfg, RunOptions(), sink=sink, speech=None, face=None)
    d.build()
    assert d.status.get("audio").state == "absent"
    assert d.status.get("camera").state == "absent"
    d.on_command(b'{"cmd": "pause", "what": "audio", "id": "p"}')
    d.on_command(b'{"cmd": "status"}')
    d.on_command(b"garbage")
    assert sink.events[0]["ok"] and sink.events[0]["result"] == {"paused": ["audio"]}
    assert sink.events[1]["result"]["paused"] == ["audio"]
    assert not sink.events[2]["ok"] and "cmd: payload is not valid" in sink.events[2]["error"]
    assert json.loads((tmp_path / "state.json").read_text())["paused"] == ["audio"]
    again = Daemon(cfg, RunOptions(), sink=ListSink(), speech=None, face=None)
    assert again.paused["audio"].is_set() and not again.paused["camera"].is_set()
    stats = d.stats_payload()
    assert stats["sources"]["audio"]["state"] == "absent" and stats["paused"] == ["audio"]


def test_unreadable_state_falls_back_to_defaults(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    default = DaemonState(Policy.MATCH, None)
    assert DaemonState.load(tmp_path / "state.json", default) is default


def test_sd_notify_sends_datagrams_and_watchdog_interval():
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0moodedge-test-notify")
        assert sd_notify("READY=1", {"NOTIFY_SOCKET": "@moodedge-test-notify"})
        assert s.recv(100) == b"READY=1"
    assert not sd_notify("READY=1", {})
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None


def test_a_failed_worker_makes_the_daemon_unhealthy(tmp_path):
    cfg = load_config(None, {"daemon.state_dir": str(tmp_path)}, env={})
    d = Daemon(cfg, RunOptions(), sink=ListSink(), speech=None, face=None)
    d.build()
    for w in d.workers:
        w.start()
    try:
        time.sleep(0.3)
        assert d.healthy()
        d.workers[0].failed = "RuntimeError: boom"
        assert not d.healthy()
    finally:
        d.stop_event.set()


def test_images_load_from_npy_and_netpbm_and_bad_files_are_named(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 5, 3), np.uint8))
    (tmp_path / "b.ppm").write_bytes(b"P6\n# c\n2 1\n255\n" + bytes(range(6)))
    (tmp_path / "c.npy").write_bytes(b"junk")
    assert load_image(tmp_path / "a.npy", gray=False).shape == (4, 5, 3)
    assert load_image(tmp_path / "b.ppm", gray=False).tolist() == [[[2, 1, 0], [5, 4, 3]]]  # RGB → BGR
    with pytest.raises(ValueError, match="c.npy"):
        load_image(tmp_path / "c.npy", gray=False)


class _SlowStubFace:
    """The stand-in face recogniser, slower than the camera replays (a loaded Pi)."""

    def __init__(self, seconds):
        from edge.demo.stub_face import StubFaceRecogniser

        self.rec, self.seconds = StubFaceRecogniser(), seconds

    def classify_frame(self, image):
        time.sleep(self.seconds)
        return self.rec.classify_frame(image)


def test_exit_when_done_publishes_once_after_every_queued_frame(tmp_path):
    """Regression: the end of input used to be guessed by polling (sources finished, a
    0.3 s sleep, then a flush), so frames still queued behind a slow recogniser were
    fused after the "final" mood, which was published early and then again."""
    img = tmp_path / "img"
    img.mkdir()
    rng = np.random.default_rng(1)
    for i in range(8):  # bright frames, then dark ones: the last frames decide "sad"
        lo = 150 if i < 4 else 10
        np.save(img / f"{i:02d}.npy", rng.integers(lo, lo + 100, (48, 64, 3), dtype=np.uint8))
    cfg = load_config(None, {"daemon.state_dir": str(tmp_path / "state"), "mood.interval_s": 60.0,
                             "stats.interval_s": 3600.0, "camera.fps": 4.0,
                             "daemon.queue_size": 40}, env={})  # all frames queued at once
    sink = ListSink()
    d = Daemon(cfg, RunOptions(image_dir=img, fast=True, exit_when_done=True), sink=sink,
               speech=None, face=_SlowStubFace(0.2))
    assert d.run(install_signals=False) == 0
    assert len(sink.moods) == 1, sink.moods
    assert sink.moods[0]["sources"]["face"]["label"] == "sad"
    assert sink.stats[-1]["stages"]["face"]["processed"] == 8
    assert [t["trigger"] for t in sink.tracks] == ["first mood"]


def test_recognisers_come_from_the_registry_with_a_clear_why_not():
    from edge.recognisers import load_recogniser

    rec, why = load_recogniser("face", "edge.demo.stub_face:factory", None)
    assert why == "" and callable(rec.classify_frame)
    rec, why = load_recogniser("speech", "edge.demo.stub_face:factory", None)
    assert rec is None and "without classify_window()" in why
    rec, why = load_recogniser("speech", "edge.nowhere:factory", None)
    assert rec is None and "no speech recogniser installed" in why
    rec, why = load_recogniser("speech", "edge.audio.speech:speech_recogniser",
                               speech_model().parent / "missing.tflite")
    assert rec is None and why.startswith("speech model unavailable")
    rec, why = load_recogniser("speech", "edge.predict:speech_recogniser", speech_model())
    assert why == "" and rec.params.sample_rate == 16000  # a spec older configs wrote


def test_a_factory_that_raises_anything_is_a_why_not_not_a_crash_at_start():
    """Regression: the speech factory named as the camera's recogniser took the face options
    for its VAD threshold and raised TypeError, which load_recogniser let through: the
    daemon (and `config check`) died with a traceback. A plugin's factory may raise anything;
    the modality is then absent with the reason."""
    from edge.recognisers import load_recogniser
    from edge.vision.expression import FaceOptions

    rec, why = load_recogniser("face", "edge.audio.speech:speech_recogniser", None,
                               FaceOptions(), FaceOptions())
    assert rec is None
    assert why.startswith("edge.audio.speech:speech_recogniser failed to build a face recogniser "
                          "(TypeError: "), why


def test_the_hubs_playback_state_lowers_the_voice_weight_and_shows_in_stats(tmp_path):
    """{"cmd": "playback", "state": "playing"}: fusion weighs the voice by
    music_voice_factor while music plays, and back when it stops; stats show the state."""
    from edge.mood.fusion import VOICE

    cfg = load_config(None, {"daemon.state_dir": str(tmp_path)}, env={})
    sink = ListSink()
    d = Daemon(cfg, RunOptions(), sink=sink, speech=None, face=None)
    d.build()
    base = cfg.fusion.reliability_of(VOICE)
    assert d.stats_payload()["playback"]["state"] == "unknown"
    d.on_command(b'{"cmd": "playback", "state": "playing", "id": 1}')
    d.mood.run_pending()  # what the fusion thread does before its next observation
    assert sink.events[-1]["ok"] and sink.events[-1]["result"]["state"] == "playing"
    assert d.mood.fuser.params.reliability_of(VOICE) == pytest.approx(
        base * cfg.fusion.music_voice_factor)
    assert d.stats_payload()["playback"]["state"] == "playing"
    d.on_command(b'{"cmd": "playback", "state": "paused"}')
    d.mood.run_pending()
    assert d.mood.fuser.params.reliability_of(VOICE) == pytest.approx(base)
    d.on_command(b'{"cmd": "playback", "state": "loud"}')
    assert not sink.events[-1]["ok"] and "state: expected one of" in sink.events[-1]["error"]
    assert d.stats_payload()["playback"]["state"] == "paused"  # unchanged by the bad one


def test_an_observation_queued_before_fusion_starts_is_published_once_at_the_end():
    """Regression: fusion's first tick was due at once, so an observation already queued
    when its thread started (a fast recogniser, a loaded machine) was published by that
    tick and again at the end of input: with ``mood.interval_s = 60`` a replayed run gave
    one mood or two depending on thread timing (tests/test_daemon_faces.py saw two)."""
    from edge.daemon.stages import Labelled, MoodWorker

    cfg = load_config(None, {"mood.interval_s": 60.0}, env={})
    stop = threading.Event()
    q = DropQueue(8, StageStats("fusion"))
    sink = ListSink()
    obs = Observation.from_probabilities("face", 0.0, {"happy": 0.9, "sad": 0.1})
    mood = MoodWorker(stop, cfg.fusion, cfg.mood, q, sink, StageStats("fusion"), lambda est: None,
                      Replay(fast=True), inputs=1, on_end=stop.set)
    q.push(Labelled(obs, "happy"), True, stop)
    q.push(END, True, stop)
    mood.start()
    mood.join(30)
    assert mood.drained.is_set() and len(sink.moods) == 1, sink.moods
