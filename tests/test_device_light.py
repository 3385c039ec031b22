"""The device path never imports TensorFlow (nor SciPy, which the MFCC avoids)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT

CHECK = """
import sys
from edge.cli import main
rc = main(['predict', '--json', sys.argv[1]])
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'scipy', 'sklearn'))
print('HEAVY', heavy)
print('OTHER', sorted(m for m in ('edge.daemon_cli', 'edge.music', 'edge.calibrate_cli', 'edge.config')
                      if m in sys.modules))
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
    # nor the other commands' modules: only predict's group of the parser is built (session 21)
    assert "OTHER []" in res.stdout, res.stdout


BLAS = """
import sys
import edge.cli
edge.cli.one_blas_thread()  # what edge-cli's main does before NumPy loads
import numpy  # noqa: F401
from threadpoolctl import threadpool_info
print('BLAS', sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}))
"""


def test_edge_cli_runs_numpy_with_one_blas_thread_unless_told(tmp_path):
    """OpenBLAS's own threads (one per core) spun beside the scanner's workers: the
    features cost 4x the CPU.  edge-cli sets one BLAS thread before NumPy loads, for every
    command (predict kept OpenBLAS's default until session 21, when one thread had become
    the faster there too); a user's own OPENBLAS_NUM_THREADS is kept."""
    import os

    pytest.importorskip("threadpoolctl")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    res = subprocess.run([sys.executable, "-c", BLAS], capture_output=True, text=True, cwd=ROOT,
                         timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert "BLAS [1]" in res.stdout, res.stdout
    res = subprocess.run([sys.executable, "-c", BLAS], capture_output=True, text=True, cwd=ROOT,
                         timeout=120, env={**env, "OPENBLAS_NUM_THREADS": "2"})
    assert "BLAS [2]" in res.stdout, res.stdout
