"""Feature banks carry the feature parameters they were computed with, and a run with
other parameters refuses them (training.speech.check_banks)."""

from __future__ import annotations

import json

import pytest
from conftest import DATA, needs_data, needs_tf

from edge.audio import features as F
from training.speech import BANKS_META, check_banks


def test_banks_of_other_feature_parameters_are_refused(tmp_path):
    banks = tmp_path / "banks.pkl"
    meta = {"final": False, "corpora": ["ravdess"], "features": F.FeatureParams(pitch=True).to_dict()}
    (tmp_path / BANKS_META).write_text(json.dumps(meta))
    check_banks(banks, F.FeatureParams(pitch=True))  # the same: accepted
    with pytest.raises(SystemExit, match=r"banks\.pkl were computed with other feature parameters: "
                                         r"noise_suppression 0 \(this run 2\)"):
        check_banks(banks, F.FeatureParams(pitch=True, noise_suppression=2))


def test_banks_written_before_the_parameters_were_recorded_are_taken(tmp_path):
    (tmp_path / BANKS_META).write_text(json.dumps({"final": False, "corpora": ["ravdess"]}))
    check_banks(tmp_path / "banks.pkl", F.FeatureParams(noise_suppression=2))


@pytest.mark.train
@needs_data
@needs_tf
def test_banks_made_with_another_augmentation_recipe_are_refused(tmp_path):
    """--speed-range, --versions, --rooms, --p-music … shape what the banks hold: a run that
    reads banks made with other values would train on them and record its own values."""
    from training.speech import main as train_main

    first = tmp_path / "first"
    common = ["--data", str(DATA), "--epochs", "1", "--max-clips", "8", "--per-clip", "1",
              "--widths", "8", "8", "8", "8", "--threads", "2", "--resume"]
    assert train_main(common + ["--out", str(first), "--versions", "2"]) == 0
    recorded = json.loads((first / BANKS_META).read_text())["augmentation"]
    assert recorded["versions"] == 2 and recorded["speed_range"] == [0.9, 1.1]
    with pytest.raises(SystemExit, match=r"first/banks\.pkl were made with another augmentation "
                                         r"recipe: speed_range \[0\.9, 1\.1\] \(this run \[0\.8, 1\.25\]\)"):
        train_main(common + ["--out", str(tmp_path / "second"), "--versions", "2",
                             "--speed-range", "0.8", "1.25", "--banks-from", str(first / "banks.pkl")])
    # the same recipe with another seed (the second seed of an arm) reads them
    assert train_main(common + ["--out", str(tmp_path / "third"), "--versions", "2", "--seed", "7",
                                "--banks-from", str(first / "banks.pkl")]) == 0


@pytest.mark.train
@needs_data
@needs_tf
def test_a_resumed_runs_arousal_banks_of_another_recipe_are_refused(tmp_path):
    """BAVED's banks (--arousal-aux) are kept in the run's folder beside any --banks-from
    banks; a resumed run with another recipe must not read them as they are."""
    from training.speech import main as train_main

    common = ["--data", str(DATA), "--epochs", "1", "--max-clips", "8", "--per-clip", "1",
              "--widths", "8", "8", "8", "8", "--threads", "2", "--resume"]
    for name, versions in (("two", "2"), ("one", "1")):
        assert train_main(common + ["--out", str(tmp_path / name), "--versions", versions]) == 0
    run = ["--out", str(tmp_path / "aux"), "--arousal-aux"]
    two, one = str(tmp_path / "two" / "banks.pkl"), str(tmp_path / "one" / "banks.pkl")
    assert train_main(common + run + ["--versions", "2", "--banks-from", two]) == 0
    meta = json.loads((tmp_path / "aux" / "banks_arousal_meta.json").read_text())
    assert meta["augmentation"]["versions"] == 2
    # with its epochs' state the run refuses any other options at once (the test below); a run
    # stopped before its first epoch ended has only its banks to say what it was
    (tmp_path / "aux" / "state.json").unlink()
    with pytest.raises(SystemExit, match=r"banks_arousal\.pkl were made with another augmentation recipe: "
                                         r"versions 2 \(this run 1\)"):
        train_main(common + run + ["--versions", "1", "--banks-from", one])


@pytest.mark.train
@needs_data
@needs_tf
def test_a_resume_with_other_options_is_refused_before_the_banks(tmp_path):
    """Regression: --resume went on from a run's checkpoint whatever options it was given
    (a long run resumed next session without --vtlp, or with another --lr, trained its
    last epochs on another recipe, and train_meta.json recorded only the last command). The
    options are recorded in state.json and compared; where and how fast a run works
    (--threads, --bank-workers, --banks-from, --data) may change."""
    from training.speech import main as train_main

    out = tmp_path / "run"
    common = ["--data", str(DATA), "--epochs", "1", "--max-clips", "8", "--per-clip", "1",
              "--widths", "8", "8", "8", "8", "--versions", "1", "--out", str(out), "--resume"]
    assert train_main(common + ["--threads", "2"]) == 0
    assert json.loads((out / "state.json").read_text())["recipe"]["lr"] == 0.002
    with pytest.raises(SystemExit, match=r"run/state\.json was started with other options: "
                                         r"--lr 0\.002 \(this run 0\.001\); --vtlp None "
                                         r"\(this run \[0\.9, 1\.1\]\)"):
        train_main(common + ["--threads", "2", "--lr", "1e-3", "--vtlp", "0.9", "1.1"])
    assert train_main(common + ["--threads", "1", "--banks-from", str(out / "banks.pkl")]) == 0
