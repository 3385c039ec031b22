"""The device path never imports TensorFlow (nor SciPy, which the MFCC avoids)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import soundfile as sf
from conftest import ROOT

CHECK = """
import sys
from edge.cli import main
rc = main(['predict', '--json', sys.argv[1]])
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'scipy', 'sklearn'))
print('HEAVY', heavy)
sys.exit(rc)
"""


def test_predict_does_not_import_tensorflow(tmp_path):
    wav = tmp_path / "tone.wav"
    t = np.arange(2 * 16000) / 16000
    sf.write(wav, (0.1 * np.sin(2 * np.pi * 220 * t) * (t % 0.5 < 0.25)).astype(np.float32), 16000)
    res = subprocess.run([sys.executable, "-c", CHECK, str(wav)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "HEAVY []" in res.stdout
