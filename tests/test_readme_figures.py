"""README's speech figures are the shipped manifest's, as the conversion computed them."""

from __future__ import annotations

import json

from conftest import ROOT, SHIPPED_SPEECH

from edge.manifest import manifest_path


def test_readme_speech_figures_are_the_manifests():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Speech emotion"):readme.index("## Facial expression")]
    m = json.loads(manifest_path(SHIPPED_SPEECH).read_text())["metrics"]
    room, loco = m["room_test_int8"], m["leave_one_corpus_out"]
    want = [f"**{m['test_int8'][c]['uar']:.3f}**" for c in m["test_int8"]]
    want += [f"**{room['room_noise15_uar']:.3f}**", f"**{room['room_music10_uar']:.3f}**",
             f"**{100 * room['music_windows_passed']:.1f} %**"]
    assert loco, "the shipped manifest has no leave-one-corpus-out figures"
    want += [f"({loco['mean_uar_4class']:.3f})"]
    want += [f"{r['uar_4class']:.3f}" for r in loco["per_corpus"].values()]
    missing = [w for w in want if w not in section]
    assert not missing, f"README's speech section lacks the manifest's {missing}"
