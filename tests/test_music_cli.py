"""edge.music.cli: the argparse glue (catalog import, recommend)."""

from __future__ import annotations

import argparse
import json

import pytest
from conftest import DATA

from edge.music.catalog import Catalog
from edge.music.cli import add_commands

MUSIC = DATA / "music"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edge-cli")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MOODEDGE_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def test_recommend_with_no_catalogue_uses_the_starter(state_dir, capsys):
    assert run(["recommend", "--valence", "-0.6", "--arousal", "-0.5", "--policy", "uplift",
                "-n", "4", "--json"]) == 0
    out, err = capsys.readouterr()
    recs = json.loads(out)
    assert len(recs) == 4 and "starter catalogue" in err
    assert [r["reason"]["step"] for r in recs] == [0, 1, 2, 3]
    assert all(r["reason"]["policy"] == "uplift" for r in recs)
    assert recs[0]["uri"].startswith("search:")
    assert (state_dir / "catalogue.sqlite").exists()


def test_target_flags_imply_target_policy(tmp_path, capsys):
    db = tmp_path / "c.sqlite"
    assert run(["recommend", "--valence", "0", "--arousal", "0", "--target-valence", "0.4",
                "--target-arousal", "-0.6", "--db", str(db), "-n", "3"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 3 and "step 2/" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--target-valence", "0.4"], "give both --target-valence and --target-arousal"),
    (["--policy", "calm", "--target-valence", "0", "--target-arousal", "0"],
     "--target-valence/--target-arousal apply to --policy target, not 'calm'"),
    (["--policy", "target"], "--policy target needs --target-valence and --target-arousal"),
])
def test_recommend_errors_exit_nonzero_on_stderr(tmp_path, capsys, argv, message):
    rc = run(["recommend", "--valence", "0", "--arousal", "0", "--db", str(tmp_path / "c.db"),
              *argv])
    out, err = capsys.readouterr()
    assert rc == 1 and message in err and out == ""


def test_out_of_range_mood_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as e:
        run(["recommend", "--valence", "2", "--arousal", "0"])
    assert e.value.code == 2 and "expected a number in [-1, 1], got 2" in capsys.readouterr().err


@pytest.mark.skipif(not MUSIC.is_dir(), reason=f"shared music data not found at {MUSIC}")
def test_catalog_import_spotify_then_recommend(state_dir, capsys):
    assert run(["catalog", "import", str(MUSIC / "data_moods.csv"), "--format", "spotify"]) == 0
    assert "imported 686 tracks" in capsys.readouterr().out
    assert run(["recommend", "--valence", "0.5", "--arousal", "0.5", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # no starter import: the catalogue had tracks
    assert all(r["uri"].startswith("spotify:track:") for r in json.loads(out))


def test_failed_import_exits_nonzero_and_changes_nothing(tmp_path, capsys):
    db = tmp_path / "c.sqlite"
    good = tmp_path / "good.csv"
    good.write_text("uri,title,artist,valence,arousal\nu1,T,A,0,0\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("uri,title,artist,valence,arousal\nu2,T,A,0,0\nu3,T,A,0,\n", encoding="utf-8")
    assert run(["catalog", "import", str(good), "--db", str(db)]) == 0
    assert run(["catalog", "import", str(bad), "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert "line 3, column 'arousal': missing value" in err
    with Catalog(db) as cat:
        assert [t.uri for t in cat.tracks()] == ["u1"]
    assert run(["catalog", "import", str(tmp_path / "nope.csv"), "--db", str(db)]) == 1
    assert "nope.csv" in capsys.readouterr().err
