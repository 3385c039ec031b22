"""The benches compare like with like: the librosa + Keras reference is built in the shape of
the model it is timed against (an untrained copy)."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
from conftest import ROOT, SHIPPED_SPEECH

from edge.manifest import manifest_path


def _bench(name: str):
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_librosa_reference_takes_the_compared_models_shape(tmp_path):
    bench = _bench("bench_librosa")
    m = json.loads(manifest_path(SHIPPED_SPEECH).read_text())
    shape = bench.reference_shape(SHIPPED_SPEECH)
    assert shape["widths"] == m["training"]["train_args"]["widths"]
    # regression: the reference was always the full-convolution TCN, so against the separable
    # model shipped since session 18 it timed a network of several times the work
    assert shape["arch"] == m["training"]["train_args"]["arch"] == "tcn-sep"
    assert (shape["frames"], shape["features"], shape["classes"]) == (200, 42, m["output"]["shape"][-1])
    # a wider model gives a wider reference; a manifest without the widths is refused
    for widths, ok in (([64, 112, 144, 144], True), (None, False)):
        m2 = json.loads(json.dumps(m))
        if widths is None:
            del m2["training"]["train_args"]["widths"]
        else:
            m2["training"]["train_args"]["widths"] = widths
        model = tmp_path / f"m{len(widths or [])}.tflite"
        model.write_bytes(SHIPPED_SPEECH.read_bytes())
        manifest_path(model).write_text(json.dumps(m2))
        if ok:
            assert bench.reference_shape(model)["widths"] == widths
            del m2["training"]["train_args"]["arch"]  # a manifest from before --arch
            manifest_path(model).write_text(json.dumps(m2))
            assert bench.reference_shape(model)["arch"] == "tcn"
        else:
            with pytest.raises(SystemExit, match="widths"):
                bench.reference_shape(model)
