"""Installs that work everywhere: the shipped models are package data, found from any folder.

* the model lookup: shipped models by default, an explicit path wins, errors name the file;
* the built wheel (``pip wheel``, build isolation as ``pip install .`` does it), installed
  with ``--no-deps`` into a fresh venv whose dependencies come from this test venv (a
  ``.pth`` line: no 100 MB of NumPy/OpenCV/LiteRT downloads per run), runs
  ``edge-cli predict`` from a folder outside the checkout;
* ``systemd/install.sh`` into a temporary prefix (apt and the user creation skipped, systemd
  skipped where it does not run): the daemon's config names no model and both are found;
  a re-run upgrades code and models and keeps the user's config.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT
from face_helpers import FER, face_frame, fer

from edge.demo import MEDIA_DIR
from edge.manifest import ModelError, manifest_path
from edge.runtime import SHIPPED_MODELS, default_models_dir, load_model, resolve_model_path

OFFLINE = re.compile(r"NewConnectionError|Temporary failure in name resolution|Network is "
                     r"unreachable|No route to host|ProxyError|Could not fetch URL|"
                     r"No matching distribution found for setuptools")
SOURCE = ("pyproject.toml", "setup.py", "README.md", "edge", "models_tflite", "training",
          "convert", "systemd")
MAX_WHEEL_BYTES = 3 * 1024 * 1024
CLIP = sorted(MEDIA_DIR.glob("*.flac"))[0]


def run(cmd: list, cwd: Path, timeout: float = 300, env: dict | None = None):
    env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k != "PYTHONPATH"}
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def checked(res: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    out = res.stdout + res.stderr
    if res.returncode != 0 and OFFLINE.search(out):
        pytest.skip(f"{what}: no package index reachable ({OFFLINE.search(out).group(0)})")
    assert res.returncode == 0, f"{what}:\n{out[-4000:]}"
    return res


def source_copy(dest: Path) -> Path:
    """What a fresh checkout holds for the build (no build/, venvs or runs)."""
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCE:
        src = ROOT / name
        (shutil.copytree(src, dest / name, ignore=ignore) if src.is_dir()
         else shutil.copy2(src, dest / name))
    return dest


def fresh_venv(path: Path, with_pip: bool = False) -> Path:
    """A new venv that sees this test venv's packages (the dependencies) through a .pth
    line; the .pth files in there (this checkout's editable install) are not processed."""
    checked(run([sys.executable, "-m", "venv", *([] if with_pip else ["--without-pip"]), path],
                cwd=path.parent, timeout=120), "venv")
    (sp,) = (path / "lib").glob("python3*/site-packages")
    (sp / "_test_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return path / "bin"


def doctor_models(edge_cli: Path, config: Path, cwd: Path) -> dict:
    res = run([edge_cli, "doctor", "--json", "--config", config], cwd=cwd, timeout=120)
    report = json.loads(res.stdout)
    return {c["name"]: c for c in report["checks"] if c["name"] in ("speech model", "face model")}


# ------------------------------------------------------------------ the lookup
def test_shipped_models_are_found_from_the_checkout():
    assert default_models_dir() == ROOT / "models_tflite"  # editable install or sys.path
    for modality, name in SHIPPED_MODELS.items():
        path = resolve_model_path(modality)
        assert path == ROOT / "models_tflite" / name
        assert load_model(path, modality).manifest.modality == modality


def test_an_explicit_path_wins_and_a_missing_one_is_named(tmp_path):
    for name in SHIPPED_MODELS.values():
        for f in (ROOT / "models_tflite" / name, manifest_path(ROOT / "models_tflite" / name)):
            shutil.copy2(f, tmp_path / f.name)
    mine = tmp_path / SHIPPED_MODELS["speech"]
    assert resolve_model_path("speech", mine) == mine
    assert load_model(resolve_model_path("speech", mine), "speech").path == mine
    missing = tmp_path / "nope" / "speech.tflite"
    with pytest.raises(ModelError, match=re.escape(str(manifest_path(missing)))):
        load_model(resolve_model_path("speech", missing), "speech")  # no silent fallback
    face = tmp_path / SHIPPED_MODELS["face"]
    face.write_bytes(face.read_bytes()[:-1] + b"\0")
    with pytest.raises(ModelError, match="does not match its manifest"):
        load_model(resolve_model_path("face", face), "face")
    with pytest.raises(ModelError, match="modality 'voice'"):
        resolve_model_path("voice")


def test_cli_predict_from_another_folder_needs_no_model_path(tmp_path):
    """The editable install (this test venv) from a folder that is not the checkout."""
    clip = shutil.copy2(CLIP, tmp_path / "clip.flac")
    exe = Path(sys.executable).parent / "edge-cli"
    res = run([exe, "predict", "--json", clip], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["label"] is not None


# ------------------------------------------------------------------ the wheel
@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = source_copy(tmp / "src")
    checked(run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "dist", src],
                cwd=tmp), "pip wheel")
    (whl,) = (tmp / "dist").glob("moodedge-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """bin/ of a fresh venv with the wheel installed (--no-deps)."""
    root = tmp_path_factory.mktemp("venv")
    bin_dir = fresh_venv(root / "v")
    checked(run([sys.executable, "-m", "pip", "--python", bin_dir / "python", "install", "-q",
                 "--no-deps", "--no-index", wheel], cwd=root), "pip install wheel")
    return bin_dir


def test_wheel_carries_the_models_and_only_the_device(wheel):
    assert wheel.stat().st_size <= MAX_WHEEL_BYTES, wheel.stat().st_size
    names = zipfile.ZipFile(wheel).namelist()
    for name in SHIPPED_MODELS.values():
        for f in (name, Path(name).with_suffix(".json").name):
            assert f"edge/models/{f}" in names, names
            shipped = (ROOT / "models_tflite" / f).read_bytes()
            assert zipfile.ZipFile(wheel).read(f"edge/models/{f}") == shipped
    tops = {n.split("/")[0] for n in names}
    assert tops == {"edge", wheel.name.split("-py3")[0] + ".dist-info"}, tops  # no training/convert


def test_installed_wheel_predicts_speech_and_faces_from_tmp(installed, tmp_path):
    """From a folder outside the checkout: the same predictions as the checkout makes."""
    from edge.predict import predict_paths

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    inputs = [shutil.copy2(CLIP, elsewhere / "clip.flac")]
    if FER.is_file():  # a real FER-2013 face in a camera-like frame
        import cv2

        d = fer()
        frame = elsewhere / "face.png"
        assert cv2.imwrite(str(frame), face_frame(d.pixels[d.split == 2][0]))
        inputs.append(frame)
    res = run([installed / "edge-cli", "predict", "--json", *inputs], cwd=elsewhere)
    assert res.returncode == 0, res.stderr
    got = [json.loads(line) for line in res.stdout.splitlines()]
    want = [json.loads(json.dumps(p.as_json())) for p in predict_paths(inputs)]
    assert got == want
    assert got[0]["modality"] == "speech" and got[0]["label"] is not None
    if len(inputs) == 2:
        assert got[1]["modality"] == "face" and got[1]["faces"] == 1
    else:
        pytest.skip(f"speech checked; FER-2013 not found at {FER} for the face image")


def test_installed_wheel_resolves_both_models_inside_the_venv(installed, tmp_path):
    (sp,) = (installed.parent / "lib").glob("python3*/site-packages")
    models = sp / "edge" / "models"
    res = run([installed / "edge-cli", "predict", "--help"], cwd=tmp_path, env={"COLUMNS": "400"})
    assert str(models / SHIPPED_MODELS["speech"]) in res.stdout
    assert str(models / SHIPPED_MODELS["face"]) in res.stdout
    config = tmp_path / "config.toml"  # the daemon's config with no model path in it
    config.write_text(run([installed / "edge-cli", "config", "example"], cwd=tmp_path).stdout)
    found = doctor_models(installed / "edge-cli", config, tmp_path)
    assert {k: (c["status"], c["data"]["path"]) for k, c in found.items()} == {
        "speech model": ("pass", str(models / SHIPPED_MODELS["speech"])),
        "face model": ("pass", str(models / SHIPPED_MODELS["face"]))}
    for top in ("training", "convert"):
        res = run([installed / "python", "-c", f"import {top}"], cwd=tmp_path)
        assert f"No module named '{top}'" in res.stderr


# ------------------------------------------------------------------ systemd/install.sh
@pytest.mark.skipif(os.geteuid() != 0, reason="install.sh is a root script (CI runs as root)")
def test_install_sh_into_a_prefix_then_upgrade_keeps_the_config(tmp_path):
    src = source_copy(tmp_path / "src")
    prefix, etc, units = tmp_path / "opt", tmp_path / "etc", tmp_path / "units"
    prefix.mkdir()
    fresh_venv(prefix / "venv", with_pip=True)  # install.sh keeps a venv that is there
    legacy = prefix / "models"  # what installs before this one made and named in the config
    legacy.mkdir()
    (legacy / SHIPPED_MODELS["speech"]).write_bytes(b"stale")
    env = {"MOODEDGE_PREFIX": str(prefix), "MOODEDGE_ETC": str(etc),
           "MOODEDGE_UNIT_DIR": str(units), "MOODEDGE_USER": "root",
           "MOODEDGE_SKIP": "apt user"}
    out = checked(run(["bash", src / "systemd" / "install.sh"], cwd=tmp_path, env=env,
                      timeout=600), "install.sh").stdout
    config = etc / "config.toml"
    text = config.read_text()
    assert not re.search(r"^\s*(speech|face)_model\s*=", text, re.M), text
    assert re.search(r'^state_dir = "/var/lib/moodedge"', text, re.M)
    assert oct(config.stat().st_mode & 0o777) == "0o640"
    unit = (units / "moodedge.service").read_text()
    assert f"ExecStart={prefix}/venv/bin/edge-cli run --config {config}" in unit
    assert "edge-cli doctor" in out and "[PASS] speech model" in out and "[PASS] face model" in out
    if not Path("/run/systemd/system").is_dir():
        assert "systemd is not running here" in out
    edge_cli = prefix / "venv" / "bin" / "edge-cli"
    (sp,) = (prefix / "venv" / "lib").glob("python3*/site-packages")
    found = doctor_models(edge_cli, config, tmp_path)
    assert {k: c["data"]["path"] for k, c in found.items()} == {
        "speech model": str(sp / "edge" / "models" / SHIPPED_MODELS["speech"]),
        "face model": str(sp / "edge" / "models" / SHIPPED_MODELS["face"])}
    assert (legacy / SHIPPED_MODELS["speech"]).read_bytes() == \
        (ROOT / "models_tflite" / SHIPPED_MODELS["speech"]).read_bytes()

    # the user edits the config; a newer checkout changes code and a model's manifest
    config.write_text(text.replace('host = "localhost"', 'host = "broker.lan"'))
    edited = config.read_bytes()
    (src / "edge" / "_upgrade_marker.py").write_text("MARK = 2\n")
    manifest = src / "models_tflite" / "face_expression.json"
    data = json.loads(manifest.read_text())
    data["licence"] += " (upgraded)"
    manifest.write_text(json.dumps(data, indent=2) + "\n")
    out = checked(run(["bash", src / "systemd" / "install.sh"], cwd=tmp_path, env=env,
                      timeout=600), "install.sh (upgrade)").stdout
    assert "kept the existing config" in out
    assert config.read_bytes() == edited
    assert (sp / "edge" / "_upgrade_marker.py").read_text() == "MARK = 2\n"
    assert (sp / "edge" / "models" / "face_expression.json").read_text() == manifest.read_text()
    found = doctor_models(edge_cli, config, tmp_path)
    assert [c["status"] for c in found.values()] == ["pass", "pass"]
    assert not (src / "build").exists()  # no stale build/ left in the checkout


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None,
                    reason="needs root to run the script as another user")
def test_install_sh_as_a_user_asks_sudo_or_says_to_be_root():
    """As a user: it hands itself to sudo, with the MOODEDGE_* settings; with no sudo on
    PATH it says to run it as root. (A stand-in `sudo` records how it was called.)"""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="moodedge-sudo-"))
    try:
        os.chmod(d, 0o755)
        script = shutil.copy2(ROOT / "systemd" / "install.sh", d / "install.sh")
        bin_dir = d / "bin"
        bin_dir.mkdir()
        (bin_dir / "sudo").write_text('#!/bin/sh\necho "sudo $*"\n')
        os.chmod(bin_dir / "sudo", 0o755)
        as_user = ["runuser", "-u", "nobody", "--", "env", "-i", "MOODEDGE_PREFIX=/tmp/p",
                   "MOODEDGE_SKIP=apt user"]
        res = run([*as_user, f"PATH={bin_dir}:/usr/bin:/bin", "bash", script], cwd=d)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() in (
            f"sudo --preserve-env=MOODEDGE_PREFIX,MOODEDGE_SKIP -- {script}",
            f"sudo --preserve-env=MOODEDGE_SKIP,MOODEDGE_PREFIX -- {script}")
        no_sudo = d / "nosudo"
        no_sudo.mkdir()
        for tool in ("id", "env", "sed", "paste", "dirname"):
            os.symlink(shutil.which(tool), no_sudo / tool)
        res = run([*as_user, f"PATH={no_sudo}", shutil.which("bash"), script], cwd=d)
        assert res.returncode == 1 and "run as root (no sudo here)" in res.stderr, res.stderr
    finally:
        shutil.rmtree(d)
