"""The room simulator, the evaluation rooms, the masked loss and the no-speech gate."""

from __future__ import annotations

import numpy as np
import pytest

from edge.audio.speech import gate
from tests.conftest import DATA, have_module, needs_data

needs_rooms = pytest.mark.skipif(not (have_module("pyroomacoustics") and have_module("scipy")),
                                 reason="needs the [train] extra (pyroomacoustics, scipy)")


def test_gate_keeps_voiced_windows_below_the_no_speech_threshold_and_renormalises():
    probs = np.array([[0.2, 0.2, 0.6], [0.1, 0.1, 0.8], [0.5, 0.3, 0.2]], np.float32)
    voiced = np.array([True, True, False])
    emo, kept = gate(probs, voiced, n_labels=2, no_speech_threshold=0.7)
    assert kept.tolist() == [True, False, False]
    np.testing.assert_allclose(emo[0], [0.5, 0.5])
    np.testing.assert_allclose(emo.sum(axis=1), 1.0, rtol=1e-6)


def test_gate_without_a_no_speech_output_is_the_energy_gate():
    probs = np.full((2, 3), 1 / 3, np.float32)
    emo, kept = gate(probs, np.array([True, False]), n_labels=3, no_speech_threshold=0.5)
    assert kept.tolist() == [True, False]
    assert emo is not None and emo.shape == (2, 3)


@pytest.mark.train
@needs_rooms
def test_training_rooms_reverberate_as_long_and_as_strongly_as_the_image_source_method():
    """The fast training response (image sources to order 12 + statistical tail) has the
    RT60 it was asked for and the same direct-to-reverberant ratio as the full method."""
    import pyroomacoustics as pra

    from training import rooms as R

    rng = np.random.default_rng(3)
    for _ in range(3):
        room = R.random_room(rng, rt60=(0.3, 0.7))
        fast, _ = R.train_rir(room, rng)
        full, _ = R.eval_rir(room)

        def drr(h):
            return 10 * np.log10(np.sum(h[:80] ** 2) / np.sum(h[80:] ** 2))

        assert abs(drr(fast) - drr(full)) < 1.5
        measured = pra.experimental.measure_rt60(fast, fs=R.SR, decay_db=30)
        assert abs(measured - room.rt60) / room.rt60 < 0.25
        # the direct path within 6 ms of the start (2 ms kept + the 40-tap fractional delay):
        # speech windows found on the dry copy stay aligned with the wet one (10 ms frames)
        # (an early reflection may add up to more than the direct sound a little later)
        assert np.max(np.abs(fast[: int(0.006 * R.SR)])) > 0.5 * np.max(np.abs(fast))


@pytest.mark.train
@needs_rooms
def test_scenes_mix_at_the_asked_snr_and_never_clip():
    from training import rooms as R

    rng = np.random.default_rng(0)
    x = (0.5 * np.sin(2 * np.pi * 220 * np.arange(32000) / R.SR)).astype(np.float32)
    z = R.noise("fan", len(x), rng)
    y = R.mix_at(x, z, 10.0)
    snr = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
    assert snr == pytest.approx(10.0, abs=0.01)
    for kind in R.NOISE_KINDS:
        n = R.noise(kind, 8000, rng)
        assert n.dtype == np.float32 and np.std(n) == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(ValueError, match="noise kind 'rain'"):
        R.noise("rain", 100, rng)
    scene = R.Scene(room=R.random_room(rng), noise_kind="hum", noise_snr_db=5, gain_db=20)
    out = scene.render(x, rng)
    assert out.shape == x.shape and np.max(np.abs(out)) <= 0.99 + 1e-6


@pytest.mark.train
@needs_rooms
def test_evaluation_conditions_are_seeded_and_refuse_unknown_names():
    from training import room_eval

    x = [np.random.default_rng(i).standard_normal(16000).astype(np.float32) * 0.1 for i in range(2)]
    a = room_eval.simulate("room_noise15", x, seed=5)
    b = room_eval.simulate("room_noise15", x, seed=5)
    c = room_eval.simulate("room_noise15", x, seed=6)
    np.testing.assert_array_equal(a.signals[1], b.signals[1])
    assert not np.allclose(a.signals[0], c.signals[0])
    assert all(0.3 < r.distance <= 3.0 + 1e-9 for r in a.rooms)
    with pytest.raises(ValueError, match="needs music"):
        room_eval.simulate("room_music10", x, seed=5)
    with pytest.raises(ValueError, match="condition 'kitchen'"):
        room_eval.simulate("kitchen", x, seed=5)


