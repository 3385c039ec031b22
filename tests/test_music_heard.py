"""The microphone's music detector (edge.audio.music_heard): hysteresis over the speech
gate's window kinds, speech windows counting neither way, and its config refused by field."""

from __future__ import annotations

import pytest

from edge.audio.music_heard import QUIET, SOUND, SPEECH, MusicHeard, MusicHeardParams, heard_over
from edge.config import ConfigError, parse_config

P = MusicHeardParams(span_s=5.0, on_fraction=0.6, off_fraction=0.3, min_windows=4)  # 10 windows


def test_music_turns_on_past_on_fraction_and_off_only_below_off_fraction():
    m = MusicHeard(P, 0.5)
    assert [m.update(k) for k in [SOUND] * 3] == [False] * 3  # fewer than min_windows
    assert m.update(SOUND) and m.on  # 4 of 4 non-speech windows are sound
    for _ in range(4):  # 4 sound, 4 quiet of the last 8: 0.5, between the thresholds
        m.update(QUIET)
    assert m.on
    changes = [m.update(QUIET) for _ in range(4)]
    assert changes.count(True) == 1 and not m.on


def test_talking_over_music_keeps_it_heard_and_talking_in_a_quiet_room_never_turns_it_on():
    over_music = [SOUND] * 6 + [SPEECH, SPEECH, SPEECH, SOUND] * 10
    assert all(heard_over(over_music, P, 0.5)[6:])
    quiet_room = [QUIET, SPEECH, SPEECH, SPEECH] * 20
    assert not any(heard_over(quiet_room, P, 0.5))
    only_speech = [SPEECH] * 40  # no evidence either way: the state holds
    assert heard_over([SOUND] * 6 + only_speech, P, 0.5)[-1]


def test_a_bad_window_kind_and_bad_params_are_refused_by_name():
    with pytest.raises(ValueError, match="window kind"):
        MusicHeard(P, 0.5).update("music")
    with pytest.raises(ValueError, match="off_fraction"):
        MusicHeardParams(on_fraction=0.5, off_fraction=0.5)
    with pytest.raises(ConfigError, match="audio.music: span_s: expected 2..120"):
        parse_config({"audio": {"music": {"span_s": 0.5}}}, env={})
    with pytest.raises(ConfigError, match="audio.music"):
        parse_config({"audio": {"music": {"spans": 10}}}, env={})
    assert parse_config({"audio": {"music": {"enabled": False}}}, env={}).audio.music.enabled is False


def test_the_readme_figures_are_the_evaluations():
    """README's music-heard table is docs/models/speech/music_heard.json, rounded."""
    import json

    from conftest import ROOT, SHIPPED_SPEECH

    from edge.manifest import load_manifest, manifest_path

    res = json.loads((ROOT / "docs" / "models" / "speech" / "music_heard.json").read_text())
    shipped = load_manifest(manifest_path(SHIPPED_SPEECH)).sha256
    for split in ("val", "test"):  # measured with the model that ships, not an earlier one
        assert res[split].get("model_sha256") == shipped, split
    readme = (ROOT / "README.md").read_text()
    for key, row in (("music_songs_heard", "songs alone in a room heard by their end"),
                     ("talk_over_music_windows_heard", "talking over music: windows with music still heard"),
                     ("talk_in_room_windows_heard", "talking in a room with 15 dB noise")):
        line = next(x for x in readme.splitlines() if x.startswith(f"| {row}"))
        cells = [c.strip() for c in line.split("|")[2:4]]
        want = [f"{100 * res[s][key]:.1f} %".replace(".0 %", " %") for s in ("val", "test")]
        assert cells == want, (row, cells, want)
        assert res["val"]["params"] == res["test"]["params"]
