"""edge.music.library, lexicon, playlist and their CLI, on real files and the shipped model.

The music files are real: 4Q clips copied to tmp, and real audio re-encoded by soundfile
to FLAC/MP3/WAV with tags written by mutagen.  Bad files are made the way they happen:
an empty file, a cut-off download, a text file with an audio name, a video.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import DATA, ROOT, run_cli

from edge.music.catalog import Catalog, CatalogError
from edge.music.lexicon import import_lexicon, key, match_library, normalise
from edge.music.library import Library, scan, track_uri
from edge.music.playlist import location, m3u_text

FOURQ = DATA / "music" / "4q"
MODEL = ROOT / "models_tflite" / "music_emotion.tflite"
pytestmark = pytest.mark.skipif(not (FOURQ.is_dir() and MODEL.is_file()),
                                reason="needs ../shared/data/music/4q and the shipped music model")
MBID = "0f9e2a5b-7c64-4d1e-9a3b-5a6f4e2b1c3d"


def clip(quadrant: str, i: int = 0) -> Path:
    return sorted((FOURQ / quadrant).glob("*.opus"))[i]


@pytest.fixture
def music(tmp_path: Path) -> Path:
    """A small library: two 4Q clips as they are, a tagged FLAC, a tagged MP3 at 44.1 kHz."""
    import mutagen
    from mutagen.easyid3 import EasyID3

    root = tmp_path / "music"
    (root / "opus").mkdir(parents=True)
    shutil.copy(clip("Q1"), root / "opus" / "a.opus")
    shutil.copy(clip("Q3"), root / "opus" / "b.opus")
    x, sr = sf.read(clip("Q2"), dtype="float32")
    sf.write(root / "tagged.flac", x, sr)
    f = mutagen.File(root / "tagged.flac", easy=True)
    f["artist"], f["title"], f["album"] = "The Beatles", "Let It Be (Remastered 2009)", "Let It Be"
    f["musicbrainz_trackid"] = MBID
    f.save()
    y = np.repeat(x, 3)[: int(len(x) * 44100 / 16000)]  # a 44.1 kHz file: resampled on decode
    sf.write(root / "song.mp3", np.stack([y, y], 1), 44100, format="MP3")
    tags = EasyID3()
    tags["artist"], tags["title"] = "Björk", "Army of Me (feat. Skunk Anansie)"
    tags.save(root / "song.mp3")
    (root / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    return root


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    import cv2

    root = tmp_path / "bad"
    root.mkdir()
    (root / "empty.mp3").write_bytes(b"")
    x, sr = sf.read(clip("Q4"), dtype="float32")
    sf.write(tmp_path / "full.flac", x, sr)
    data = (tmp_path / "full.flac").read_bytes()
    (root / "cut.flac").write_bytes(data[: len(data) // 3])
    (root / "notes.ogg").write_text("these are my notes, not an Ogg stream\n" * 20)
    sf.write(root / "short.wav", x[: 2 * sr], sr)
    vw = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(10):
        vw.write(np.full((48, 64, 3), i * 20, np.uint8))
    vw.release()
    assert (root / "clip.avi").stat().st_size > 0
    return root


def test_scan_places_tracks_reads_tags_and_uris(music, tmp_path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        s = scan(cat, [music], workers=2)
        assert (s.scanned, s.skipped, s.failed, s.ignored) == (4, 0, [], 1)
        rows = {Path(r["path"]).name: r for r in Library(cat).rows()}
        flac = rows["tagged.flac"]
        assert (flac["artist"], flac["album"], flac["mbid"]) == ("The Beatles", "Let It Be", MBID)
        assert flac["uri"] == (music / "tagged.flac").resolve().as_uri()
        assert rows["song.mp3"]["artist"] == "Björk"
        assert rows["song.mp3"]["duration_s"] == pytest.approx(20.0, abs=0.2)
        assert rows["a.opus"]["title"] == "a" and rows["a.opus"]["artist"] == "Unknown artist"
        for r in rows.values():
            probs = json.loads(r["probabilities"])
            assert sum(probs.values()) == pytest.approx(1.0, abs=0.02)
            assert r["quadrant"] == max(probs, key=probs.get)
            t = cat.get(r["uri"])
            assert (t.valence, t.arousal) == (r["model_valence"], r["model_arousal"])
            assert -1 <= t.valence <= 1 and -1 <= t.arousal <= 1
        # rescan: nothing decoded again; a touched file is
        assert scan(cat, [music]).skipped == 4
        (music / "opus" / "a.opus").touch()
        import os

        st = (music / "opus" / "a.opus").stat()
        os.utime(music / "opus" / "a.opus", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        s = scan(cat, [music])
        assert (s.scanned, s.skipped) == (1, 3)
        assert len(cat) == 4


def test_rescan_estimates_again_what_another_model_or_mapping_placed(music, tmp_path, monkeypatch):
    """Regression: a rescan skipped unchanged files whatever model had placed them, so an
    upgrade's new music model (or A/V mapping) never reached an existing library."""
    import sqlite3

    from edge.music import emotion

    db = tmp_path / "c.sqlite"
    with Catalog(db) as cat:
        assert scan(cat, [music]).scanned == 4
        assert scan(cat, [music]).skipped == 4
    monkeypatch.setattr(emotion, "VA_MAPPING", "a later mapping", raising=False)
    with Catalog(db) as cat:
        s = scan(cat, [music])
        assert (s.scanned, s.skipped) == (4, 0)
        assert scan(cat, [music]).skipped == 4
    # a catalogue written before rows recorded their estimator: estimated again once
    with sqlite3.connect(db) as con:
        con.execute("ALTER TABLE library DROP COLUMN estimator")
    with Catalog(db) as cat:
        assert (scan(cat, [music]).scanned, scan(cat, [music]).skipped) == (4, 4)


