"""Feature banks carry the feature parameters they were computed with, and a run with
other parameters refuses them (training.speech.check_bank_features)."""

from __future__ import annotations

import json

import pytest

from edge.audio import features as F
from training.speech import BANKS_META, check_bank_features


def test_banks_of_other_feature_parameters_are_refused(tmp_path):
    banks = tmp_path / "banks.pkl"
    meta = {"final": False, "corpora": ["ravdess"], "features": F.FeatureParams(pitch=True).to_dict()}
    (tmp_path / BANKS_META).write_text(json.dumps(meta))
    check_bank_features(banks, F.FeatureParams(pitch=True))  # the same: accepted
    with pytest.raises(SystemExit, match=r"banks\.pkl were computed with other feature parameters: "
                                         r"noise_suppression 0 \(this run 2\)"):
        check_bank_features(banks, F.FeatureParams(pitch=True, noise_suppression=2))


def test_banks_written_before_the_parameters_were_recorded_are_taken(tmp_path):
    (tmp_path / BANKS_META).write_text(json.dumps({"final": False, "corpora": ["ravdess"]}))
    check_bank_features(tmp_path / "banks.pkl", F.FeatureParams(noise_suppression=2))
