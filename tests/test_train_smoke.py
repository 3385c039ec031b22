"""A tiny real train → int8 convert → device predict run on a few real clips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DATA, ROOT, needs_data, needs_tf, ravdess_clip, run_cli

from edge.manifest import load_manifest, manifest_path

pytestmark = [pytest.mark.train, needs_data, needs_tf]


def test_train_convert_predict_smoke(tmp_path):
    from convert.speech import main as convert_main
    from training.speech import main as train_main

    run = tmp_path / "run"
    rc = train_main(["--data", str(DATA), "--out", str(run), "--epochs", "2", "--max-clips", "16",
                     "--versions", "2", "--per-clip", "1", "--widths", "8", "16", "16", "16",
                     "--threads", "2", "--pitch"])
    assert rc == 0
    meta = json.loads((run / "train_meta.json").read_text())
    assert len(meta["history"]) == 2 and (run / "best.keras").exists()

    out = tmp_path / "model" / "speech_emotion.tflite"
    report = tmp_path / "report"
    rc = convert_main(["--run", str(run), "--data", str(DATA), "--out", str(out),
                       "--report", str(report), "--max-clips", "16", "--calibration-windows", "50"])
    assert rc == 0
    m = load_manifest(manifest_path(out))
    # the voicing and pitch columns travel through conversion to the device
    assert m.features["pitch"] is True and m.input.shape[-1] == m.features["numcep"] + 2
    # the input BatchNorm moved into the features' per-column map
    assert len(m.features["column_scale"]) == len(m.features["column_offset"]) == m.input.shape[-1]
    assert m.input.dtype == "int8" and m.metrics["test_int8"]["ravdess"]["n"] > 0
    assert 0.0 <= m.metrics["parity"]["window_top1_agreement"] <= 1.0
    assert set(m.metrics["baselines"]) == {"logistic_regression", "random_forest", "svm_rbf"}
    for name in ("report.md", "report.json", "confusion_ravdess.png", "curves.png"):
        assert (report / name).stat().st_size > 0

    res = run_cli("predict", "--json", "--speech-model", str(out), str(ravdess_clip(19, "03")))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["modality"] == "speech"


def test_moving_the_input_batchnorm_keeps_the_function_and_refines_the_int8_input():
    """convert.speech.move_input_bn: same float outputs on real windows; the int8 input
    step shrinks from the raw cepstra's range to the standardised columns'."""
    from convert.speech import move_input_bn
    from convert.tflite import to_int8_tflite
    from edge.audio import features as F
    from edge.audio.sources import load_audio
    from training.models import speech_tcn

    p = F.FeatureParams(pitch=True)
    clips = [ravdess_clip(1, e) for e in ("02", "03", "05", "06")]
    x = np.concatenate([F.normalise(F.windows(F.mfcc(load_audio(c, p.sample_rate), p), p), p)
                        for c in clips])
    model = speech_tcn(p.window_frames, p.n_features, 8, widths=(8, 8, 8, 8))
    bn = model.get_layer("in_bn")
    gamma, beta = np.linspace(0.8, 1.2, p.n_features), np.linspace(-0.1, 0.1, p.n_features)
    bn.set_weights([gamma, beta, x.mean(axis=(0, 1)), x.var(axis=(0, 1))])  # trained-like stats
    moved, q = move_input_bn(model, p)
    assert p.column_scale is None and len(q.column_scale) == p.n_features
    y = F.normalise(F.windows(F.mfcc(load_audio(clips[0], p.sample_rate), p), p), q)
    ref = model.predict(x[: len(y)], verbose=0)
    np.testing.assert_allclose(moved.predict(y, verbose=0), ref, atol=2e-5)
    assert move_input_bn(moved, q) == (moved, q)  # nothing left to move

    from ai_edge_litert.interpreter import Interpreter

    def input_scale(m, reps):
        return Interpreter(model_content=to_int8_tflite(m, reps)).get_input_details()[0][
            "quantization"][0]

    raw = input_scale(model, [w[None] for w in x[::4]])
    std = input_scale(moved, [w[None] for w in F.normalise(
        F.windows(F.mfcc(load_audio(clips[1], p.sample_rate), p), p), q)])
    assert std < raw / 5, (raw, std)


def test_mixup_and_weight_averaging_smoke(tmp_path):
    """The optional regularisers run end to end: the averaged weights are the model."""
    from training.speech import main as train_main

    run = tmp_path / "run"
    rc = train_main(["--data", str(DATA), "--out", str(run), "--epochs", "3", "--max-clips", "12",
                     "--versions", "1", "--per-clip", "1", "--widths", "8", "8", "8", "8",
                     "--threads", "2", "--mixup", "0.2", "--swa-start", "0.3", "--final"])
    assert rc == 0
    meta = json.loads((run / "train_meta.json").read_text())
    assert meta["weight_average"] == {"epochs": 2, "val": None}
    assert (run / "best.keras").exists()


def test_distilling_from_teacher_runs_smoke_and_refuses_a_teacher_of_other_outputs(tmp_path):
    """--teachers: a run learns from other runs' networks on its own augmented windows
    (recorded with their checksums); a teacher with other outputs is refused by name."""
    from training.speech import main as train_main

    tiny = ["--data", str(DATA), "--epochs", "2", "--max-clips", "12", "--versions", "1",
            "--per-clip", "1", "--widths", "8", "8", "8", "8", "--threads", "2", "--final"]
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    assert train_main([*tiny, "--out", str(teacher)]) == 0
    assert train_main([*tiny, "--out", str(student), "--seed", "7", "--teachers", str(teacher),
                       "--teacher-weight", "0.7"]) == 0
    meta = json.loads((student / "train_meta.json").read_text())
    assert meta["teachers"]["runs"] == [str(teacher)] and meta["teachers"]["weight"] == 0.7
    assert len(meta["teachers"]["sha256"][0]) == 64
    other = tmp_path / "other"  # a run of another label set
    other.mkdir()
    (other / "train_meta.json").write_text(json.dumps({**meta, "outputs": ["neutral", "happy"]}))
    with pytest.raises(SystemExit, match=f"--teachers {other}: outputs \\['neutral', 'happy'\\]"):
        train_main([*tiny, "--out", str(tmp_path / "s2"), "--teachers", str(other)])


def test_teacher_targets_mix_over_each_rows_allowed_classes():
    import numpy as np

    from training.speech import masked_targets, mix_teachers

    masks = np.array([[1, 1, 0, 1], [1, 0, 1, 0], [0, 0, 0, 0]], np.float32)
    yt = masked_targets(np.array([0, 2, 0]), masks, smoothing=0.0)
    teacher = np.array([[0.1, 0.2, 0.6, 0.1], [0.25] * 4, [0.3, 0.3, 0.2, 0.2]], np.float32)
    out = mix_teachers(yt, teacher, 0.5)
    np.testing.assert_allclose(out[0, :4], [0.5 + 0.5 * 0.25, 0.5 * 0.5, 0, 0.5 * 0.25], atol=1e-6)
    np.testing.assert_allclose(out[1, :4], [0.25, 0, 0.75, 0], atol=1e-6)
    assert not out[2].any()  # a row that supervises no class teaches nothing
    np.testing.assert_array_equal(out[:, 4:], masks)
    np.testing.assert_array_equal(mix_teachers(yt, teacher, 0.0), yt)
    with pytest.raises(ValueError, match="teacher-weight"):
        mix_teachers(yt, teacher, 1.5)


def test_mixup_mixes_inputs_targets_and_weights_alike():
    import numpy as np

    from training.speech import mixup
    from training.swa import WeightAverage

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5, 3)).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 64)]
    w = rng.uniform(0.5, 2, 64).astype(np.float32)
    xm, ym, wm = mixup(x, y, w, 0.2, np.random.default_rng(1))
    np.testing.assert_allclose(ym.sum(axis=1), 1, atol=1e-6)
    assert ym.max(axis=1).min() >= 0.5  # each window keeps most of itself
    assert wm.min() >= w.min() - 1e-6 and wm.max() <= w.max() + 1e-6
    assert not np.allclose(xm, x)
    avg = WeightAverage()
    for k in (1.0, 2.0, 6.0):
        avg.add([np.full(3, k, np.float32)])
    np.testing.assert_allclose(avg.weights()[0], 3.0)


def test_unknown_label_folder_is_named(tmp_path):
    from training.datasets import DatasetError, read_label_folders

    (tmp_path / "happy").mkdir()
    (tmp_path / "bored").mkdir()
    with pytest.raises(DatasetError, match="bored.*unknown label folder"):
        read_label_folders(tmp_path)


def test_validation_actors_move_within_1_to_18_only():
    from training.datasets import RAVDESS_VAL, by_split, check_val_actors, load_corpora

    clips = load_corpora(DATA, ["ravdess"])
    fixed = by_split(clips)
    fold = by_split(clips, check_val_actors([1, 2, 3, 4, 5, 6]))
    actors = {k: {int(c.speaker.split("-")[1]) for c in v} for k, v in fold.items()}
    assert actors["val"] == set(range(1, 7)) and actors["test"] == set(range(19, 25))
    assert actors["train"] == set(range(7, 19))
    assert {int(c.speaker.split("-")[1]) for c in fixed["val"]} == set(RAVDESS_VAL)
    for bad in ([19], [0, 3], []):
        with pytest.raises(ValueError, match="among 1-18"):
            check_val_actors(bad)


def test_train_actors_keep_the_lowest_numbered_ravdess_actors_only():
    from training.datasets import by_split, check_val_actors, first_ravdess_actors, load_corpora

    train = by_split(load_corpora(DATA, ["ravdess", "emodb"]), check_val_actors([1, 2, 3]))["train"]
    kept = first_ravdess_actors(train, 6)
    assert {c.speaker for c in kept if c.corpus == "ravdess"} == {
        f"ravdess-{a:02d}" for a in range(4, 10)}
    emodb = [c for c in train if c.corpus == "emodb"]
    assert emodb and [c for c in kept if c.corpus == "emodb"] == emodb
    for bad in (0, 16):
        with pytest.raises(ValueError, match="expected 1 to 15 RAVDESS training actors"):
            first_ravdess_actors(train, bad)


def test_kfold_runs_each_fold_once_and_summarises(tmp_path):
    from training.kfold import FOLDS, main, summary

    out = tmp_path / "kfold"
    tiny = ["--epochs", "2", "--max-clips", "8", "--versions", "1", "--per-clip", "1",
            "--widths", "8", "8", "8", "8", "--data", str(DATA)]
    assert main(["run", "--out", str(out), "--name", "tiny", "--", *tiny]) == 0
    metas = [json.loads((out / f"tiny_a{f[0]}" / "train_meta.json").read_text()) for f in FOLDS]
    assert [m["ravdess_val_actors"] for m in metas] == [list(f) for f in FOLDS]
    stamp = [(out / f"tiny_a{f[0]}" / "train_meta.json").stat().st_mtime_ns for f in FOLDS]
    assert main(["run", "--out", str(out), "--name", "tiny", "--", *tiny]) == 0  # all done
    assert stamp == [(out / f"tiny_a{f[0]}" / "train_meta.json").stat().st_mtime_ns for f in FOLDS]

    res = summary(out, ["tiny"], last=2)["configs"]["tiny"]
    assert res["complete"] and len(res["folds"]) == 3
    first = res["folds"]["actors_1-6"]
    expect = sum(h["val_uar_ravdess"] for h in metas[0]["history"]) / 2
    assert first["epochs"] == [1, 2] and abs(first["ravdess"] - expect) < 1e-4
    assert abs(res["mean"]["ravdess"] - sum(
        s["ravdess"] for s in res["folds"].values()) / 3) < 1e-4


def test_thread_pools_set_twice_in_one_process_warn_instead_of_failing(caplog):
    import tensorflow as tf

    from training.threads import set_threads

    set_threads(2)
    assert float(tf.reduce_sum(tf.ones(3))) == 3.0  # TensorFlow has now fixed its pools
    set_threads(3)
    assert "--threads 3 not applied" in caplog.text


def test_gradient_reversal_flips_and_scales_the_speaker_gradient():
    """Forward the identity; backward −strength × the gradient a plain head would give."""
    import keras
    import tensorflow as tf

    from training.models import speech_tcn, with_speaker_adversary

    keras.utils.set_random_seed(3)
    model = speech_tcn(20, 6, 8, widths=(4, 4, 4, 4))
    trainer, reversal = with_speaker_adversary(model, 5)
    x = tf.random.normal((6, 20, 6))
    spk = tf.constant([0, 1, 2, 3, 4, 0])
    w = model.get_layer("conv3").kernel.value  # the tf.Variable under the Keras one

    def speaker_grad(strength):
        reversal.strength.assign(strength)
        with tf.GradientTape() as tape:
            emo, who = trainer(x, training=False)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(spk, who))
        np.testing.assert_allclose(emo.numpy(), model(x, training=False).numpy(), atol=1e-6)
        return tape.gradient(loss, w).numpy()

    plain = speaker_grad(-1.0)  # −(−1) = +1: the gradient without reversal
    assert np.abs(plain).max() > 0
    np.testing.assert_allclose(speaker_grad(0.5), -0.5 * plain, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(speaker_grad(0.0), 0 * plain, atol=1e-9)


def test_speaker_adversary_smoke_and_ramp(tmp_path):
    from training.speech import adversary_strength, speaker_ids
    from training.speech import main as train_main

    assert adversary_strength(0, 50, 0.3) == 0.0
    ramp = [adversary_strength(e, 50, 0.3) for e in range(50)]
    assert all(a < b for a, b in zip(ramp, ramp[1:])) and 0.29 < ramp[-1] < 0.3
    run = tmp_path / "run"
    rc = train_main(["--data", str(DATA), "--out", str(run), "--epochs", "2", "--max-clips", "12",
                     "--versions", "1", "--per-clip", "2", "--widths", "8", "8", "8", "8",
                     "--threads", "2", "--speaker-adversary", "0.3", "--weight-decay", "0.05",
                     "--vtlp", "0.9", "1.1"])
    assert rc == 0
    meta = json.loads((run / "train_meta.json").read_text())
    assert meta["args"]["weight_decay"] == 0.05 and meta["args"]["vtlp"] == [0.9, 1.1]
    assert [h["adversary_strength"] for h in meta["history"]] == [0.0, round(ramp[25], 4)]
    assert all(h["speaker_loss"] > 0 for h in meta["history"])
    import keras  # the saved model is the plain emotion net, without the speaker head

    saved = keras.models.load_model(run / "best.keras")
    assert [o.shape[-1] for o in saved.outputs] == [8]
    assert train_main(["--data", str(DATA), "--out", str(run), "--speaker-adversary", "0.3",
                       "--mixup", "0.2"]) == 2
    from training.datasets import Clip

    ids = speaker_ids([Clip(tmp_path, "sad", "a", "ravdess"), Clip(tmp_path, "sad", "a", "emodb"),
                       Clip(tmp_path, "sad", "a", "ravdess")])
    assert ids.tolist() == [1, 0, 1]


def test_weight_decay_chooses_adamw_and_zero_keeps_adam():
    import keras

    from training.speech import optimizer

    wd = optimizer(1e-3, 0.05)
    assert isinstance(wd, keras.optimizers.AdamW) and wd.weight_decay == 0.05
    plain = optimizer(1e-3)
    assert type(plain) is keras.optimizers.Adam and not plain.weight_decay


def test_speed_range_sets_the_augmented_copies_speed():
    from training.speech import augment

    x = np.sin(np.arange(16000) * 0.05).astype(np.float32) * 0.5
    rng = np.random.default_rng(0)
    assert len(augment(x, rng, (1.25, 1.25))) == 12800
    assert len(augment(x, rng, (0.8, 0.8))) == 20000
    assert 14545 <= len(augment(x, rng)) <= 17778  # the default 0.9-1.1


@pytest.mark.parametrize("args, message", [
    (["--speed-range", "1.2", "0.9"], "--speed-range: expected 0.5 <= LO <= HI <= 2"),
    (["--train-actors", "-1"], "--train-actors: expected >= 0"),
    (["--vtlp", "1.1", "0.9"], "--vtlp: expected 0.7 <= LO <= HI <= 1.4"),
])
def test_bad_speed_range_or_train_actors_are_refused_by_name(args, message, tmp_path, capsys):
    from training.speech import main as train_main

    assert train_main(["--data", str(DATA), "--out", str(tmp_path / "run"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_room_recipe_smoke_masked_corpora_no_speech_output_to_the_device(tmp_path, monkeypatch):
    """Four corpora (masked loss), rooms and music in training, a no-speech output: the
    converted model carries its gate, room figures land in the manifest, predict runs."""
    from convert.speech import main as convert_main
    from training.speech import main as train_main

    run = tmp_path / "run"
    rc = train_main(["--data", str(DATA), "--corpora", "ravdess", "emodb", "ased", "nemo",
                     "--out", str(run), "--epochs", "1", "--max-clips", "12", "--versions", "2",
                     "--per-clip", "1", "--widths", "8", "8", "8", "8", "--threads", "2",
                     "--rooms", "--no-speech", "--noise-clips", "3", "--music-versions", "1",
                     "--corpus-windows", "6"])
    assert rc == 0
    meta = json.loads((run / "train_meta.json").read_text())
    assert meta["outputs"][-1] == "no_speech" and len(meta["outputs"]) == 9
    rec = meta["history"][0]
    assert {"val_uar_ravdess_room_noise15", "val_uar_ravdess_room_music10",
            "val_passed_music_only", "val_kept_clean"} <= set(rec)

    out = tmp_path / "model" / "speech_emotion.tflite"
    rc = convert_main(["--run", str(run), "--data", str(DATA), "--out", str(out), "--max-clips", "8",
                       "--calibration-windows", "20", "--no-baselines", "--no-speech-threshold", "0.4"])
    assert rc == 0
    m = load_manifest(manifest_path(out))
    assert m.gate == {"no_speech_output": True, "threshold": 0.4} and m.output.shape[-1] == 9
    room = m.metrics["room_test_int8"]
    # the test rooms of four seeds (session 20's protocol): each figure the mean of the seeds'
    assert room["seeds"] == [2002, 2004, 2006, 2008] and 0.0 <= room["music_windows_passed"] <= 1.0
    assert sorted(room["per_seed"]) == ["2002", "2004", "2006", "2008"]
    for k in ("room_noise15_uar", "room_music10_uar", "music_windows_passed"):
        assert room[k] == pytest.approx(np.mean([f[k] for f in room["per_seed"].values()]), abs=1e-4)
    assert m.metrics["room_val_int8"] == {} or m.metrics["room_val_int8"]["seeds"] == [1001]
    assert room["no_speech_threshold"] == 0.4
    # the sweep at the manifest's threshold gives the rates the conversion recorded
    from edge.audio.features import FeatureParams
    from edge.audio.vad import VadParams
    from edge.runtime import load_model
    from training import room_eval
    from training.datasets import by_split, load_corpora
    from training.speech import load_signals

    model = load_model(out, "speech")
    p = FeatureParams.from_dict(m.features)
    from convert.speech import subsample

    corpora = ["ravdess", "emodb", "ased", "nemo"]
    test = subsample(by_split([c for c in load_corpora(DATA, corpora) if c.label]), 8)["test"]
    assert room["clips"] == sum(c.corpus == "ravdess" for c in test)
    songs = [c for c in room_eval_music(DATA, "test")][: 2]
    sweep = room_eval.gate_sweep(model.predict, test, load_signals(test, 16000),
                                 load_signals(songs, 16000), 2002, p, VadParams(), list(m.labels),
                                 [0.9, 0.4, 0.1])
    at, seed2002 = sweep[1], room["per_seed"]["2002"]
    assert at["music_windows_passed"] == pytest.approx(seed2002["music_windows_passed"], abs=1e-4)
    assert at["speech_windows_kept_room_noise15"] == pytest.approx(
        seed2002["speech_windows_kept_room_noise15"], abs=1e-4)
    passed = [r["music_windows_passed"] for r in sweep]
    assert passed == sorted(passed, reverse=True)  # a lower threshold passes fewer windows
    assert {"room_noise15_met", "music_gate_met", "speech_kept_met"} <= set(m.metrics["target"])
    # the adoption check reads the validation speakers only: no test clip is decoded
    import convert.speech as CS
    from training.datasets import split_of

    decoded = []
    real_load = CS.load_signals

    def spy(clips, sr):
        decoded.extend(split_of(c) for c in clips)
        return real_load(clips, sr)

    monkeypatch.setattr(CS, "load_signals", spy)
    check = CS.convert(CS.parser().parse_args(
        ["--run", str(run), "--data", str(DATA), "--out", str(tmp_path / "cand" / "s.tflite"),
         "--max-clips", "8", "--calibration-windows", "20", "--val-only"]))["val_parity"]
    assert set(decoded) == {"train", "val"} and check["model_bytes"] > 0
    decoded.clear()
    only = CS.convert(CS.parser().parse_args(
        ["--run", str(run), "--data", str(DATA), "--out", str(tmp_path / "cand" / "i.tflite"),
         "--max-clips", "8", "--calibration-windows", "20", "--int8-only"]))
    assert set(decoded) == {"train", "val"}
    assert only["model_bytes"] == (tmp_path / "cand" / "i.tflite").stat().st_size
    assert set(check["accuracy_delta_float_minus_int8"]) == set(check["val_int8"]) and check["windows"] > 0
    assert "ASED" in m.licence and "nEMO" in m.licence
    res = run_cli("predict", "--json", "--speech-model", str(out), str(ravdess_clip(19, "03")))
    assert res.returncode == 0, res.stderr
    obj = json.loads(res.stdout)
    assert obj["label"] is None or set(obj["probabilities"]) == set(meta["labels"])


def room_eval_music(data, split):
    from training.datasets import fourq_split, read_4q

    return [c for c in read_4q(data / "music" / "4q") if fourq_split(c.artist) == split]


def test_leave_one_corpus_out_reuses_the_banks_and_scores_the_left_out_corpus(tmp_path, capsys):
    """training.speech --banks-from keeps only --corpora's banks (and the no-speech ones);
    training.loco scores the run on every clip of the corpus it left out, 4 classes."""
    from training.loco import left_out_of
    from training.loco import main as loco_main
    from training.speech import main as train_main

    tiny = ["--epochs", "1", "--max-clips", "12", "--versions", "1", "--per-clip", "1",
            "--widths", "8", "8", "8", "8", "--threads", "2", "--final"]
    full, loco = tmp_path / "full", tmp_path / "loco"
    assert train_main(["--data", str(DATA), "--corpora", "ravdess", "emodb", "--out", str(full),
                       "--resume", *tiny]) == 0
    assert (full / "banks.pkl").exists()
    assert train_main(["--data", str(DATA), "--corpora", "ravdess", "--out", str(loco),
                       "--banks-from", str(full / "banks.pkl"), *tiny]) == 0
    meta = json.loads((loco / "train_meta.json").read_text())
    full_meta = json.loads((full / "train_meta.json").read_text())
    assert set(full_meta["banks_per_corpus"]) == {"ravdess", "emodb"}
    assert meta["banks_per_corpus"] == {"ravdess": full_meta["banks_per_corpus"]["ravdess"]}
    assert left_out_of(meta) == "emodb"

    assert loco_main(["--run", str(loco), "--data", str(DATA), "--max-clips", "20"]) == 0
    res = json.loads(capsys.readouterr().out)
    emodb = res["per_corpus"]["emodb"]
    assert emodb["n"] > 0 and set(emodb["recall"]) == {"neutral", "happy", "sad", "angry"}
    assert 0.0 <= emodb["uar_4class"] <= 1.0 and res["mean_uar_4class"] == emodb["uar_4class"]
    from training.report import loco_section

    rows = [r for r in loco_section(res) if r.startswith("| emodb |")]
    assert rows and f"{emodb['uar_4class']:.3f}" in rows[0]
    # recorded into a model's manifest: one corpus of three left out does not meet the bar
    import shutil

    from conftest import SHIPPED_SPEECH

    model = tmp_path / "m" / "speech_emotion.tflite"
    model.parent.mkdir()
    shutil.copy(SHIPPED_SPEECH, model)
    shutil.copy(manifest_path(SHIPPED_SPEECH), manifest_path(model))
    report = tmp_path / "report"
    report.mkdir()
    shutil.copy(ROOT / "docs" / "models" / "speech" / "report.json", report / "report.json")
    assert loco_main(["--run", str(loco), "--data", str(DATA), "--max-clips", "20",
                      "--report", str(report)]) == 2
    assert "only with --write-manifest" in capsys.readouterr().err
    assert loco_main(["--run", str(loco), "--data", str(DATA), "--max-clips", "20",
                      "--write-manifest", str(model), "--report", str(report)]) == 0
    capsys.readouterr()
    m = load_manifest(manifest_path(model))
    assert m.metrics["leave_one_corpus_out"] == res
    assert m.metrics["target"]["leave_one_corpus_out_met"] is False
    # the report gets the section and the command that wrote it
    assert json.loads((report / "report.json").read_text())["loco"] == res
    md = (report / "report.md").read_text()
    assert [r for r in md.splitlines() if r.startswith("| emodb |") and f"{emodb['uar_4class']:.3f}" in r]
    assert f"training.loco --run {loco}" in md

    # refused by name: banks without the asked corpus, a --final run's banks without
    # --final, a corpus it trained on
    with pytest.raises(SystemExit, match="has no banks of \\['ased'\\]"):
        train_main(["--data", str(DATA), "--corpora", "ased", "--out", str(tmp_path / "x"),
                    "--banks-from", str(full / "banks.pkl"), *tiny])
    assert train_main(["--data", str(DATA), "--out", str(tmp_path / "y"),
                       "--banks-from", str(full / "banks.pkl")]) == 2
    assert "hold validation speakers" in capsys.readouterr().err
    assert loco_main(["--run", str(full), "--data", str(DATA)]) == 2
    assert "expected one corpus left out" in capsys.readouterr().err


def test_arousal_aux_trains_baved_through_a_head_the_saved_model_does_not_have(tmp_path):
    """--arousal-aux: BAVED's training speakers join with their arousal levels (no emotion),
    the arousal loss is logged, the saved network keeps its emotion outputs only; a
    validation run's banks serve another validation run through --banks-from."""
    import keras

    from training.speech import main as train_main

    tiny = ["--epochs", "1", "--max-clips", "12", "--versions", "1", "--per-clip", "1",
            "--widths", "8", "8", "8", "8", "--threads", "2"]
    base, aux = tmp_path / "base", tmp_path / "aux"
    assert train_main(["--data", str(DATA), "--corpora", "ravdess", "--out", str(base),
                       "--resume", *tiny]) == 0
    # regression: while the base run still trains it has no train_meta.json yet, and its
    # banks were refused as a --final run's
    (base / "train_meta.json").unlink()
    assert train_main(["--data", str(DATA), "--corpora", "ravdess", "--out", str(aux),
                       "--banks-from", str(base / "banks.pkl"), "--arousal-aux",
                       "--speaker-adversary", "0.3", "--resume", *tiny]) == 0
    meta = json.loads((aux / "train_meta.json").read_text())
    assert meta["banks_per_corpus"]["baved"] == 12
    assert meta["args"]["arousal_aux"] is True
    rec = meta["history"][-1]
    assert np.isfinite(rec["arousal_loss"]) and np.isfinite(rec["loss"]) and "speaker_loss" in rec
    model = keras.models.load_model(aux / "best.keras", compile=False)
    assert model.output_shape == (None, 8)
    assert (aux / "banks_arousal.pkl").exists()