def test_uri_template_and_fallback(music):
    from edge.music.library import Tags

    p = music / "tagged.flac"
    assert track_uri("media-source://jellyfin/{mbid}", p, Tags(mbid=MBID)) == \
        f"media-source://jellyfin/{MBID}"
    assert track_uri("media-source://jellyfin/{mbid}", p, Tags()) == p.resolve().as_uri()


def test_a_uri_template_without_a_field_is_refused_before_anything_is_written(music, tmp_path):
    """Regression: ``--uri-template plain`` (no field) gave every file the same URI, so
    each upsert replaced the one before: "scanned 4 ... 1 tracks". Now refused, exit 1,
    naming the template and the fields, and the catalogue is not touched."""
    db = tmp_path / "c.sqlite"
    res = run_cli("library", "scan", str(music), "--db", str(db), "--uri-template", "media-source://music")
    assert res.returncode == 1
    assert "URI template 'media-source://music' names no field" in res.stderr, res.stderr
    assert "'file_uri'" in res.stderr and not db.exists()


def test_interrupted_scan_keeps_what_it_did_and_resumes(music, tmp_path):
    seen = []

    def stop_after_two(r):
        seen.append(r)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with Catalog(tmp_path / "c.sqlite") as cat:
        s = scan(cat, [music], workers=1, on_result=stop_after_two)
        assert s.interrupted and s.scanned == 2
        assert len(cat) == 2
        s = scan(cat, [music], workers=2)
        assert (s.scanned, s.skipped, s.interrupted) == (2, 2, False)
        assert len(cat) == 4


def test_bad_files_each_listed_with_reason_exit_0(bad, tmp_path):
    db = tmp_path / "c.sqlite"
    res = run_cli("library", "scan", str(bad), "--db", str(db), "--json")
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    summary = lines[-1]["summary"]
    assert summary["scanned"] == 0 and summary["failed"] == 5
    why = {Path(f["path"]).name: f["error"] for f in summary["failures"]}
    assert "empty file" in why["empty.mp3"]
    assert "truncated" in why["cut.flac"]
    assert "unreadable" in why["notes.ogg"]
    assert "too short" in why["short.wav"]
    assert "video" in why["clip.avi"]
    assert {x["path"] for x in lines[:-1]} == {f["path"] for f in summary["failures"]}
    text = run_cli("library", "scan", str(bad), "--db", str(tmp_path / "d.sqlite"))
    assert text.returncode == 0 and "failed 5" in text.stdout
    assert text.stdout.count("failed: ") == 5


def test_a_path_argument_that_does_not_exist_is_an_error_not_a_successful_scan(music, tmp_path):
    """Regression: `library scan /mnt/musci` (a typo) printed "failed 1 … not found" and
    exited 0, so a script or timer took it for a scan. A path given on the command line
    that is not there is now refused before anything is scanned, exit 1; bad files found
    in a folder stay listed failures with exit 0."""
    db = tmp_path / "c.sqlite"
    res = run_cli("library", "scan", str(music), str(tmp_path / "musci"), "--db", str(db))
    assert res.returncode == 1, res.stdout
    assert f"error: {tmp_path / 'musci'}: no such file or folder" in res.stderr
    assert not db.exists() or len(Catalog(db)) == 0


