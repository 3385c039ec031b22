"""Regenerate the demo clips in ``edge/demo/media/`` (a maintainer tool, not run by users).

The clips are synthetic speech made by this project with espeak-ng (GPL-3 program; its
output is not covered by the GPL), from sentences written for the project, so they may
ship under the project's licence.  Needs ``apt install espeak-ng`` and SciPy::

    python -m edge.demo.make_media
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

MEDIA = Path(__file__).resolve().parent / "media"
RATE = 16000
# (file name, espeak-ng voice options, sentence)
CLIPS = (
    ("01-excited.flac", ["-v", "en-us", "-p", "75", "-s", "185", "-a", "190"],
     "Wow, this is wonderful! We won the match tonight, let's celebrate!"),
    ("02-low.flac", ["-v", "en-us", "-p", "20", "-s", "115", "-a", "80"],
     "I don't know. Everything feels so slow and grey today."),
    ("03-tense.flac", ["-v", "en-us+m3", "-p", "45", "-s", "175", "-a", "200"],
     "Stop it right now! I have told you a hundred times!"),
)


def synthesise(options: list[str], text: str) -> np.ndarray:
    from scipy.signal import resample_poly

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        subprocess.run(["espeak-ng", *options, "-w", str(wav), text], check=True)
        x, rate = sf.read(wav, dtype="float64")
    if x.ndim > 1:
        x = x.mean(axis=1)
    y = resample_poly(x, RATE, rate)
    y = 0.7 * y / max(1e-9, float(np.abs(y).max()))
    pad = np.zeros(int(0.3 * RATE))
    return np.concatenate([pad, y, pad]).astype(np.float32)


def main() -> None:
    MEDIA.mkdir(exist_ok=True)
    for name, options, text in CLIPS:
        sf.write(MEDIA / name, synthesise(options, text), RATE, subtype="PCM_16", format="FLAC")
        print(name, (MEDIA / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
