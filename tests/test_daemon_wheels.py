"""The device install resolves prebuilt aarch64 wheels for Python 3.11 (a Raspberry Pi 4/5
on Raspberry Pi OS bookworm): nothing in the base dependencies needs a compiler there."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import numpy as np
import pytest
from conftest import ROOT
from packaging.markers import Marker
from packaging.requirements import Requirement

PLATFORMS = ("manylinux_2_27_aarch64", "manylinux2014_aarch64", "linux_aarch64")
PI_ENV = {"python_version": "3.11", "python_full_version": "3.11.2", "platform_machine":
          "aarch64", "sys_platform": "linux", "platform_system": "Linux",
          "implementation_name": "cpython", "os_name": "posix"}
PURE_PYTHON_SDISTS = {"python-speech-features"}  # sdist only on PyPI, pure Python
OFFLINE = re.compile(r"NewConnectionError|Temporary failure in name resolution|"
                     r"Network is unreachable|No route to host|timed out|ProxyError|"
                     r"Could not fetch URL|ConnectionError")


def base_requirements() -> list[Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = [Requirement(r) for r in data["project"]["dependencies"]]
    return [r for r in reqs if r.marker is None or Marker(str(r.marker)).evaluate(PI_ENV)]


def _download(args: list[str], dest) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                          "-q", "-d", str(dest), *args], capture_output=True, text=True,
                         timeout=300)
    if res.returncode != 0 and OFFLINE.search(res.stdout + res.stderr):
        pytest.skip("no network to the package index: cannot check aarch64 wheels "
                    f"({OFFLINE.search(res.stdout + res.stderr).group(0)})")
    return res


@pytest.mark.skipif(np.__version__.startswith("1."),
                    reason="the same check as in the NumPy 2 run (tests/run.sh runs both)")
@pytest.mark.parametrize("pin", [None, "numpy==1.24.2"], ids=["latest", "bookworm-apt-numpy"])
def test_base_dependencies_resolve_to_aarch64_cp311_wheels(tmp_path, pin):
    """Also with the venv pinned to bookworm's apt NumPy (systemd/install.sh does that so
    apt's picamera2 keeps working): then OpenCV must resolve to a NumPy-1 build."""
    reqs = base_requirements()
    binary = [str(Requirement(f"{r.name}{r.specifier}")) for r in reqs
              if r.name not in PURE_PYTHON_SDISTS]
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    res = _download(["--only-binary=:all:", *plat, "--python-version", "3.11", *binary,
                     *([pin] if pin else [])], tmp_path / "wheels")
    assert res.returncode == 0, res.stderr[-2000:]
    wheels = sorted(p.name for p in (tmp_path / "wheels").iterdir())
    names = {re.sub(r"[-_.]+", "-", w.split("-")[0]).lower() for w in wheels}
    for r in binary:
        assert Requirement(r).name.lower() in names, (r, wheels)
    if pin:
        assert "numpy-1.24.2-" in " ".join(wheels), wheels
    for w in wheels:
        assert w.endswith(".whl"), w
        py, abi, plat = w[:-4].split("-")[-3:]
        assert plat == "any" or "aarch64" in plat, w
        assert py in ("py3", "py2.py3", "cp311") or (abi == "abi3" and py.startswith("cp3")), w
    # the one sdist-only dependency is pure Python (no compiler on the Pi)
    for r in reqs:
        if r.name in PURE_PYTHON_SDISTS:
            res = _download(["--no-deps", "--no-binary=:all:",
                             str(Requirement(f"{r.name}{r.specifier}"))], tmp_path / "sdist")
            assert res.returncode == 0, res.stderr[-2000:]
            import tarfile

            (sdist,) = (tmp_path / "sdist").iterdir()
            with tarfile.open(sdist) as tf:
                sources = [m.name for m in tf.getmembers()]
            assert not [s for s in sources if s.endswith((".c", ".cpp", ".pyx"))], sources
