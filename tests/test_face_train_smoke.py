"""A tiny real FER train → int8 convert → device predict run (a few hundred real crops)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DATA, needs_tf, run_cli
from face_helpers import fer, needs_fer

from edge.manifest import load_manifest, manifest_path
from edge.vision.faces import FaceParams

pytestmark = [pytest.mark.train, needs_fer, needs_tf]


def test_face_train_convert_predict_smoke(tmp_path):
    import cv2

    from convert.face import ROTATION_CANDIDATES, ZOOM_CANDIDATES
    from convert.face import main as convert_main
    from training.face import main as train_main

    run = tmp_path / "run"
    args = ["--data", str(DATA), "--out", str(run), "--max-images", "300", "--widths", "8", "16",
            "--blocks", "1", "1", "--stem", "16", "--threads", "2", "--batch", "32"]
    assert train_main([*args, "--epochs", "2", "--stop-after", "1"]) == 0  # a session's share
    assert [h["epoch"] for h in json.loads((run / "train_meta.json").read_text())["history"]] == [1]
    assert train_main([*args, "--epochs", "2", "--resume"]) == 0  # goes on from the checkpoint
    meta = json.loads((run / "train_meta.json").read_text())
    assert [h["epoch"] for h in meta["history"]] == [1, 2] and (run / "best.keras").exists()
    assert "--stop-after" not in meta["argv"]
    assert meta["images"] == {"train": 300, "val": 300, "test": 300}
    assert FaceParams.from_dict(meta["face"]) == FaceParams()
    assert meta["teacher"] is None

    # distillation: the first run teaches a fresh net; its targets move towards the teacher
    kd = tmp_path / "kd"
    kd_args = [a if a != str(run) else str(kd) for a in args]
    assert train_main([*kd_args, "--epochs", "1", "--teacher", str(run / "best.keras"),
                       "--teacher-weight", "0.4"]) == 0
    teacher = json.loads((kd / "train_meta.json").read_text())["teacher"]
    assert teacher["weight"] == 0.4 and len(teacher["sha256"]) == 64
    assert 0.0 <= teacher["train_accuracy"] <= 1.0 and 1 / 7 <= teacher["mean_max_prob"] <= 1.0

    # weight averaging of snapshots gives a run folder of the same shape
    from training.face_average import main as average_main

    avg = tmp_path / "avg"
    assert average_main(["--data", str(DATA), "--run", str(run), "--out", str(avg), "--snapshots",
                         str(run / "checkpoint.keras"), str(run / "best.keras")]) == 0
    wa = json.loads((avg / "train_meta.json").read_text())["weight_average"]
    assert len(wa["snapshots"]) == 2 and 0.0 <= wa["val_accuracy"] <= 1.0
    assert (avg / "best.keras").stat().st_size > 0
    assert average_main(["--run", str(run), "--out", str(avg), "--snapshots", "nope.keras"]) == 2

    out = tmp_path / "model" / "face_expression.tflite"
    report = tmp_path / "report"
    rc = convert_main(["--run", str(run), "--data", str(DATA), "--out", str(out), "--report",
                       str(report), "--max-images", "300", "--calibration-images", "40"])
    assert rc == 0
    m = load_manifest(manifest_path(out))
    assert m.modality == "face" and m.input.dtype == "int8" and m.output.dtype == "int8"
    p = FaceParams.from_dict(m.features)
    assert m.input.shape == (1, 48, 48, 1)
    assert p == FaceParams(zooms=p.zooms, rotations=p.rotations)
    # views chosen on the validation images (PublicTest)
    assert p.zooms in ZOOM_CANDIDATES and p.rotations in ROTATION_CANDIDATES
    assert len(m.metrics["val_float_view_sweep"]) == len(ZOOM_CANDIDATES) * len(ROTATION_CANDIDATES)
    assert m.metrics["test_int8"]["fer2013_private"]["n"] == 300
    assert 0 < m.metrics["test_int8"]["ferplus_private"]["n"] <= 300
    assert 0.0 <= m.metrics["parity"]["top1_agreement"] <= 1.0
    assert set(m.metrics["baselines"]) == {"hog_logistic_regression", "pca150_logistic_regression"}
    assert "--resume" in m.training["resume_command"]
    for name in ("report.md", "report.json", "confusion_fer2013_private.png", "curves.png"):
        assert (report / name).stat().st_size > 0

    d = fer()
    crop = tmp_path / "crop.png"
    cv2.imwrite(str(crop), d.pixels[np.flatnonzero(d.split == 2)[0]])
    res = run_cli("predict", "--json", "--face-crops", "--face-model", str(out), str(crop))
    assert res.returncode == 0, res.stderr
    obj = json.loads(res.stdout)
    assert obj["modality"] == "face" and obj["faces"] == 1 and obj["label"] in m.labels


def test_mix_teacher_weights_and_checks():
    from training.face import mix_teacher

    y = np.eye(7, dtype=np.float32)[[0, 3]]
    t = np.full((2, 7), 1 / 7, np.float32)
    mixed = mix_teacher(y, t, 0.5)
    assert np.allclose(mixed.sum(axis=1), 1.0) and np.isclose(mixed[0, 0], 0.5 + 0.5 / 7)
    assert np.array_equal(mix_teacher(y, t, 0.0), y)
    with pytest.raises(ValueError, match="teacher-weight"):
        mix_teacher(y, t, 1.5)
    with pytest.raises(ValueError, match="do not match"):
        mix_teacher(y, t[:1], 0.5)