@pytest.mark.train
@pytest.mark.skipif(not have_module("keras"), reason="needs keras")
def test_masked_crossentropy_only_compares_the_corpus_classes():
    """A corpus without class 2 neither teaches nor punishes it: the loss is the same
    whatever the model says about class 2, given the same ratio among the others."""
    from training.speech import masked_crossentropy, masked_targets

    y = np.array([0, 0])
    masks = np.array([[1, 1, 0], [1, 1, 0]], np.float32)
    t = masked_targets(y, masks, smoothing=0.0)
    pred = np.array([[0.6, 0.2, 0.2], [0.3, 0.1, 0.6]], np.float32)  # 3:1 in both rows
    loss = np.asarray(masked_crossentropy(t, pred))
    assert loss[0] == pytest.approx(loss[1], rel=1e-5)
    assert loss[0] == pytest.approx(-np.log(0.75), rel=1e-5)
    smooth = masked_targets(y, masks, smoothing=0.1)
    np.testing.assert_allclose(smooth[0, :3], [0.95, 0.05, 0.0])


@needs_data
def test_new_corpora_are_read_with_their_fixed_speaker_splits():
    from training.datasets import by_split, fourq_split, load_corpora, read_4q

    clips = load_corpora(DATA, ["ased", "nemo"])
    splits = by_split(clips)
    speakers = {k: {c.speaker for c in v} for k, v in splits.items()}
    assert not speakers["train"] & speakers["test"] and not speakers["val"] & speakers["test"]
    assert {"nemo-KD0", "nemo-SM0"} <= speakers["test"] and "ased-05" in speakers["test"]
    assert {c.label for c in clips if c.corpus == "ased"} == {"neutral", "fearful", "happy", "sad", "angry"}
    music = read_4q(DATA / "music" / "4q")
    assert len(music) == 720
    by_artist: dict[str, set] = {}
    for m in music:
        by_artist.setdefault(m.artist, set()).add(fourq_split(m.artist))
    assert all(len(s) == 1 for s in by_artist.values())


def test_bad_corpus_files_are_named(tmp_path):
    from training.datasets import DatasetError, read_ased, read_nemo

    (tmp_path / "ased" / "happy").mkdir(parents=True)
    bad = tmp_path / "ased" / "happy" / "h3-01-01-02.opus"
    bad.write_bytes(b"x")
    with pytest.raises(DatasetError, match="h3-01-01-02.opus: not an ASED name"):
        read_ased(tmp_path / "ased")
    (tmp_path / "nemo" / "bored").mkdir(parents=True)
    (tmp_path / "nemo" / "bored" / "KD0_boredom_1.opus").write_bytes(b"x")
    with pytest.raises(DatasetError, match="unknown nEMO label folder 'bored'"):
        read_nemo(tmp_path / "nemo")


@pytest.mark.train
def test_a_new_gates_test_figures_amend_the_models_report(tmp_path):
    """room_eval --report: the int8 test tables and the test room section replaced, the other
    sections kept, the command extended (training.report.amend_report, shared with loco)."""
    import json
    import shutil

    from tests.conftest import ROOT
    from training.room_eval import update_report

    shutil.copy(ROOT / "docs" / "models" / "speech" / "report.json", tmp_path / "report.json")
    before = json.loads((tmp_path / "report.json").read_text())
    scored = {k: dict(v, uar=0.123) for k, v in before["test"].items()}
    room = {"seeds": [2002, 2004], "room_noise15_uar": 0.456,
            "per_seed": {"2002": {"room_noise15_uar": 0.5}, "2004": {"room_noise15_uar": 0.412}}}
    update_report(tmp_path, scored, room, "m.tflite", 3)
    after = json.loads((tmp_path / "report.json").read_text())
    assert after["test"] == scored
    # the test rooms replaced (a one-seed section of an earlier conversion too), validation kept
    assert [k for k in after["room"] if k.startswith("test")] == ["test (seeds 2002, 2004)"]
    assert after["room"]["test (seeds 2002, 2004)"] == room
    assert [k for k in after["room"] if not k.startswith("test")] == [
        k for k in before["room"] if not k.startswith("test")]
    assert after["command"] == (before["command"] + " && python -m training.room_eval --model m.tflite "
                                f"--split test --hangover 3 --write-manifest --report {tmp_path}")
    assert after["loco"] == before["loco"] and after["parity"] == before["parity"]
    md = (tmp_path / "report.md").read_text()
    assert "| room_noise15_uar | 0.456 |" in md and "0.123" in md
    assert "| room_noise15_uar, seed 2004 | 0.412 |" in md and "per_seed" not in md