def test_separable_tcn_has_fewer_weights_per_width_and_converts_to_int8(tmp_path):
    from convert.speech import main as convert_main
    from training import models
    from training.speech import main as train_main

    full = models.speech_tcn(200, 42, 9, widths=(32, 64, 64, 64))
    sep = models.speech_tcn(200, 42, 9, widths=(32, 64, 64, 64), separable=True)
    kinds = [type(sep.get_layer(f"conv{i}")).__name__ for i in range(4)]
    assert kinds == ["Conv1D", "SeparableConv1D", "SeparableConv1D", "SeparableConv1D"]
    assert sep.count_params() < 0.35 * full.count_params()
    assert sep.output_shape == full.output_shape

    run = tmp_path / "run"
    assert train_main(["--data", str(DATA), "--out", str(run), "--epochs", "1", "--max-clips", "8",
                       "--versions", "1", "--per-clip", "1", "--arch", "tcn-sep",
                       "--widths", "8", "16", "16", "16", "--threads", "2"]) == 0
    out = tmp_path / "model" / "speech_emotion.tflite"
    assert convert_main(["--run", str(run), "--data", str(DATA), "--out", str(out), "--no-baselines",
                         "--max-clips", "8", "--calibration-windows", "20"]) == 0
    from edge.runtime import interpreter_class

    ops = {d["op_name"] for d in interpreter_class()[0](model_path=str(out))._get_ops_details()}
    assert "DEPTHWISE_CONV_2D" in ops, ops
    res = run_cli("predict", "--json", "--speech-model", str(out), str(ravdess_clip(19, "03")))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["modality"] == "speech"


