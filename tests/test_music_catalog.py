"""edge.music.catalog: CSV layouts, validation errors, all-or-nothing import, storage."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import DATA

from edge.music.catalog import (
    FORMATS,
    STARTER_CATALOGUE,
    Catalog,
    CatalogError,
    ColumnMapping,
    Track,
    default_db_path,
    parse_csv,
    search_text,
    search_uri,
)

MUSIC = DATA / "music"
needs_data = pytest.mark.skipif(
    not MUSIC.is_dir(), reason=f"shared music data not found at {MUSIC} (../shared/data/music)"
)

GENERIC_HEADER = "uri,title,artist,valence,arousal,duration,genre\n"


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture
def cat():
    with Catalog(":memory:") as c:
        yield c


def test_generic_layout_with_optional_columns(tmp_path, cat):
    p = write(tmp_path, GENERIC_HEADER
              + "file:///m/a.flac,A,X,0.5,-0.25,201.5,jazz\n"
              + "https://radio.example/s,B,Y,-1,1,,\n")
    assert cat.import_csv(p) == 2
    a, b = "file:///m/a.flac", "https://radio.example/s"
    assert cat.get(a) == Track(a, "A", "X", 0.5, -0.25, 201.5, "jazz")
    assert cat.get(b) == Track(b, "B", "Y", -1.0, 1.0)


def test_a_spreadsheet_csv_with_semicolons_and_decimal_commas_imports(tmp_path, cat):
    """Regression: LibreOffice and Excel in most of Europe save CSV with ';' between
    fields and ',' as the decimal sign; import refused such a file as missing every
    column. The header's separator is now found (',', ';' or tab) and, when it is not
    the comma, numbers may use a decimal comma; a comma-separated file reads as before
    (a quoted "0,5" there is still not a number)."""
    p = write(tmp_path, "uri;title;artist;valence;arousal;duration;genre\n"
                        "file:///m/a.flac;A, live;X;0,5;-0,25;201,5;jazz\n"
                        "file:///m/b.flac;B;Y;-1;1e0;;\n", "excel.csv")
    assert cat.import_csv(p) == 2
    assert cat.get("file:///m/a.flac") == Track("file:///m/a.flac", "A, live", "X", 0.5, -0.25, 201.5, "jazz")
    assert cat.get("file:///m/b.flac") == Track("file:///m/b.flac", "B", "Y", -1.0, 1.0)
    tab = write(tmp_path, "uri\ttitle\tartist\tvalence\tarousal\nu2\tT\tA\t0,1\t0.2\n", "tabs.tsv")
    assert cat.import_csv(tab) == 1 and cat.get("u2").valence == pytest.approx(0.1)
    comma = write(tmp_path, 'uri,title,artist,valence,arousal\nu3,T,A,"0,5",0\n', "comma.csv")
    with pytest.raises(CatalogError, match=r"line 2, column 'valence': '0,5' is not a number"):
        cat.import_csv(comma)


def test_generic_layout_without_optional_columns(tmp_path, cat):
    p = write(tmp_path, "uri,title,artist,valence,arousal\nu1,T,A,0,0\n")
    assert cat.import_csv(p, "generic") == 1
    assert cat.get("u1").duration_s is None


@needs_data
def test_spotify_layout_on_data_moods(cat):
    rows = list(csv.DictReader((MUSIC / "data_moods.csv").open(encoding="utf-8")))
    assert cat.import_csv(MUSIC / "data_moods.csv", "spotify") == len(rows) == len(cat)
    r = rows[0]
    t = cat.get(f"spotify:track:{r['id']}")
    assert t is not None and (t.title, t.artist) == (r["name"], r["artist"])
    assert t.valence == pytest.approx(2 * float(r["valence"]) - 1)
    assert t.arousal == pytest.approx(2 * float(r["energy"]) - 1)  # energy → arousal
    assert t.duration_s == pytest.approx(float(r["length"]) / 1000)


@needs_data
def test_pmemo_layout_keeps_every_row_with_search_uris(cat):
    rows = list(csv.DictReader((MUSIC / "pmemo_static_va.csv").open(encoding="utf-8")))
    assert cat.import_csv(MUSIC / "pmemo_static_va.csv", "pmemo") == len(rows) == len(cat)
    r = rows[0]
    t = cat.get(search_uri(r["artist"], r["title"], f"pmemo-{r['musicId']}"))
    assert t is not None
    assert (t.valence, t.arousal) == pytest.approx((2 * float(r["valence"]) - 1,
                                                     2 * float(r["arousal"]) - 1))
    assert search_text(t.uri) == f"{r['artist']} - {r['title']}"


def test_search_uri_round_trip_with_hash_in_title():
    uri = search_uri("Desiigner", "Panda (#PANDATO Version)")
    assert search_text(uri) == "Desiigner - Panda (#PANDATO Version)"
    assert search_text("spotify:track:1") is None


def test_starter_catalogue_is_small_attributed_and_imports(cat):
    assert STARTER_CATALOGUE.stat().st_size < 100_000
    attribution = (STARTER_CATALOGUE.parent / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "PMEmo" in attribution and "ICMR" in attribution and "MIT" in attribution
    assert cat.ensure_tracks() > 700
    n = len(cat)
    assert cat.ensure_tracks() == n  # only when empty
    assert all(t.uri.startswith("search:") for t in cat.tracks())


@needs_data
def test_starter_catalogue_matches_pmemo_source():
    shipped = {t.uri: t for t in parse_csv(STARTER_CATALOGUE, FORMATS["generic"])}
    source = parse_csv(MUSIC / "pmemo_static_va.csv", FORMATS["pmemo"])
    assert set(shipped) == {t.uri for t in source}
    for t in source:
        s = shipped[t.uri]
        assert (s.valence, s.arousal) == pytest.approx((t.valence, t.arousal), abs=1e-3)


def test_custom_column_mapping(tmp_path, cat):
    p = write(tmp_path, "path,name,by,v,e\n/m/x.mp3,X,Z,0.9,0.1\n")
    mapping = ColumnMapping(uri="file://{path}", title="name", artist="by", valence="v",
                            arousal="e", unit_scale=True)
    cat.import_csv(p, mapping)
    assert cat.get("file:///m/x.mp3").valence == pytest.approx(0.8)


# --- bad input: each error names the line and the column ------------------------------

@pytest.mark.parametrize(("body", "fmt", "pattern"), [
    ("u1,T,A,,0.1,,\n", "generic", r"line 2, column 'valence': missing value"),
    ("u1,T,A,0.1,1.5,,\n", "generic", r"line 2, column 'arousal': 1.5 is outside \[-1, 1\]"),
    ("u1,T,A,0.1,0.2,,\nu2,T,A,nan,0.2,,\n", "generic", r"line 3, column 'valence': nan"),
    ("u1,T,A,abc,0.2,,\n", "generic", r"line 2, column 'valence': 'abc' is not a number"),
    ("u1,T,A,0.1,0.2,,\nu1,T2,B,0.1,0.2,,\n", "generic",
     r"line 3, column 'uri': duplicate URI 'u1' \(first on line 2\)"),
    (",T,A,0.1,0.2,,\n", "generic", r"line 2, column 'uri': missing value"),
    ("u1,T,A,0.1,0.2,-3,\n", "generic", r"line 2, column 'duration'"),
])
def test_bad_rows_name_line_and_column(tmp_path, cat, body, fmt, pattern):
    p = write(tmp_path, GENERIC_HEADER + body)
    with pytest.raises(CatalogError, match=pattern):
        cat.import_csv(p, fmt)


def test_unit_scale_layout_rejects_negative(tmp_path, cat):
    p = write(tmp_path, "musicId,title,artist,valence,arousal\n1,T,A,-0.2,0.5\n")
    with pytest.raises(CatalogError, match=r"line 2, column 'valence': -0.2 is outside \[0, 1\]"):
        cat.import_csv(p, "pmemo")


def test_non_utf8_file_names_line_and_column(tmp_path, cat):
    p = tmp_path / "latin1.csv"
    p.write_bytes((GENERIC_HEADER + "u1,Caf\xe9,A,0,0,,\n").encode("latin-1"))
    pattern = r"line 2, column 'title' \(byte 7\): not valid UTF-8 \(byte 0xe9\)"
    with pytest.raises(CatalogError, match=pattern):
        cat.import_csv(p)


def test_empty_catalogue_file_and_missing_columns(tmp_path, cat):
    with pytest.raises(CatalogError, match="no tracks"):
        cat.import_csv(write(tmp_path, GENERIC_HEADER))
    with pytest.raises(CatalogError, match="the file is empty"):
        cat.import_csv(write(tmp_path, "", "empty.csv"))
    p = write(tmp_path, "name,artist,id,valence,energy\nN,A,abc,0.5,0.5\n")
    with pytest.raises(CatalogError, match=r"line 1: missing column\(s\) \['uri', 'title', "
                                           r"'arousal'\].*--format spotify"):
        cat.import_csv(p)
    with pytest.raises(CatalogError, match="unknown format"):
        cat.import_csv(p, "itunes")


def test_failed_import_leaves_catalogue_unchanged(tmp_path):
    db = tmp_path / "c.sqlite"
    with Catalog(db) as cat:
        cat.import_csv(write(tmp_path, GENERIC_HEADER + "u1,T,A,0.1,0.2,,\n", "good.csv"))
        before = cat.tracks()
        bad = write(tmp_path, GENERIC_HEADER + "u1,NEW,A,0.9,0.9,,\nu2,T,A,0.1,0.2,,\n"
                    + "u3,T,A,0.1,7,,\n", "bad.csv")
        with pytest.raises(CatalogError, match="line 4"):
            cat.import_csv(bad)
        assert cat.tracks() == before
    with Catalog(db) as again:  # and on disk
        assert again.tracks() == before


def test_a_snapshot_is_rebuilt_when_another_connection_changes_the_file(tmp_path):
    db = tmp_path / "c.sqlite"
    with Catalog(db) as daemon, Catalog(db) as cli:
        daemon.import_csv(write(tmp_path, GENERIC_HEADER + "u1,T,A,0.1,0.2,,\n"))
        snap = daemon.snapshot()
        assert daemon.snapshot() is snap  # nothing changed: cached
        cli.import_csv(write(tmp_path, GENERIC_HEADER + "u2,T,B,-0.5,0.5,,\n", "more.csv"))
        fresh = daemon.snapshot()
        assert fresh is not snap and sorted(fresh.index) == ["u1", "u2"]
        assert daemon.snapshot() is fresh


def test_reimport_replaces_by_uri_and_invalidates_snapshot(tmp_path, cat):
    cat.import_csv(write(tmp_path, GENERIC_HEADER + "u1,T,A,0.1,0.2,,\n"))
    snap = cat.snapshot()
    assert cat.snapshot() is snap  # cached
    cat.import_csv(write(tmp_path, GENERIC_HEADER + "u1,T,A,-0.5,0.2,,\nu2,T,B,0,0,,\n"))
    snap2 = cat.snapshot()
    assert snap2 is not snap and len(snap2) == 2
    assert snap2.va[snap2.index["u1"]].tolist() == [-0.5, 0.2]


def test_plays_and_feedback_are_stored(tmp_path, cat):
    cat.import_csv(write(tmp_path, GENERIC_HEADER + "u1,T,A,0.1,0.2,,\nu2,T,B,0,0,,\n"))
    for i, u in enumerate(["u1", "u2", "u1"]):
        cat.record_play(u, ts=float(i))
    assert cat.recent_plays(2) == ["u1", "u2"]
    snap = cat.snapshot()
    cat.record_feedback("u1", "like", ts=1.0)
    cat.record_feedback("u1", "skip", ts=2.0)
    assert cat.feedback_counts("u1") == {"like": 1, "skip": 1}
    assert cat.snapshot() is not snap
    assert cat.snapshot().feedback[cat.snapshot().index["u1"]] == pytest.approx(0.5)
    with pytest.raises(CatalogError, match="unknown feedback"):
        cat.record_feedback("u1", "love")
    with pytest.raises(CatalogError, match="unknown track"):
        cat.record_feedback("nope", "like")


def test_default_db_path():
    assert default_db_path({"MOODEDGE_STATE_DIR": "/var/lib/me"}) == Path(
        "/var/lib/me/catalogue.sqlite")
    assert default_db_path({}) == Path.home() / ".local/share/moodedge/catalogue.sqlite"


def test_a_column_named_twice_in_the_header_is_refused_not_read_from_the_last(tmp_path, cat):
    """Regression: `valence` twice in the header imported the last one's value without a
    word (csv.DictReader keeps the last); which one was meant cannot be known."""
    p = write(tmp_path, "uri,title,artist,valence,arousal,valence\nx:1,A,B,0.1,0.2,0.5\n")
    with pytest.raises(CatalogError, match=r"line 1: column 'valence' is in the header 2 times"):
        cat.import_csv(p)
    assert len(cat) == 0
    # a repeated column the layout does not read (here two unnamed ones) is no ambiguity
    cat.import_csv(write(tmp_path, "uri,title,artist,valence,arousal,,\nx:1,A,B,0.1,0.2,,\n"))
    assert len(cat) == 1
