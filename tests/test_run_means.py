"""training.run_means: the epochs-56–60 means the adoption rules read."""

from __future__ import annotations

import json

import pytest

from training.run_means import main, run_means


def history(epochs, base):
    return [{"epoch": e, "loss": 1.0, "val_uar": base + e / 100, "val_uar_emodb": 0.7,
             "val_uar_ravdess": base, "val_uar_ravdess_room_noise15": 0.4 + e / 1000,
             "val_passed_music_only": 0.05} for e in epochs]


def test_means_over_the_named_epochs_and_the_clean_mean():
    out = run_means(history(range(1, 61), 0.5), 56, 60)
    assert out["val_uar"] == pytest.approx(0.5 + 0.58)
    assert out["val_uar_ravdess_room_noise15"] == pytest.approx(0.458)
    assert out["clean_mean"] == pytest.approx((0.7 + 0.5) / 2)  # rooms and the score not in it
    assert "loss" not in out


def test_a_run_without_those_epochs_is_refused_naming_them():
    with pytest.raises(ValueError, match="epochs 56-60 wanted"):
        run_means(history(range(1, 58), 0.5), 56, 60)


def test_the_cli_prints_runs_and_arm(tmp_path, capsys):
    for name, base in (("a", 0.5), ("b", 0.6)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "state.json").write_text(json.dumps({"history": history(range(1, 61), base)}))
    assert main(["--runs", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arm"]["val_uar_ravdess"] == pytest.approx(0.55)
    assert main(["--runs", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
