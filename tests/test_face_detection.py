"""BlazeFace detection, eyes-level crops, several faces, and the honesty gates, on real
FER-2013 faces; the composed-scene test set and its scoring."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import ROOT
from face_helpers import face_frame, fer, needs_fer, no_face_frame

from edge.manifest import ModelError
from edge.vision import align
from edge.vision.blazeface import (
    BlazeFaceDetector,
    BlazeFaceParams,
    Detection,
    check_vendored,
    stretch,
    windows_for,
)
from edge.vision.detectors import make_detector
from edge.vision.people import choose_faces, fuse_faces

DETECTOR = ROOT / "models_tflite" / "face_detection_short_range.tflite"
SHIPPED_FACE = ROOT / "models_tflite" / "face_expression.tflite"


def private(n: int, start: int = 0) -> np.ndarray:
    d = fer()
    return d.pixels[np.flatnonzero(d.split == 2)[start : start + n]]


@pytest.fixture(scope="module")
def det() -> BlazeFaceDetector:
    return BlazeFaceDetector()


@pytest.fixture(scope="module")
def rec():
    from edge.runtime import load_model
    from edge.vision.expression import FaceRecogniser

    return FaceRecogniser(load_model(SHIPPED_FACE, "face"))


def test_vendored_detector_is_checked(tmp_path):
    m = check_vendored(DETECTOR)
    assert m["bytes"] == DETECTOR.stat().st_size <= 256 * 1024 and "Apache-2.0" in m["licence"]
    copy = tmp_path / DETECTOR.name
    shutil.copy(DETECTOR, copy)
    shutil.copy(DETECTOR.with_suffix(".json"), copy.with_suffix(".json"))
    with open(copy, "ab") as f:
        f.write(b"x")
    with pytest.raises(ModelError, match="sha256 .* does not match"):
        BlazeFaceDetector(model_path=copy)
    copy.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match="detector manifest missing"):
        BlazeFaceDetector(model_path=copy)
    with pytest.raises(ValueError, match="expected one of"):
        make_detector("yolo")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['mystery'\]"):
        make_detector("blazeface", mystery=1)
    with pytest.raises(ValueError, match="min_score"):
        BlazeFaceParams(min_score=1.5)
    with pytest.raises(ValueError, match="contrast: expected 'stretch' or 'none', got 'clahe'"):
        BlazeFaceParams(contrast="clahe")
    w = np.linspace(60.0, 100.0, 128 * 128, dtype=np.float32).reshape(128, 128)
    s = stretch(w)  # the 1st-99th percentile of a dim window spread over 0..255
    assert s.min() == 0.0 and s.max() == 255.0 and np.median(s) == pytest.approx(127.5, abs=1)
    assert stretch(np.full((4, 4), 90.0)).max() == 0.0  # a flat window stays flat


@pytest.mark.parametrize("size,tile", [((320, 240), 160), ((640, 480), 160), ((320, 240), 240)])
def test_windows_cover_the_frame_and_every_face_up_to_the_overlap(size, tile):
    w, h = size
    wins = windows_for(w, h, tile, 0.5)
    tiles = [t for t in wins if t[2] == min(tile, w, h)]
    assert all(0 <= x and x + s <= w + 1e-6 and 0 <= y and y + s <= h + 1e-6 for x, y, s in tiles)
    rng = np.random.default_rng(0)
    face = int(min(tile, w, h) * 0.5)
    for _ in range(200):  # any face up to half a tile lies whole inside one window
        x, y = rng.integers(0, w - face), rng.integers(0, h - face)
        assert any(tx <= x and x + face <= tx + s and ty <= y and y + face <= ty + s for tx, ty, s in wins)


@needs_fer
def test_blazeface_finds_real_faces_with_eyes_and_nothing_in_faceless_frames(det):
    hits = 0
    for c in private(20):
        for side, at in ((160, (80, 40)), (64, (200, 120))):
            dets = det.detect(align.bgr_to_gray(face_frame(c, face=side, at=at)))
            if not dets:
                continue
            d = max(dets, key=lambda d: d.box[2])
            x, y, w, h = d.box
            assert abs(x + w / 2 - (at[0] + side / 2)) < 0.25 * side
            assert abs(y + h / 2 - (at[1] + side / 2)) < 0.25 * side
            assert 0.5 * side < w < 1.2 * side
            eyes, nose, mouth = d.keypoints[:2], d.keypoints[2], d.keypoints[3]
            assert eyes[:, 1].max() < nose[1] < mouth[1]  # eyes above the nose above the mouth
            hits += 1
    assert hits >= 36, f"found {hits}/40 real faces"
    for seed in range(10):
        assert det.detect(align.bgr_to_gray(no_face_frame(seed=seed))) == []
        assert det.detect(align.bgr_to_gray(no_face_frame(size=(640, 480), seed=seed))) == []
    assert det.detect(np.full((240, 320), 128, np.uint8)) == []


@needs_fer
def test_gray_is_opencvs_and_a_tilted_face_comes_out_level(det):
    import cv2

    c = private(1, 3)[0]
    frame = face_frame(c)
    np.testing.assert_array_equal(align.bgr_to_gray(frame), cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    gray = align.bgr_to_gray(frame)
    upright = max(det.detect(gray), key=lambda d: d.box[2])
    # the same frame turned by 40° about the face's centre (a head tilted to one side)
    m = cv2.getRotationMatrix2D((160.0, 120.0), 40.0, 1.0)
    tilted = cv2.warpAffine(gray, m, (320, 240), borderMode=cv2.BORDER_REPLICATE)
    d = max(det.detect(tilted), key=lambda d: d.box[2])
    p = align.AlignParams(side=1.2, dy=-0.1)
    g0, g = align.geometry(upright.box, upright.keypoints, p), align.geometry(d.box, d.keypoints, p)
    assert abs(g.roll - g0.roll + 40) < 8  # cv2's positive angle turns counter-clockwise
    assert g.turn == g.roll  # past level_above: the crop is turned upright
    a0 = align.crop_geometry(gray, g0, 48).astype(float)
    a = align.crop_geometry(tilted, g, 48).astype(float)
    unlevelled = align.aligned_crop(tilted, (g.centre[0] - 0.5, g.centre[1] - 0.5), g.side, 0.0, 48)
    err, err_unlevelled = np.abs(a - a0).mean(), np.abs(unlevelled - a0).mean()
    assert err < 0.6 * err_unlevelled, (err, err_unlevelled)
    # small tilts are left as they are (the model learnt on unlevelled crops)
    for tilt, turn in ((10.0, 0.0), (-30.0, -30.0)):
        t = np.radians(tilt)
        kp = np.array([[0, 0], [np.cos(t), np.sin(t)], [0.5, 0.5], [0.5, 1], [0, 0], [1, 0]]) * 20 + 40
        assert align.geometry((30, 30, 40, 40), kp, p).turn == pytest.approx(turn)


def test_fusion_policies():
    a, b, c = (np.array(v, np.float32) for v in ([0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]))
    boxes = [(0, 0, 50, 50), (140, 100, 40, 40), (250, 10, 30, 30)]  # frame 320×240
    got, i = fuse_faces([a, b, c], boxes, (320, 240), "largest")
    assert i == 0 and np.array_equal(got, a)
    got, i = fuse_faces([a, b, c], boxes, (320, 240), "nearest_to_centre")
    assert i == 1 and np.array_equal(got, b)
    got, i = fuse_faces([a, b, c], boxes, (320, 240), "mean")
    assert i is None and np.allclose(got, (a + b + c) / 3)
    # faces without a guess take no part; one left is that face, for every policy
    for policy in ("largest", "mean", "nearest_to_centre"):
        got, i = fuse_faces([None, None, c], boxes, (320, 240), policy)
        assert i == 2 and np.allclose(got, c)
        assert fuse_faces([None], boxes[:1], (320, 240), policy) == (None, None)
        assert np.array_equal(fuse_faces([a], boxes[:1], (320, 240), policy)[0], a)
    assert choose_faces([(0, 0, 10, 10), (0, 0, 30, 30), (5, 5, 20, 20)], 2) == [1, 2]
    # Regression: ``mean`` of one face renormalised it, so a face whose float32
    # probabilities do not sum to exactly 1 (a softmax's usually do not) came out changed
    # in the 8th decimal: one person was not exactly the one-person answer.
    e = np.exp(np.random.default_rng(0).normal(size=7).astype(np.float32))
    d = (e / e.sum()).astype(np.float32)  # a softmax of 7 classes: sums to 1 + 1.2e-7
    assert float(d.sum()) != 1.0
    for policy in ("largest", "mean", "nearest_to_centre"):
        got, i = fuse_faces([d], boxes[:1], (320, 240), policy)
        assert i == 0 and np.array_equal(got, d), policy
        got, i = fuse_faces([None, d], boxes[:2], (320, 240), policy)
        assert i == 1 and np.array_equal(got, d), policy
    with pytest.raises(ValueError, match="policy 'vote'"):
        fuse_faces([a], boxes[:1], (320, 240), "vote")
    with pytest.raises(ValueError, match="max_faces"):
        choose_faces(boxes, 0)


@needs_fer
def test_one_face_is_the_largest_face_answer_and_two_faces_are_counted(rec):
    from edge.vision.expression import FaceOptions, FaceRecogniser

    c1, c2 = private(2, 3)
    one = rec.classify_frame(face_frame(c1))
    assert one.faces == 1 and one.label in rec.labels and one.reason is None and len(one.per_face) == 1
    o = one.per_face[0]
    assert one.box == o.box and np.allclose([one.probabilities[k] for k in rec.labels], o.probabilities)
    # two people: a big face and a small one beside it
    frame = face_frame(c1, size=(480, 240), face=160, at=(20, 40))
    small = face_frame(c2, size=(480, 240), face=100, at=(330, 70))
    frame[:, 300:] = small[:, 300:]
    two = rec.classify_frame(frame)
    assert two.faces == 2 and len(two.per_face) == 1 and two.box[0] < 200  # the largest only
    both = FaceRecogniser(rec.model, rec.detector, FaceOptions(max_faces=2, fusion="mean"))
    r = both.classify_frame(frame)
    assert r.faces == 2 and len(r.per_face) == 2 and r.box is None
    mean = np.mean([f.probabilities for f in r.per_face], axis=0)
    assert np.allclose([r.probabilities[k] for k in rec.labels], mean / mean.sum(), atol=1e-6)
    largest = FaceRecogniser(rec.model, rec.detector, FaceOptions(max_faces=2))
    assert largest.classify_frame(frame).probabilities == two.probabilities
    none = rec.classify_frame(no_face_frame(seed=4))
    assert (none.label, none.probabilities, none.faces, none.reason) == (None, {}, 0, "no face")
    with pytest.raises(ValueError, match="fusion"):
        FaceOptions(fusion="vote")


@needs_fer
def test_small_and_turned_faces_get_no_guess(rec):
    from edge.vision.expression import FaceOptions, FaceRecogniser

    c = private(1, 3)[0]
    strict = FaceRecogniser(rec.model, rec.detector, FaceOptions(min_face=200))
    r = strict.classify_frame(face_frame(c))
    assert r.label is None and r.faces == 1 and r.probabilities == {} and "too small" in r.reason
    assert r.per_face[0].probabilities is None
    # the gates read the detector's geometry: a nose far to one side of the eyes is a turned head
    kp = np.array([[40, 40], [60, 40], [68, 55], [50, 70], [30, 45], [70, 45]], np.float32)
    turned = Detection((25.0, 25.0, 50.0, 50.0), 0.9, kp)
    g = align.geometry(turned.box, kp, align.AlignParams())
    assert g.yaw == pytest.approx(0.9) and g.roll == pytest.approx(0.0)
    loose = FaceRecogniser(rec.model, rec.detector, FaceOptions(min_face=20))
    assert "head turned" in loose.refusal(turned, g)
    frontal = Detection((25.0, 25.0, 50.0, 50.0), 0.9, kp - [[0, 0], [0, 0], [18, 0], [0, 0], [0, 0], [0, 0]])
    g = align.geometry(frontal.box, frontal.keypoints, align.AlignParams())
    assert loose.refusal(frontal, g) is None


@needs_fer
def test_fer_crops_go_through_the_alignment_path(rec):
    crops = private(20)
    results = [rec.classify_crop(c) for c in crops]
    assert sum(r.extra["aligned"] for r in results) >= 17
    for c, r in zip(crops, results):
        assert r.faces == 1 and r.box == (0, 0, 48, 48) and r.label in rec.labels
        if not r.extra["aligned"]:  # no face found: today's path exactly
            want = rec.probabilities(c)[0]
            assert np.allclose([r.probabilities[k] for k in rec.labels], want)


@needs_fer
def test_composed_scenes_are_seeded_real_and_scored():
    from training.face_scenes import compose, matches, score

    a, e = compose("public", 6, 4, (320, 240), ROOT.parent / "shared" / "data")
    b, _ = compose("public", 6, 4, (320, 240), ROOT.parent / "shared" / "data")
    assert all(np.array_equal(x.gray, y.gray) and x.faces == y.faces for x, y in zip(a, b))
    assert all(1 <= len(s.faces) <= 3 for s in a) and all(s.faces == [] for s in e)
    for s in a:
        assert s.gray.shape == (240, 320) and s.gray.dtype == np.uint8 and s.gray.std() > 5
        for x, y, side, _ in s.faces:
            assert 30 <= side <= 120 and 0 <= x <= 320 - side and 0 <= y <= 240 - side
    p, _ = compose("private", 6, 4, (320, 240), ROOT.parent / "shared" / "data")
    assert not np.array_equal(p[0].gray, a[0].gray)
    assert matches((10, 10, 40, 40), (0, 0, 60, 60)) and not matches((100, 100, 40, 40), (0, 0, 60, 60))
    scenes = iter(a + e)
    truth = score(lambda g: [tuple(map(float, f)) for f in next(scenes).faces], a, e)
    assert truth["recall_all"] == 1.0 and truth["false_faces_per_100_face_free_frames"] == 0.0
    empty = score(lambda g: [], a, e)
    assert empty["recall_all"] == 0.0 and json.dumps(empty)


@needs_fer
def test_camera_frames_reach_the_expression_model_without_opencv(tmp_path):
    # a Pi camera (or .npy) frame → BlazeFace → aligned crop → eight test-time views →
    # the model: no step imports OpenCV (about 22 MB of the daemon's memory)
    import subprocess
    import sys

    np.save(tmp_path / "0.npy", face_frame(private(1, 5)[0], size=(640, 480), face=160))
    np.save(tmp_path / "1.npy", no_face_frame(size=(640, 480), seed=2))
    script = (
        "import json, sys\n"
        "from edge.vision.sources import ImageFiles\n"
        "from edge.vision.expression import face_recogniser\n"
        "rec = face_recogniser()\n"
        f"frames = ImageFiles([{str(tmp_path)!r}]).frames()\n"
        "out = [rec.classify_frame(f) for f in frames]\n"
        "print(json.dumps({'faces': [r.faces for r in out], 'label': out[0].label,"
        " 'views': rec.params.views, 'cv2': 'cv2' in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["faces"] == [1, 0] and got["label"] is not None and got["views"] == 8
    assert got["cv2"] is False


def test_a_window_is_the_unturned_affine_sample():
    # window() resamples by rows then columns; the numbers are sample_affine's exactly
    rng = np.random.default_rng(5)
    for _ in range(60):
        H, W = (int(v) for v in rng.integers(2, 500, 2))
        gray = rng.integers(0, 256, (H, W), dtype=np.uint8)
        side = float(rng.uniform(8, 700))
        x0, y0 = float(rng.uniform(-60, W)), float(rng.uniform(-60, H))
        k = max(1, int(side / 128))
        g = align.shrink(gray, k) if k > 1 else gray
        s = side / k / 128
        m = np.array([[s, 0.0, x0 / k + (s - 1) / 2], [0.0, s, y0 / k + (s - 1) / 2]], np.float32)
        np.testing.assert_array_equal(align.window(gray, x0, y0, side, 128), align.sample_affine(g, m, 128))
