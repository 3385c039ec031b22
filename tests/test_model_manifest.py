"""The device loads only models whose file and feature parameters match their manifest."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil

import numpy as np
import pytest
from conftest import SHIPPED_SPEECH

from edge.audio.speech import SpeechRecogniser
from edge.manifest import ModelError, load_manifest, manifest_path
from edge.runtime import interpreter_class, load_model


@pytest.fixture
def model_copy(tmp_path):
    dst = tmp_path / "speech.tflite"
    shutil.copy(SHIPPED_SPEECH, dst)
    shutil.copy(manifest_path(SHIPPED_SPEECH), manifest_path(dst))
    return dst


def edit_manifest(path, **changes):
    m = manifest_path(path)
    data = json.loads(m.read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    m.write_text(json.dumps(data))


def test_shipped_manifest_is_complete():
    m = load_manifest(manifest_path(SHIPPED_SPEECH))
    assert m.modality == "speech" and m.input.dtype == "int8" and m.output.dtype == "int8"
    assert m.input.scale > 0 and m.output.scale > 0
    for key in ("sample_rate", "winlen", "winstep", "numcep", "normalisation", "window_s"):
        assert key in m.features
    for key in ("data", "split", "train_command", "convert_command"):
        assert key in m.training
    # the command reproduces the run: every flag it names is one training.speech takes
    assert " None" not in m.training["train_command"]
    assert ("--pitch" in m.training["train_command"].split()) == m.features["pitch"]
    assert "ravdess" in m.metrics["test_int8"] and "emodb" in m.metrics["test_int8"]
    assert m.licence and "RAVDESS" in m.licence
    assert SHIPPED_SPEECH.stat().st_size <= 300 * 1024  # issue 19's bound


def test_the_recorded_train_command_parses_back_to_the_recorded_args():
    # an option recorded as "" (--banks-from not given) was written as a bare flag, so the
    # command read the next flag as its value
    import shlex

    from convert.speech import train_command
    from training.speech import parser

    m = load_manifest(manifest_path(SHIPPED_SPEECH))
    recorded = m.training["train_args"]
    args = vars(parser().parse_args(shlex.split(train_command(recorded))[3:]))
    for key in set(recorded) - {"threads", "resume"}:
        want, got = recorded[key], args[key]
        assert (list(got) if isinstance(got, tuple) else got) == want, key
    assert "--banks-from" not in train_command({**recorded, "banks_from": ""}).split()
    assert m.training["train_command"] == train_command(recorded)


def test_loader_prefers_litert_and_logs_it(caplog):
    import edge.runtime as rt

    rt._loaded = None
    with caplog.at_level(logging.INFO, logger="edge.runtime"):
        _, module = interpreter_class()
    assert module == "ai_edge_litert.interpreter"
    assert "ai_edge_litert" in caplog.text


def test_loader_falls_back_and_explains_when_none():
    cls, module = interpreter_class(("no_such_interpreter_pkg", "ai_edge_litert.interpreter"))
    assert module == "ai_edge_litert.interpreter" and cls is not None
    with pytest.raises(ModelError, match="install 'ai-edge-litert'.*no_such_interpreter_pkg"):
        interpreter_class(("no_such_interpreter_pkg",))


def test_model_runs_and_gives_probabilities(model_copy):
    model = load_model(model_copy, "speech")
    x = np.random.default_rng(0).standard_normal((3, *model.input_shape[1:])).astype(np.float32)
    p = model.predict(x)
    assert p.shape == (3, model.manifest.n_outputs)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=0.02)


def test_input_that_is_not_finite_is_refused_not_cast_to_an_answer(model_copy):
    """Regression (the kind of bug a NaN-holding float file showed): NaN or infinity cast to
    int8 is undefined, and the model answered it like any input; it is now refused."""
    model = load_model(model_copy, "speech")
    x = np.zeros((2, *model.input_shape[1:]), np.float32)
    x[1, 3, 5] = np.nan
    with pytest.raises(ValueError, match=r"input: 1 value is not a finite number \(NaN or infinity\)"):
        model.predict(x)
    x[1, 3, 5] = 0.0
    assert model.predict(x).shape == (2, model.manifest.n_outputs)


def test_sha256_mismatch_is_refused(model_copy):
    data = bytearray(model_copy.read_bytes())
    data[-1] ^= 0xFF
    model_copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256 .* does not match"):
        load_model(model_copy)


def test_feature_mismatch_is_refused(model_copy):
    edit_manifest(model_copy, features={"window_s": 3.0})
    with pytest.raises(ModelError, match="window_s/winstep/numcep/pitch give input"):
        SpeechRecogniser(load_model(model_copy))


def test_unknown_feature_key_is_refused(model_copy):
    edit_manifest(model_copy, features={"mystery": 1})
    with pytest.raises(ModelError, match="unknown key.*mystery"):
        SpeechRecogniser(load_model(model_copy))


def test_sample_rate_mismatch_is_refused(model_copy):
    with pytest.raises(ModelError, match="sample_rate 16000 Hz, but the device captures 48000"):
        SpeechRecogniser(load_model(model_copy), sample_rate=48000)


def test_missing_or_corrupt_manifest(model_copy):
    manifest_path(model_copy).write_text("{not json")
    with pytest.raises(ModelError, match="not a readable JSON manifest"):
        load_model(model_copy)
    manifest_path(model_copy).unlink()
    with pytest.raises(ModelError, match="manifest not found"):
        load_model(model_copy)


def test_wrong_modality_and_bad_labels(model_copy):
    with pytest.raises(ModelError, match="modality 'speech', expected 'face'"):
        load_model(model_copy, "face")
    edit_manifest(model_copy, labels=["happy", "bored"])
    with pytest.raises(ModelError, match="unknown label.*bored"):
        load_model(model_copy)


needs_tflite_runtime = pytest.mark.skipif(
    importlib.util.find_spec("tflite_runtime") is None, reason="tflite-runtime not installed")


@needs_tflite_runtime
def test_tflite_runtime_fallback_matches_litert_or_explains_numpy2(model_copy):
    """tflite-runtime stopped at NumPy 1.x: it must run the model under NumPy 1.24 and
    fail with a clear message under NumPy 2."""
    x = np.random.default_rng(1).standard_normal((2, *load_model(model_copy).input_shape[1:]))
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        with pytest.raises(ModelError, match="numpy<2"):
            load_model(model_copy, interpreter="tflite_runtime.interpreter")
        return
    fallback = load_model(model_copy, interpreter="tflite_runtime.interpreter")
    assert fallback.interpreter_module == "tflite_runtime.interpreter"
    litert = load_model(model_copy, interpreter="ai_edge_litert.interpreter")
    np.testing.assert_allclose(fallback.predict(x), litert.predict(x), atol=0.02)


def test_unknown_interpreter_is_refused(model_copy):
    with pytest.raises(ModelError, match="interpreter 'onnx'"):
        load_model(model_copy, interpreter="onnx")


@pytest.mark.parametrize("gate", [{"threshold": 0.5}, {"no_speech_output": True, "threshold": 2},
                                  {"no_speech_output": True, "threshold": 0.5, "music": 1}, [],
                                  {"no_speech_output": True, "threshold": 0.5, "hangover": -1},
                                  {"no_speech_output": True, "threshold": 0.5, "hangover": 1.5},
                                  {"no_speech_output": True, "threshold": 0.5, "hangover": True}])
def test_a_malformed_gate_is_refused_by_field(model_copy, gate):
    m = manifest_path(model_copy)
    m.write_text(json.dumps({**json.loads(m.read_text()), "gate": gate}))  # the whole gate replaced
    with pytest.raises(ModelError, match="field 'gate'"):
        load_manifest(manifest_path(model_copy))


def test_a_gate_the_model_has_no_output_for_is_refused(model_copy):
    """The shipped 9-output model (8 emotions and 'no speech'): a manifest without its gate,
    or with one label fewer beside the gate, does not match the outputs."""
    data = json.loads(manifest_path(model_copy).read_text())
    assert data["gate"]["no_speech_output"] is True and len(data["labels"]) == 8
    m = manifest_path(model_copy)
    m.write_text(json.dumps({**json.loads(m.read_text()), "gate": {}}))
    with pytest.raises(ModelError, match="9 outputs but manifest lists 8 labels$"):
        load_model(model_copy, "speech")
    m.write_text(json.dumps({**data, "labels": data["labels"][:7]}))
    with pytest.raises(ModelError, match="9 outputs but manifest lists 7 labels and a no-speech"):
        load_model(model_copy, "speech")
