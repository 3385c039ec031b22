"""edge-cli predict on real face images: frames with and without a face, crops, bad files."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from conftest import ROOT, run_cli
from face_helpers import face_frame, fer, needs_fer, no_face_frame

from edge.manifest import ModelError, manifest_path
from edge.runtime import load_model

SHIPPED_FACE = ROOT / "models_tflite" / "face_expression.tflite"
needs_face_model = pytest.mark.skipif(not SHIPPED_FACE.is_file(),
                                      reason=f"no shipped face model at {SHIPPED_FACE}")
pytestmark = [needs_fer, needs_face_model]


def parse_lines(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def write(path, img):
    import cv2

    assert cv2.imwrite(str(path), img)
    return path


def test_frames_crops_no_face_and_annotation(tmp_path):
    d = fer()
    ids = np.flatnonzero(d.split == 2)
    frames = tmp_path / "frames"
    frames.mkdir()
    with_face = write(frames / "a_face.jpg", face_frame(d.pixels[ids[0]]))
    blank = write(frames / "b_wall.png", no_face_frame())
    crops = tmp_path / "crops"
    crops.mkdir()
    for i in ids[:3]:
        write(crops / f"{i}.png", d.pixels[i])
    out = tmp_path / "annotated"
    res = run_cli("predict", "--json", "--annotate", str(out), str(frames))
    assert res.returncode == 0, res.stderr
    face, wall = parse_lines(res.stdout)
    labels = set(load_model(SHIPPED_FACE).manifest.labels)
    assert face["path"] == str(with_face) and face["modality"] == "face" and face["faces"] == 1
    assert face["label"] in labels and set(face["probabilities"]) == labels
    assert math.isclose(sum(face["probabilities"].values()), 1.0, abs_tol=1e-2)
    assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)
    assert -1 <= face["valence"] <= 1 and -1 <= face["arousal"] <= 1
    x, y, w, h = face["box"]
    assert 80 <= x + w / 2 <= 240 and 40 <= y + h / 2 <= 200
    assert wall == {"path": str(blank), "modality": "face", "label": None, "probabilities": {},
                    "valence": None, "arousal": None, "confidence": 0.0, "faces": 0, "box": None}
    assert sorted(p.name for p in out.iterdir()) == ["a_face.annotated.png", "b_wall.annotated.png"]

    res = run_cli("predict", "--json", "--face-crops", str(crops))
    assert res.returncode == 0, res.stderr
    objs = parse_lines(res.stdout)
    assert len(objs) == 3 and all(o["faces"] == 1 and o["label"] in labels for o in objs)
    res = run_cli("predict", str(with_face), str(blank))  # human-readable
    assert res.returncode == 0 and "(no face)" in res.stdout and "faces 1" in res.stdout


def test_bad_images_are_named_and_the_rest_still_run(tmp_path):
    import cv2

    d = fer()
    crop = d.pixels[np.flatnonzero(d.split == 2)[1]]
    good = write(tmp_path / "good.png", face_frame(crop))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("not an image\n" * 20)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(cv2.imencode(".jpg", face_frame(crop))[1].tobytes()[:2000])
    rgba = write(tmp_path / "rgba.png", cv2.cvtColor(face_frame(crop), cv2.COLOR_BGR2BGRA))
    deep = write(tmp_path / "deep.png", face_frame(crop, colour=False).astype(np.uint16) * 257)
    res = run_cli("predict", "--json", str(empty), str(text), str(cut), str(rgba), str(deep),
                  str(tmp_path / "missing.jpg"), str(good))
    assert res.returncode == 1
    objs = parse_lines(res.stdout)
    assert len(objs) == 7
    errors = {o["path"]: o["error"] for o in objs if "error" in o}
    assert "empty file (0 bytes)" in errors[str(empty)]
    assert "not a readable image" in errors[str(text)]
    assert "truncated JPEG" in errors[str(cut)]
    assert "file not found" in errors[str(tmp_path / "missing.jpg")]
    for path in errors:
        assert path in res.stderr
    ok = {o["path"]: o for o in objs if "error" not in o}
    assert set(ok) == {str(rgba), str(deep), str(good)}
    # RGBA and 16-bit versions of the same frame give the same answer as the 8-bit one
    assert ok[str(rgba)]["label"] == ok[str(deep)]["label"] == ok[str(good)]["label"]
    assert ok[str(rgba)]["box"] == ok[str(good)]["box"]


def test_face_recogniser_api_and_refusals(tmp_path):
    from edge.vision.expression import FaceRecogniser

    d = fer()
    crop = d.pixels[np.flatnonzero(d.split == 2)[0]]  # a face the cascade finds
    rec = FaceRecogniser(load_model(SHIPPED_FACE, "face"))
    r = rec.classify_frame(face_frame(crop))
    assert r.faces == 1 and r.label in rec.labels and r.box is not None and 0 <= r.confidence <= 1
    none = rec.classify_frame(no_face_frame(seed=4))
    assert (none.label, none.probabilities, none.valence, none.faces, none.box) == (None, {}, None, 0, None)
    c = rec.classify_crop(crop)
    assert c.faces == 1 and c.box == (0, 0, 48, 48)

    copy = tmp_path / "face.tflite"
    shutil.copy(SHIPPED_FACE, copy)
    m = manifest_path(copy)
    good = json.loads(manifest_path(SHIPPED_FACE).read_text())
    for change, message in ((lambda f: f.update(crop_size=64), "crop_size 64 gives input"),
                            (lambda f: f.update(mystery=1), r"unknown key\(s\) \['mystery'\]"),
                            (lambda f: f.pop("margin"), r"missing key\(s\) \['margin'\]")):
        data = json.loads(json.dumps(good))
        change(data["features"])
        m.write_text(json.dumps(data))
        with pytest.raises(ModelError, match=message):
            FaceRecogniser(load_model(copy))
    with pytest.raises(ModelError, match="modality 'face', expected 'speech'"):
        load_model(SHIPPED_FACE, "speech")


@needs_fer
def test_each_photo_is_looked_at_on_its_own(tmp_path):
    # a folder of photos is not a camera: a photo's answer does not depend on the photo
    # before it, even when the two are nearly the same (no still-frame reuse)
    import cv2

    d = fer()
    crop = d.pixels[np.flatnonzero(d.split == 2)[11]]
    a = face_frame(crop, size=(320, 240), face=150, at=(80, 40))
    rng = np.random.default_rng(1)
    b = np.clip(a + rng.normal(0, 3, a.shape), 0, 255).astype(np.uint8)
    both, alone = tmp_path / "both", tmp_path / "alone"
    both.mkdir()
    alone.mkdir()
    assert cv2.imwrite(str(both / "a.png"), a) and cv2.imwrite(str(both / "b.png"), b)
    assert cv2.imwrite(str(alone / "b.png"), b)
    outs = []
    for folder in (both, alone):
        res = run_cli("predict", "--json", str(folder))
        assert res.returncode == 0, res.stderr
        outs.append([json.loads(line) for line in res.stdout.splitlines()])
    b_in_folder, b_alone = outs[0][1], outs[1][0]
    assert b_in_folder["faces"] == 1
    assert {k: v for k, v in b_in_folder.items() if k != "path"} == \
        {k: v for k, v in b_alone.items() if k != "path"}
