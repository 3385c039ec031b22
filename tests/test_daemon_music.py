"""The daemon hears music through its microphone path: a real song (a 4Q clip of a
validation artist, Ogg Opus, decoded by the daemon's file source) through the shipped
speech model turns ``music_heard`` on in ``…/stats`` and weighs the voice down in fusion
as the hub's ``playback`` command does; real speech does not; a paused microphone
forgets it; ``audio.music.enabled = false`` turns it off."""

from __future__ import annotations

import threading

import pytest
from conftest import DATA, needs_data, ravdess_clip
from test_daemon_support import ListSink, run_to_end

from edge.config import load_config
from edge.daemon import Daemon, RunOptions
from edge.mood.fusion import VOICE


def _song():
    from training.datasets import fourq_split, read_4q

    root = DATA / "music" / "4q"
    if not root.is_dir():
        pytest.skip(f"4Q not found at {root}")
    return next(c.path for c in read_4q(root) if fourq_split(c.artist) == "val")


def _replay(tmp_path, files, **overrides) -> tuple[Daemon, ListSink]:
    cfg = load_config(None, {"daemon.state_dir": str(tmp_path / "state"), "stats.interval_s": 3600.0,
                             **overrides}, env={})
    sink = ListSink()
    d = Daemon(cfg, RunOptions(audio_files=tuple(files), fast=True, exit_when_done=True),
               sink=sink, face=None)
    run_to_end(d)
    d.mood.run_pending()
    return d, sink


@needs_data
def test_a_song_is_heard_as_music_and_weighs_the_voice_down(tmp_path):
    d, sink = _replay(tmp_path, [_song()])
    heard = sink.stats[-1]["music_heard"]
    assert heard["heard"] is True and heard["since"] is not None, heard
    assert sink.stats[-1]["playback"]["state"] == "unknown"  # the hub said nothing
    base = d.config.fusion.reliability_of(VOICE)
    assert d.mood.fuser.params.reliability_of(VOICE) == pytest.approx(
        base * d.config.fusion.music_voice_factor)


@needs_data
def test_speech_in_a_quiet_room_is_not_music_and_the_detector_can_be_turned_off(tmp_path):
    clips = [ravdess_clip(20, e, "02", s, "01") for e in ("01", "03", "05") for s in ("01", "02")]
    d, sink = _replay(tmp_path / "a", clips)
    assert sink.stats[-1]["music_heard"]["heard"] is False
    assert d.mood.fuser.params.reliability_of(VOICE) == d.config.fusion.reliability_of(VOICE)

    d, sink = _replay(tmp_path / "b", [_song()], **{"audio.music.enabled": False})
    assert sink.stats[-1]["music_heard"] is None
    assert d.mood.fuser.params.reliability_of(VOICE) == d.config.fusion.reliability_of(VOICE)


@needs_data
def test_a_paused_microphone_forgets_the_music_it_heard():
    from edge.audio import features as F
    from edge.audio.sources import load_audio
    from edge.audio.speech import speech_recogniser
    from edge.daemon.base import DropQueue, StageStats
    from edge.daemon.clock import Replay
    from edge.daemon.stages import SpeechWorker

    cfg = load_config(None, env={})
    rec = speech_recogniser()
    told: list[bool] = []
    inq, paused = DropQueue(64, StageStats("speech")), threading.Event()
    w = SpeechWorker(rec, cfg.audio.music, told.append, stop=threading.Event(), inq=inq,
                     out=DropQueue(64, StageStats("fusion")), stats=StageStats("speech"),
                     paused=paused, clock=Replay(fast=True))
    x = load_audio(_song(), rec.params.sample_rate)
    for i, win in enumerate(F.windows(F.mfcc(x, rec.params), rec.params)[:30]):
        inq.push((win, float(i)), True, threading.Event())
        w.step()
    assert told == [True] and w.music.on
    paused.set()
    w.step()  # nothing queued: the worker sees the pause
    assert told == [True, False] and not w.music.on