def test_room_seeds_rebuilds_a_runs_last_epoch_with_its_speaker_head(tmp_path):
    """training.room_seeds scores a run's last epoch: with one epoch it is the run's best."""
    import keras

    from training.room_seeds import last_epoch_model
    from training.speech import main as train_main

    run = tmp_path / "run"
    assert train_main(["--data", str(DATA), "--out", str(run), "--epochs", "1", "--max-clips", "8",
                       "--versions", "1", "--per-clip", "1", "--arch", "tcn-sep",
                       "--speaker-adversary", "0.3", "--widths", "8", "16", "16", "16", "--threads", "2",
                       "--pitch"]) == 0
    model, p, labels = last_epoch_model(run)
    best = keras.models.load_model(run / "best.keras", compile=False)
    x = np.random.default_rng(0).standard_normal((3, p.window_frames, p.n_features)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), best.predict(x, verbose=0), atol=1e-5)
    assert labels == json.loads((run / "train_meta.json").read_text())["labels"]


def test_room_seeds_scores_the_mean_of_the_runs_as_the_ensemble(tmp_path, capsys):
    """--ensemble adds the runs' mean output as one more run: of two copies of a run it is
    that run, figure for figure."""
    import shutil

    from training.room_seeds import main as seeds_main
    from training.speech import main as train_main

    run = tmp_path / "run"
    assert train_main(["--data", str(DATA), "--out", str(run), "--epochs", "1", "--max-clips", "8",
                       "--versions", "1", "--per-clip", "1", "--widths", "8", "8", "8", "8",
                       "--threads", "2"]) == 0
    shutil.copytree(run, tmp_path / "copy")
    assert seeds_main(["--runs", str(run), str(tmp_path / "copy"), "--seeds", "1001",
                       "--conditions", "room_noise15", "--data", str(DATA), "--ensemble"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(out["runs"]) == sorted([str(run), str(tmp_path / "copy"), "ensemble"])
    assert out["runs"]["ensemble"]["room_noise15"] == out["runs"][str(run)]["room_noise15"]
