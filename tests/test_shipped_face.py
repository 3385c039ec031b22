"""The shipped int8 face model scores on FER-2013 PrivateTest what its manifest says."""

from __future__ import annotations

import pytest
from conftest import ROOT
from face_helpers import fer, needs_fer

from edge.manifest import load_manifest, manifest_path
from edge.runtime import load_model
from edge.vision.faces import FaceParams

SHIPPED_FACE = ROOT / "models_tflite" / "face_expression.tflite"
pytestmark = pytest.mark.skipif(not SHIPPED_FACE.is_file(), reason="no shipped face model yet")


def test_shipped_manifest_is_complete():
    m = load_manifest(manifest_path(SHIPPED_FACE))
    assert m.modality == "face" and m.input.dtype == "int8" and m.output.dtype == "int8"
    assert m.input.shape[1:] == (48, 48, 1) and m.input.scale > 0 and m.output.scale > 0
    p = FaceParams.from_dict(m.features)
    assert p.crop_size == 48 and p.grayscale
    for key in ("data", "split", "train_command", "resume_command", "convert_command"):
        assert key in m.training
    assert {"fer2013_private", "ferplus_private"} <= set(m.metrics["test_int8"])
    assert m.licence and "FER-2013" in m.licence
    size = SHIPPED_FACE.stat().st_size
    assert size == m.metrics["model_bytes"] and size <= 1024 * 1024  # ≤ 1 MB


@needs_fer
def test_shipped_model_accuracy_on_private_test():
    from training.face import evaluate, probs_for
    from training.fer import TEST

    model = load_model(SHIPPED_FACE, "face")
    manifest = model.manifest
    p = FaceParams.from_dict(manifest.features)
    test = fer().part(TEST)
    got = evaluate(probs_for(model.predict, test.pixels, p), test)
    for ours, theirs in (("fer", "fer2013_private"), ("ferplus", "ferplus_private")):
        want = manifest.metrics["test_int8"][theirs]
        assert got[ours]["n"] == want["n"]
        assert got[ours]["accuracy"] == pytest.approx(want["accuracy"], abs=0.003), theirs
        assert got[ours]["macro_f1"] == pytest.approx(want["macro_f1"], abs=0.005), theirs
    assert got["fer"]["n"] == 3589
    # 7 classes, majority class 'happy' is 25 %, HOG + logistic regression 46.5 %.  The
    # issue's target is 0.70 (int8, PrivateTest): the shipped model has 0.7055.
    assert got["fer"]["accuracy"] >= 0.70
    assert manifest.metrics["target"]["met"] is True
    assert p.views == len(p.zooms) * len(p.rotations) * 2
    assert manifest.metrics["parity"]["accuracy_delta_float_minus_int8"]["fer"] <= 0.01
