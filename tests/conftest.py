from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("MOODEDGE_DATA", ROOT.parent / "shared" / "data"))
RAVDESS = DATA / "speech" / "ravdess"
EMODB = DATA / "speech" / "emodb"
SHIPPED_SPEECH = ROOT / "models_tflite" / "speech_emotion.tflite"


def have_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


needs_data = pytest.mark.skipif(not RAVDESS.is_dir(), reason=f"shared data not found at {DATA}")
needs_tf = pytest.mark.skipif(
    not (have_module("tensorflow") and have_module("sklearn")),
    reason="needs the [train] extra (tensorflow, scikit-learn)",
)


def ravdess_clip(actor: int = 19, emotion: str = "05", intensity: str = "02",
                 statement: str = "01", rep: str = "01") -> Path:
    return RAVDESS / f"Actor_{actor:02d}" / f"03-01-{emotion}-{intensity}-{statement}-{rep}-{actor:02d}.flac"


def run_cli(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("edge-cli", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "edge.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ, **(env or {})})
