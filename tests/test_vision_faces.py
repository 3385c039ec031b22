"""The shared face preprocessing, the face parameters and the Haar detector on real faces."""

from __future__ import annotations

import numpy as np
import pytest
from face_helpers import face_frame, fer, needs_fer, no_face_frame

from edge.vision.faces import (
    DetectorParams,
    FaceDetector,
    FaceParams,
    crop_face,
    expand_box,
    expand_views,
    face_probs,
    largest,
    normalise,
    preprocess_crops,
    to_gray_u8,
    transform,
)


def test_params_round_trip_and_reject_unknown_or_missing_keys():
    p = FaceParams()
    assert FaceParams.from_dict(p.to_dict()) == p
    assert p.to_dict()["crop_size"] == 48 and p.to_dict()["grayscale"] is True
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['mystery'\]"):
        FaceParams.from_dict({**p.to_dict(), "mystery": 1})
    d = p.to_dict()
    del d["margin"]
    with pytest.raises(ValueError, match=r"missing key\(s\) \['margin'\]"):
        FaceParams.from_dict(d)
    with pytest.raises(ValueError, match="normalisation"):
        FaceParams(normalisation="zscore")
    with pytest.raises(ValueError, match="grayscale"):
        FaceParams(grayscale=False)


@needs_fer
def test_preprocessing_is_one_function_for_batches_crops_and_modes():
    import cv2

    d = fer()
    crops = d.pixels[:16]
    p = FaceParams()
    x = preprocess_crops(crops, p)
    assert x.shape == (16, 48, 48, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(x, normalise(crops, p))
    assert np.abs(x).max() <= 1.0
    # per-crop standardisation: mean ~0, insensitive to a global brightness change
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), 0, atol=0.05)
    brighter = np.clip(crops.astype(int) + 20, 0, 255).astype(np.uint8)
    assert np.abs(preprocess_crops(brighter, p) - x).mean() < 0.02
    one = crops[3]
    bgr = cv2.cvtColor(one, cv2.COLOR_GRAY2BGR)
    bgra = cv2.cvtColor(one, cv2.COLOR_GRAY2BGRA)
    sixteen = one.astype(np.uint16) * 257
    for variant in (one, bgr, bgra, sixteen, one.astype(np.float32) / 255, one[:, :, None]):
        np.testing.assert_allclose(preprocess_crops(variant, p), x[3:4], atol=1e-5)
    # a bigger crop of the same face is resized to 48×48
    big = cv2.resize(one, (144, 144), interpolation=cv2.INTER_CUBIC)
    assert np.abs(preprocess_crops(big, p) - x[3:4]).mean() < 0.05
    scaled = FaceParams(normalisation="scale")
    np.testing.assert_allclose(preprocess_crops(one, scaled)[0, :, :, 0], one / 127.5 - 1, atol=1e-6)


def test_flip_average_is_symmetric():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 48, 48, 1)).astype(np.float32)
    w = rng.standard_normal(48 * 48 * 7).reshape(48 * 48, 7).astype(np.float32)

    def predict(b):
        z = b.reshape(len(b), -1) @ w
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p = FaceParams()
    a = face_probs(predict, x, p)
    b = face_probs(predict, x[:, :, ::-1], p)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(face_probs(predict, x, FaceParams(flip_average=False)), predict(x))


def test_zoom_views_average_and_validation():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 48, 48, 1)).astype(np.float32)
    np.testing.assert_array_equal(transform(x, 1.0, 0.0), x)
    z = transform(x, 1.25)
    # magnified about the centre: the centre pixel stays, the corners come from inside
    np.testing.assert_allclose(z[:, 24, 24, 0], x[:, 24, 24, 0], atol=0.6)
    assert not np.allclose(z, x)
    p = FaceParams(zooms=[1.0, 1.1])
    assert p.zooms == (1.0, 1.1) and p.views == 4
    assert FaceParams.from_dict(p.to_dict()) == p
    v = expand_views(x, p)
    assert v.shape == (16, 48, 48, 1)
    np.testing.assert_array_equal(v[4:8], x[:, :, ::-1])  # zoom 1.0 mirrored
    seen = []

    def predict(b):
        seen.append(len(b))
        return np.tile(np.arange(1, 8, dtype=np.float32) / 28, (len(b), 1))

    probs = face_probs(predict, x, p)
    assert seen == [16] and probs.shape == (4, 7)  # one model call for all views
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-6)
    for bad in ([], [3.0], "x", [1.0] * 9):
        with pytest.raises(ValueError, match="zooms"):
            FaceParams(zooms=bad)


def test_rotation_views():
    # a horizontal bar turned by 90 degrees becomes a vertical one (counter-clockwise)
    x = np.zeros((1, 48, 48, 1), np.float32)
    x[0, 23:25, 8:40, 0] = 1.0
    r = transform(x, 1.0, 90.0)[0, :, :, 0]
    assert r[8:40, 23:25].mean() > 0.9 and r[23:25, :8].max() < 0.1
    p = FaceParams(zooms=[1.05, 1.1], rotations=[-6, 6])
    assert p.rotations == (-6.0, 6.0) and p.views == 8
    assert FaceParams.from_dict(p.to_dict()) == p
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 48, 48, 1)).astype(np.float32)
    v = expand_views(x, p)
    assert v.shape == (24, 48, 48, 1)
    # view order: zoom by zoom, angle by angle, each followed by its mirror image
    np.testing.assert_allclose(v[9:12], transform(x, 1.05, 6.0)[:, :, ::-1])
    np.testing.assert_allclose(v[12:15], transform(x, 1.1, -6.0))
    # manifests written before rotations existed read as upright only
    old = {k: val for k, val in FaceParams(zooms=[1.1]).to_dict().items() if k != "rotations"}
    assert FaceParams.from_dict(old).rotations == (0.0,)
    for bad in ([], [45.0], "x", [0.0] * 9):
        with pytest.raises(ValueError, match="rotations"):
            FaceParams(rotations=bad)
    with pytest.raises(ValueError, match="at most 32"):
        FaceParams(zooms=[1.0] * 5, rotations=[0.0] * 4)