def test_rescan_still_names_the_bad_files_it_skips(bad, tmp_path):
    """Regression: a second scan of a folder skipped the unchanged bad files and said
    "failed 0" with no list, as if they had become good; it now names each, with the reason
    it failed, as failed before."""
    db = tmp_path / "c.sqlite"
    assert run_cli("library", "scan", str(bad), "--db", str(db)).returncode == 0
    res = run_cli("library", "scan", str(bad), "--db", str(db), "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.splitlines()[-1])["summary"]
    assert (summary["scanned"], summary["skipped"], summary["failed"]) == (0, 5, 0)
    why = {Path(f["path"]).name: f["error"] for f in summary["failed_before"]}
    assert sorted(why) == ["clip.avi", "cut.flac", "empty.mp3", "notes.ogg", "short.wav"]
    assert "truncated" in why["cut.flac"] and "too short" in why["short.wav"]
    text = run_cli("library", "scan", str(bad), "--db", str(db))
    assert text.returncode == 0
    assert "skipped 5 unchanged (5 of them failed before), failed 0" in text.stdout
    assert text.stdout.count("failed before, unchanged: ") == 5


def test_playlist_m3u_of_scanned_tracks(music, tmp_path):
    db = tmp_path / "c.sqlite"
    assert run_cli("library", "scan", str(music), "--db", str(db)).returncode == 0
    out = tmp_path / "lists" / "tense.m3u"
    res = run_cli("playlist", "--valence", "-0.6", "--arousal", "0.5", "-n", "3", "--m3u",
                  str(out), "--db", str(db))
    assert res.returncode == 0, res.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#EXTM3U" and len(lines) == 7
    for info, loc in zip(lines[1::2], lines[2::2]):
        assert info.startswith("#EXTINF:20,")
        assert Path(loc).is_file() and Path(loc).parent.parent == music or \
            Path(loc).parent == music


def test_a_playlist_can_lead_to_a_target_like_recommend(music, tmp_path):
    """Regression: ``playlist`` offered ``--policy target`` but had no way to give the
    target, so that choice always failed ("needs a target"). It now takes recommend's
    --target-valence/--target-arousal (one definition of the mood options), and the
    playlist walks from the mood to the target as recommend does."""
    db = tmp_path / "c.sqlite"
    assert run_cli("library", "scan", str(music), "--db", str(db)).returncode == 0
    out = tmp_path / "lift.m3u"
    mood = ("--valence", "-0.6", "--arousal", "-0.5", "-n", "3", "--db", str(db))
    res = run_cli("playlist", *mood, "--target-valence", "0.6", "--target-arousal", "0.5",
                  "--m3u", str(out))
    assert res.returncode == 0, res.stderr
    rec = run_cli("recommend", *mood, "--target-valence", "0.6", "--target-arousal", "0.5", "--json")
    assert rec.returncode == 0, rec.stderr
    chosen = [r["uri"] for r in json.loads(rec.stdout)]
    assert [r["reason"]["policy"] for r in json.loads(rec.stdout)] == ["target"] * 3
    assert out.read_text(encoding="utf-8").splitlines()[2::2] == [location(u) for u in chosen]
    res = run_cli("playlist", *mood, "--policy", "target", "--m3u", str(out))
    assert res.returncode == 1 and "--policy target needs --target-valence and --target-arousal" in res.stderr


def test_a_playlist_is_chosen_among_playable_tracks_and_never_emptied(music, tmp_path):
    """Regression: the playlist took the recommender's top N over the whole catalogue and
    then left out tracks with no playable location, so with the starter catalogue (767
    `search:` tracks) beside a scanned library it held a track or none; with none it still
    replaced an existing playlist by an empty one (exit 1). It is now chosen among the
    tracks a player can open, and when there are none the file is left as it was."""
    db = tmp_path / "c.sqlite"
    first = run_cli("recommend", "--valence", "0", "--arousal", "0", "--db", str(db))
    assert first.returncode == 0 and "starter catalogue" in first.stderr  # 767 search: tracks
    out = tmp_path / "mine.m3u"
    out.write_text("#EXTM3U\n/music/kept.flac\n", encoding="utf-8")
    res = run_cli("playlist", "--valence", "0", "--arousal", "0", "-n", "3", "--m3u", str(out),
                  "--db", str(db))
    assert res.returncode == 1
    assert "no track in the catalogue has a location a player can open" in res.stderr
    assert "edge-cli library scan" in res.stderr
    assert out.read_text(encoding="utf-8") == "#EXTM3U\n/music/kept.flac\n"
    assert run_cli("library", "scan", str(music), "--db", str(db)).returncode == 0
    res = run_cli("playlist", "--valence", "0", "--arousal", "0", "-n", "3", "--m3u", str(out),
                  "--db", str(db))
    assert res.returncode == 0, res.stderr
    locations = out.read_text(encoding="utf-8").splitlines()[2::2]
    assert len(locations) == 3 and all(Path(p).is_file() for p in locations), locations


def test_playlist_is_readable_by_a_player_and_a_folder_is_refused_by_name(music, tmp_path):
    """The playlist was written 0600 (mkstemp's mode), so a player running as another
    user (mpd, a media server) could not read it; and --m3u naming a folder failed with
    the temporary file's name.  Now a new playlist gets the umask's mode, a rewritten one
    keeps its mode, and a folder is refused naming --m3u."""
    import os
    import stat

    db = tmp_path / "c.sqlite"
    assert run_cli("library", "scan", str(music), "--db", str(db)).returncode == 0
    args = ("playlist", "--valence", "0.5", "--arousal", "0.5", "-n", "2", "--db", str(db))
    out = tmp_path / "calm.m3u"
    assert run_cli(*args, "--m3u", str(out)).returncode == 0
    umask = os.umask(0o022)
    os.umask(umask)  # run_cli's, inherited
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
    out.chmod(0o640)
    assert run_cli(*args, "--m3u", str(out)).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    res = run_cli(*args, "--m3u", str(tmp_path))
    assert res.returncode == 1 and f"--m3u {tmp_path}: is a folder" in res.stderr, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_db_that_is_a_folder_or_not_a_database_is_refused_by_name(music, tmp_path):
    """``--db`` naming a folder or a file that is not SQLite ended every catalogue command
    in a sqlite3 traceback; now exit 1 naming the file, and the file is left as it was."""
    junk = tmp_path / "notes.txt"
    junk.write_bytes(bytes(range(256)) * 8)
    for db, said in ((tmp_path, "is a folder; expected the catalogue's file"),
                     (junk, "cannot open it as the catalogue (file is not a database)")):
        for args in (("recommend", "--valence", "0", "--arousal", "0"),
                     ("library", "scan", str(music)),
                     ("library", "match", "muse"),
                     ("playlist", "--valence", "0", "--arousal", "0", "--m3u",
                      str(tmp_path / "x.m3u"))):
            res = run_cli(*args, "--db", str(db))
            assert res.returncode == 1 and f"error: {db}: {said}" in res.stderr, (args, res.stderr)
            assert "Traceback" not in res.stderr, res.stderr
    assert junk.read_bytes() == bytes(range(256)) * 8


def test_m3u_leaves_out_unplayable_uris():
    from edge.music.catalog import Track

    text, left = m3u_text([Track("search:A - B", "B", "A", 0, 0),
                           Track("file:///m/x%20y.flac", "Y", "X", 0, 0, 61.4),
                           Track("https://s/x.mp3", "Z", "X", 0, 0)])
    assert left == 1
    assert text.splitlines() == ["#EXTM3U", "#EXTINF:61,X - Y", "/m/x y.flac",
                                 "#EXTINF:-1,X - Z", "https://s/x.mp3"]


def test_normalise_artist_title():
    assert normalise("Let It Be - Remastered 2009") == normalise("let it be") == "let it be"
    assert normalise("Army of Me (feat. Skunk Anansie)") == "army of me"
    assert normalise("The Beatles") == "beatles"
    assert normalise("Björk") == "bjork"
    assert key("Simon & Garfunkel", "The Boxer [Live]") == key("simon and garfunkel", "the boxer")


MUSE_HEADER = ("lastfm_url,track,artist,seeds,number_of_emotion_tags,valence_tags,arousal_tags,"
               "dominance_tags,mbid,spotify_id,genre\n")


def test_lexicon_match_by_mbid_and_name_and_preferred(music, tmp_path):
    lex = tmp_path / "muse_v3.csv"
    lex.write_text(MUSE_HEADER
                   + f"u1,Let It Be,The Beatles,['x'],5,8.0,2.0,5,{MBID.upper()},s1,rock\n"
                   + "u2,Army of Me,bjork,['x'],5,2.0,8.5,5,,s2,pop\n"
                   + "u3,Something Else,Nobody,['x'],5,5.0,5.0,5,,,\n", encoding="utf-8")
    db = tmp_path / "c.sqlite"
    with Catalog(db) as cat:
        scan(cat, [music])
    res = run_cli("catalog", "import", "--format", "muse", str(lex), "--db", str(db))
    assert res.returncode == 0, res.stderr
    res = run_cli("library", "match", "muse", "--db", str(db))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"lexicon": "muse", "matched_by_mbid": 1,
                                      "matched_by_artist_title": 1, "unmatched": 2}
    with Catalog(db) as cat:
        rows = {Path(r["path"]).name: r for r in Library(cat).rows()}
        flac, mp3 = rows["tagged.flac"], rows["song.mp3"]
        assert flac["lexicon_source"] == "muse:mbid" and mp3["lexicon_source"] == "muse:artist+title"
        t = cat.get(flac["uri"])
        assert (t.valence, t.arousal) == (pytest.approx(0.75), pytest.approx(-0.75))
        assert flac["model_valence"] is not None  # the model's numbers are kept beside
        # a rescan of a changed file keeps the human-tagged numbers
        import os

        st = (music / "tagged.flac").stat()
        os.utime(music / "tagged.flac", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        assert scan(cat, [music]).scanned == 1
        assert cat.get(flac["uri"]).valence == pytest.approx(0.75)
        from edge.music.recommend import Recommender

        top = Recommender(cat).recommend((0.75, -0.75), "match", 1)[0]
        assert top.track.uri == flac["uri"]


def test_a_lexicon_column_named_twice_is_refused(tmp_path):
    """Regression: as the catalogue CSV, a lexicon with `valence` twice took the last one."""
    from edge.music.catalog import CatalogError
    from edge.music.lexicon import parse_lexicon

    lex = tmp_path / "deezer.csv"
    lex.write_text("artist_name,track_name,valence,arousal,valence\nA,T,0.1,0.2,0.9\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"deezer.csv: line 1: column 'valence' is in the header 2 times"):
        parse_lexicon(lex, "deezer")


def test_lexicon_wrong_header_refused_nothing_written(music, tmp_path):
    lex = tmp_path / "muse_v3.csv"
    lex.write_text("track,artist,valence,arousal\nA,B,5,5\n", encoding="utf-8")
    db = tmp_path / "c.sqlite"
    res = run_cli("catalog", "import", "--format", "muse", str(lex), "--db", str(db))
    assert res.returncode == 1
    assert "missing column(s) ['valence_tags', 'arousal_tags', 'mbid']" in res.stderr
    assert str(lex) in res.stderr
    with Catalog(db) as cat:
        assert len(cat) == 0
        tables = {r[0] for r in cat.db.execute("SELECT name FROM sqlite_master")}
        assert "lexicon" not in tables or cat.db.execute(
            "SELECT COUNT(*) FROM lexicon").fetchone()[0] == 0
    with Catalog(db) as cat, pytest.raises(CatalogError, match="outside Warriner"):
        lex.write_text(MUSE_HEADER + "u,T,A,[],1,12,5,5,,,\n", encoding="utf-8")
        import_lexicon(cat, lex, "muse")
    with Catalog(db) as cat, pytest.raises(CatalogError, match="no 'muse' lexicon"):
        match_library(cat, "muse")


def test_deezer_lexicon_scale(tmp_path):
    lex = tmp_path / "train.csv"
    lex.write_text("dzr_sng_id,MSD_sng_id,MSD_track_id,valence,arousal,artist_name,track_name\n"
                   "1,a,b,0.5,-3.1,Artist,Song\n", encoding="utf-8")
    with Catalog(":memory:") as cat:
        assert import_lexicon(cat, lex, "deezer") == 1
        assert cat.db.execute("SELECT valence, arousal FROM lexicon").fetchone() == (0.25, -1.0)


def test_a_semicolon_lexicon_with_decimal_commas_imports(tmp_path):
    """The lexicon files go through the catalogue's one CSV reader: a MuSe file re-saved
    by a spreadsheet (';' and decimal commas) imports like the original."""
    lex = tmp_path / "muse_v3.csv"
    lex.write_text("lastfm_url;track;artist;seeds;number_of_emotion_tags;valence_tags;arousal_tags;"
                   "dominance_tags;mbid;spotify_id;genre\n"
                   "u;Song;Artist;[];3;7,5;3;5;;;pop\n", encoding="utf-8")
    with Catalog(":memory:") as cat:
        assert import_lexicon(cat, lex, "muse") == 1
        assert cat.db.execute("SELECT valence, arousal FROM lexicon").fetchone() == (0.625, -0.5)


LIGHT = """
import sys
from edge.cli import main
rc = main(['library', 'scan', sys.argv[1], '--db', sys.argv[2]])
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'scipy', 'sklearn'))
print('HEAVY', heavy)
sys.exit(rc)
"""


def test_scan_does_not_import_tensorflow(music, tmp_path):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", LIGHT, str(music / "opus"), str(tmp_path / "c.sqlite")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "scanned 2," in res.stdout and "HEAVY []" in res.stdout
