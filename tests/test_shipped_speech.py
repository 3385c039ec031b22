"""The shipped int8 speech model scores on the fixed test speakers what its manifest says."""

from __future__ import annotations

import pytest
from conftest import DATA, SHIPPED_SPEECH, needs_data

from edge.audio.features import FeatureParams
from edge.audio.vad import VadParams
from edge.manifest import load_manifest, manifest_path
from edge.runtime import load_model
from training.datasets import by_split, load_corpora
from training.speech import evaluate, load_signals


@needs_data
def test_shipped_model_accuracy_on_test_split():
    """Every corpus the model learnt from, scored again on its test speakers, gives what
    the manifest recorded at conversion; the recorded bars say what those figures meet."""
    from convert.speech import TARGETS

    model = load_model(SHIPPED_SPEECH, "speech")
    manifest = load_manifest(manifest_path(SHIPPED_SPEECH))
    p = FeatureParams.from_dict(manifest.features)
    vad = VadParams(**manifest.training["vad"])
    corpora = sorted(manifest.metrics["test_int8"])
    assert {"ravdess", "emodb"} <= set(corpora)
    test = by_split(load_corpora(DATA, corpora))["test"]
    assert {c.speaker for c in test if c.corpus in ("ravdess", "emodb")} == {
        f"ravdess-{a}" for a in range(19, 25)} | {"emodb-15", "emodb-16"}
    got = evaluate(model.predict, test, load_signals(test, p.sample_rate), p, vad,
                   list(manifest.labels))
    for corpus in corpora:
        want = manifest.metrics["test_int8"][corpus]
        assert got[corpus]["n"] == want["n"]
        # a clip may flip between platforms' float rounding of the features; one clip
        # moves RAVDESS UAR by about 0.003
        assert got[corpus]["uar"] == pytest.approx(want["uar"], abs=0.005), corpus
        assert got[corpus]["accuracy"] == pytest.approx(want["accuracy"], abs=0.005), corpus
    target = manifest.metrics["target"]
    test_q = manifest.metrics["test_int8"]
    assert target["uar_met"] == (test_q["ravdess"]["uar"] >= TARGETS["ravdess_test_uar_int8"])
    assert target["emodb_uar_met"] == (test_q["emodb"]["uar"] >= TARGETS["emodb_test_uar_int8"])
    drops = manifest.metrics["parity"]["accuracy_delta_float_minus_int8"]
    assert set(drops) == set(corpora)
    assert target["int8_drop_met"] == all(d <= 0.01 for d in drops.values())
    room = manifest.metrics["room_test_int8"]
    assert target["room_noise15_met"] == (room["room_noise15_uar"] >= TARGETS["room_noise15_uar"])