def test_boxes_margin_and_edges():
    assert expand_box((10, 20, 100, 80), 0.1) == (0, 0, 120, 120)  # square, same centre
    assert largest([(0, 0, 10, 10), (5, 5, 30, 30), (50, 50, 20, 20)]) == (5, 5, 30, 30)
    assert largest([]) is None
    gray = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    c = crop_face(gray, (-10, -10, 40, 40), FaceParams(margin=0.25))
    assert c.shape == (60, 60)  # replicated border where the box leaves the frame
    with pytest.raises(ValueError, match="expected"):
        to_gray_u8(np.zeros((4, 4, 2), np.uint8))


@needs_fer
def test_detector_finds_the_real_face_and_no_face_where_there_is_none():
    d = fer()
    det = FaceDetector()
    test_ids = np.flatnonzero(d.split == 2)[:20]
    hits = 0
    for i in test_ids:
        boxes = det.detect(to_gray_u8(face_frame(d.pixels[i])))
        if boxes:
            x, y, w, h = largest(boxes)
            # the face was put at (80, 40) with size 160: the box centre must lie on it
            assert 30 <= x + w / 2 - 80 <= 130 and 30 <= y + h / 2 - 40 <= 130
            assert 100 <= w <= 200
            hits += 1
    assert hits >= 12, f"found {hits}/20 real faces"
    for seed in range(3):
        assert det.detect(to_gray_u8(no_face_frame(seed=seed))) == []
    assert det.detect(np.full((240, 320), 128, np.uint8)) == []


@needs_fer
def test_faces_filling_the_image_are_found_on_a_second_look():
    """Tight 48×48 crops (FER-2013) mostly defeat the cascade; the padded, upscaled retry
    finds most of them, at the face, and still nothing in a faceless image."""
    d = fer()
    crops = d.pixels[np.flatnonzero(d.split == 2)[:60]]
    once = FaceDetector(DetectorParams(retry_pad=0))
    twice = FaceDetector()
    first_look = sum(bool(once.detect(c)) for c in crops)
    boxes = [largest(twice.detect(c)) for c in crops]
    found = [b for b in boxes if b is not None]
    assert len(found) >= 40 and len(found) >= first_look + 20, (len(found), first_look)
    off = np.array([max(abs(x + w / 2 - 24), abs(y + h / 2 - 24)) for x, y, w, h in found])
    sides = np.array([w for _, _, w, _ in found])
    # at the face (FER faces are roughly centred), about the crop's size
    assert np.median(off) <= 3 and off.max() <= 14
    assert 40 <= np.median(sides) <= 56 and sides.min() >= 24 and sides.max() <= 72
    for seed in range(20):  # faceless images, small ones too, stay faceless
        assert twice.detect(to_gray_u8(no_face_frame(size=(96, 96), seed=seed))) == []
    assert twice.detect(to_gray_u8(no_face_frame(seed=5))) == []
    assert twice.detect(np.full((48, 48), 128, np.uint8)) == []


@needs_fer
def test_crop_of_detected_face_matches_the_fer_crop():
    """Detect → crop with margin → preprocess gives nearly the training input."""
    d = fer()
    det = FaceDetector()
    p = FaceParams()
    diffs, others = [], []
    ids = np.flatnonzero(d.split == 2)[:20]
    for k, i in enumerate(ids):
        frame = to_gray_u8(face_frame(d.pixels[i], colour=False))
        box = largest(det.detect(frame))
        if box is None:
            continue
        x = preprocess_crops(crop_face(frame, box, p), p)
        diffs.append(np.abs(x - preprocess_crops(d.pixels[i], p)).mean())
        others.append(np.abs(x - preprocess_crops(d.pixels[ids[(k + 1) % 20]], p)).mean())
    # the detected crop is the same face, nearly aligned: much closer than another face
    assert len(diffs) >= 12 and np.median(diffs) < 0.25
    assert np.median(diffs) < 0.7 * np.median(others)


@pytest.mark.parametrize("size", [48, 47])
def test_views_are_opencvs_warp_in_numpy(size):
    # the views were chosen with cv2.warpAffine; the NumPy warp gives its numbers (its
    # 1/32-px coordinate steps included), so no view changes without OpenCV
    import cv2

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, size, size, 1)).astype(np.float32)
    c = (size - 1) / 2.0
    for factor in (1.05, 1.1, 0.9, 1.25, 1.0):
        for angle in (-6.0, 6.0, 0.0, 30.0, -90.0, 137.0):
            if factor == 1.0 and angle == 0.0:
                continue
            m = cv2.getRotationMatrix2D((c, c), angle, factor)
            ref = np.stack([cv2.warpAffine(np.ascontiguousarray(x[i, :, :, 0]), m, (size, size),
                                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                            for i in range(2)])
            got = transform(x, factor, angle)
            assert got.shape == x.shape and got.dtype == np.float32
            np.testing.assert_allclose(got[..., 0], ref, atol=2e-6, err_msg=f"{factor} {angle}")
