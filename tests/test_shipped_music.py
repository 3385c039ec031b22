"""The shipped int8 music model: what its manifest says, re-measured on the 4Q test artists."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA, ROOT

from edge.audio.sources import decode_excerpt
from edge.labels import CIRCUMPLEX
from edge.manifest import load_manifest, manifest_path
from edge.music import features as M
from edge.music.emotion import QUADRANT_POINTS, MusicEmotion, quadrant_va
from training.datasets import fourq_split, read_4q

MODEL = ROOT / "models_tflite" / "music_emotion.tflite"
FOURQ = DATA / "music" / "4q"


def test_manifest_records_the_targets():
    m = load_manifest(manifest_path(MODEL))
    assert m.modality == "music" and m.labels == ("Q1", "Q2", "Q3", "Q4")
    assert MODEL.stat().st_size == m.metrics["model_bytes"] <= 500_000
    drop = m.metrics["parity"]["accuracy_delta_float_minus_int8"]
    assert drop <= 0.01 and m.metrics["target"]["int8_drop_met"]
    acc = m.metrics["test_int8"]["4q_test"]["accuracy"]
    assert m.metrics["target"]["accuracy_met"] == (acc >= 0.65)
    assert m.training["clips"] == {"train": 511, "val": 63, "test": 146}


@pytest.mark.skipif(not FOURQ.is_dir(), reason=f"4Q data not found at {FOURQ}")
def test_shipped_model_reproduces_its_test_accuracy():
    model = MusicEmotion(MODEL)
    p = model.params
    test = [c for c in read_4q(FOURQ) if fourq_split(c.artist) == "test"]
    vecs = np.stack([M.clip_vector(decode_excerpt(c.path, p.sample_rate, p.excerpt_s, p.min_s)[0], p)
                     for c in test])
    pred = model.predict_vectors(vecs).argmax(1)
    acc = float(np.mean([model.labels[i] == c.quadrant for i, c in zip(pred, test)]))
    want = load_manifest(manifest_path(MODEL)).metrics["test_int8"]["4q_test"]
    assert len(test) == want["n"] == 146
    assert acc == pytest.approx(want["accuracy"], abs=0.01)


def test_quadrant_va_places_sure_clips_where_the_moods_of_their_quadrant_lie():
    assert QUADRANT_POINTS == {"Q1": (0.55, 0.65), "Q2": (-0.6333, 0.6), "Q3": (-0.7, -0.5),
                               "Q4": (0.4, -0.6)}
    assert quadrant_va({"Q1": 0, "Q2": 0, "Q3": 1, "Q4": 0}) == CIRCUMPLEX["sad"]
    assert quadrant_va({"Q1": 0, "Q2": 0, "Q3": 0, "Q4": 2}) == CIRCUMPLEX["calm"]
    assert quadrant_va({"Q1": 0, "Q2": 0, "Q3": 0.5, "Q4": 0.5}) == pytest.approx((-0.15, -0.55))
    mid = quadrant_va({"Q1": 0.25, "Q2": 0.25, "Q3": 0.25, "Q4": 0.25})
    assert mid == pytest.approx((-0.0958, 0.0375), abs=1e-4)
    # the recommender's nearest track to a sad mood is the surest sad one, not a half-sure one
    sad = np.array(CIRCUMPLEX["sad"])
    sure = quadrant_va({"Q1": 0.02, "Q2": 0.02, "Q3": 0.94, "Q4": 0.02})
    half = quadrant_va({"Q1": 0.1, "Q2": 0.2, "Q3": 0.5, "Q4": 0.2})
    assert np.hypot(*(np.array(sure) - sad)) < np.hypot(*(np.array(half) - sad))


def test_the_recorded_train_command_runs_as_written():
    # convert.music wrote a store_true option as "--ensemble False", which the training
    # module refuses ("unrecognized arguments: False"): the manifest's and report's
    # reproduce command did not run
    import importlib
    import shlex

    m = load_manifest(manifest_path(MODEL))
    argv = shlex.split(m.training["train_command"])
    assert argv[:2] == ["python", "-m"]
    module = importlib.import_module(argv[2])
    args = vars(module.parser().parse_args(argv[3:]))
    assert args["out"] and m.training["chosen"] in args["candidates"]
    assert "False" not in argv and "None" not in argv
