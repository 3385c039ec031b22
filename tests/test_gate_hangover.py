"""The no-speech gate's hangover (edge.audio.speech.Hangover): after a window the no-speech
output refused, the next voiced windows are refused too; a pause ends it; a clip and a
stream of the same windows are gated alike."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import DATA, ROOT, needs_data, ravdess_clip

from edge.audio import features as F
from edge.audio.sources import decode_excerpt, load_audio
from edge.audio.speech import SPEECH, Hangover, gate, speech_recogniser
from edge.manifest import manifest_path

SHIPPED = ROOT / "models_tflite" / "speech_emotion.tflite"


def probs(no_speech: list[float]) -> np.ndarray:
    ns = np.asarray(no_speech, np.float32)[:, None]
    return np.concatenate([(1 - ns) / 2, (1 - ns) / 2, ns], axis=1)


def test_the_windows_after_a_refused_one_are_refused_and_a_pause_ends_it():
    p = probs([0.1, 0.9, 0.1, 0.1, 0.1, 0.1])
    voiced = np.ones(6, bool)
    assert gate(p, voiced, 2, 0.5)[1].tolist() == [True, False, True, True, True, True]
    assert gate(p, voiced, 2, 0.5, hangover=2)[1].tolist() == [True, False, False, False, True, True]
    # an unvoiced window (a pause) ends the hangover: the next voiced window is heard
    paused = np.array([True, True, False, True, True, True])
    assert gate(p, paused, 2, 0.5, hangover=2)[1].tolist() == [True, False, False, True, True, True]
    # a refusal inside the hangover starts it again
    again = probs([0.9, 0.1, 0.9, 0.1, 0.1, 0.1])
    assert gate(again, voiced, 2, 0.5, hangover=2)[1].tolist() == [False, False, False, False, False, True]


def test_a_hangover_object_steps_as_the_gate_does():
    h = Hangover(1)
    assert [h.step(v, r) for v, r in [(True, False), (True, True), (True, False), (True, False),
                                        (False, True), (True, False)]] == [True, False, False, True,
                                                                           False, True]


def with_hangover(folder, windows: int):
    """The shipped speech model, its gate's hangover set to ``windows`` (0: none)."""
    folder.mkdir(exist_ok=True)
    dst = folder / "speech.tflite"
    shutil.copy(SHIPPED, dst)
    data = json.loads(manifest_path(SHIPPED).read_text())
    gate = {k: v for k, v in data["gate"].items() if k != "hangover"}
    data["gate"] = {**gate, **({"hangover": windows} if windows else {})}
    manifest_path(dst).write_text(json.dumps(data))
    return dst


@pytest.fixture
def hangover_model(tmp_path):
    return with_hangover(tmp_path / "two", 2)


@needs_data
def test_a_stream_of_windows_is_gated_as_the_clip_of_them_is(hangover_model, tmp_path):
    """Real songs, each followed by a real voice: classify_window over a clip's windows, one
    after another, keeps exactly the windows the clip path keeps; on some of them the
    hangover refuses windows the plain gate passes."""
    rec, plain_rec = speech_recogniser(hangover_model), speech_recogniser(with_hangover(tmp_path / "none", 0))
    assert rec.no_speech_hangover == 2 and plain_rec.no_speech_hangover == 0
    p = rec.params
    voice = load_audio(ravdess_clip(19, "05"), p.sample_rate)
    voice = voice[0] if isinstance(voice, tuple) else voice
    songs = [f for q in ("Q1", "Q2") for f in sorted((DATA / "music" / "4q" / q).glob("*.opus"))]
    differed = 0
    for song_path in songs[:12]:
        song = decode_excerpt(song_path, p.sample_rate, 12.0, 5.0)[0]
        signal = np.concatenate([0.3 * song, voice]).astype(np.float32)
        _, kept, _ = rec.clip_windows(signal)
        rec.reset_stream()
        streamed = [rec.classify_window(w).heard == SPEECH for w in F.windows(F.mfcc(signal, p), p)]
        assert streamed == kept.tolist(), song_path.name
        _, plain, _ = plain_rec.clip_windows(signal)
        assert not (kept & ~plain).any()  # the hangover only ever refuses more
        differed += int(plain.sum() > kept.sum())
        if differed >= 2:
            break
    assert differed >= 2, "the hangover changed nothing on the songs tried"
    rec.reset_stream()
    assert rec.stream.left == 0


def test_room_eval_records_a_new_gate_only_with_the_test_figures(hangover_model, capsys):
    from training.room_eval import main

    before = manifest_path(hangover_model).read_text()
    assert main(["--model", str(hangover_model), "--split", "val", "--hangover", "0",
                 "--write-manifest"]) == 2
    assert "a new gate is recorded with the test figures (--split test) only" in capsys.readouterr().err
    assert manifest_path(hangover_model).read_text() == before
    assert main(["--model", str(hangover_model), "--hangover", "21"]) == 2
    assert "--hangover: expected 0..20 windows, got 21" in capsys.readouterr().err
