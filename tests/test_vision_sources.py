"""Images, videos and cameras as frame sources; bad files; dropping frames when busy."""

from __future__ import annotations

import re
import sys
import types
import zlib

import numpy as np
import pytest
from face_helpers import face_frame, fer, needs_fer

from edge.vision.sources import (
    PICAMERA2_MISSING,
    CameraError,
    ImageError,
    ImageFiles,
    OpenCVCamera,
    PiCamera,
    VideoFile,
    image_size,
    load_image,
    picamera2_error,
)


@pytest.fixture
def crop():
    """A real PrivateTest face crop (48×48 grayscale)."""
    return fer().pixels[np.flatnonzero(fer().split == 2)[0]]


def write(path, img, *params):
    import cv2

    assert cv2.imwrite(str(path), img, list(params))
    return path


@needs_fer
def test_modes_are_converted_the_same(tmp_path, crop):
    import cv2

    gray = write(tmp_path / "g.png", crop)
    bgr = write(tmp_path / "c.jpg", cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR), cv2.IMWRITE_JPEG_QUALITY, 100)
    rgba = write(tmp_path / "a.png", cv2.cvtColor(crop, cv2.COLOR_GRAY2BGRA))
    deep = write(tmp_path / "d16.png", crop.astype(np.uint16) * 257)
    assert cv2.imread(str(deep), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    ref = load_image(gray)
    np.testing.assert_array_equal(ref, crop)
    for path in (rgba, deep):
        np.testing.assert_array_equal(load_image(path), crop)
    assert np.abs(load_image(bgr).astype(int) - crop).max() <= 3
    assert load_image(rgba, gray=False).shape == (48, 48, 3)
    assert load_image(deep, gray=False).dtype == np.uint8


@needs_fer
def test_bad_files_get_clear_errors(tmp_path, crop):
    import cv2

    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("not an image\n" * 10)
    good = write(tmp_path / "face.jpg", cv2.resize(crop, (480, 480)))
    trunc_jpg = tmp_path / "cut.jpg"
    trunc_jpg.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    png = write(tmp_path / "face.png", cv2.resize(crop, (480, 480)))
    trunc_png = tmp_path / "cut.png"
    trunc_png.write_bytes(png.read_bytes()[: png.stat().st_size // 2])
    cases = {
        empty: "empty file (0 bytes)",
        text: "not a readable image",
        trunc_jpg: "truncated JPEG",
        trunc_png: "truncated or corrupt image",
        tmp_path / "missing.png": "file not found",
        tmp_path: "is a directory",
    }
    for path, message in cases.items():
        with pytest.raises(ImageError, match=re.escape(message)) as info:
            load_image(path)
        assert str(path) in str(info.value)


@needs_fer
def test_huge_images_are_refused_or_shrunk(tmp_path, crop):
    import cv2

    png = write(tmp_path / "face.png", crop).read_bytes()
    # the same PNG with a header that claims 100000 × 100000 pixels (a decompression bomb)
    ihdr = b"IHDR" + (100000).to_bytes(4, "big") * 2 + png[24:29]
    bomb = png[:12] + ihdr + zlib.crc32(ihdr).to_bytes(4, "big") + png[33:]
    assert image_size(bomb) == (100000, 100000)
    (tmp_path / "bomb.png").write_bytes(bomb)
    with pytest.raises(ImageError, match="too large to decode: 100000×100000"):
        load_image(tmp_path / "bomb.png")
    big = write(tmp_path / "big.jpg", cv2.resize(crop, (4000, 3000)))
    assert image_size(big.read_bytes()) == (4000, 3000)
    img = load_image(big)
    assert img.shape == (1440, 1920)


@needs_fer
def test_image_folder_and_video_file_sources(tmp_path, crop):
    import cv2

    d = tmp_path / "imgs" / "nested"
    d.mkdir(parents=True)
    write(d / "a.png", crop)
    (d / "b.jpg").write_bytes(b"")
    (d / "notes.txt").write_text("skip me")
    src = ImageFiles([tmp_path / "imgs"])
    frames = list(src.frames())
    assert len(frames) == 1 and frames[0].shape == (48, 48, 3)
    assert len(src.errors) == 1 and "empty file" in src.errors[0]

    video = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for _ in range(6):
        w.write(face_frame(crop))
    w.release()
    with VideoFile(video) as v:
        got = list(v.frames())
    assert len(got) == 6 and got[0].shape == (240, 320, 3)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 1000)
    with pytest.raises(ImageError, match="not a readable video file"):
        VideoFile(bad)


def test_missing_webcam_says_what_to_do():
    with pytest.raises(CameraError, match=r"cannot open it.*v4l2-ctl --list-devices.*no other program"):
        OpenCVCamera(57)


def test_picamera2_missing_busy_and_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # as on a machine without it
    with pytest.raises(CameraError, match="picamera2 is not installed.*apt install python3-picamera2"):
        PiCamera()
    busy = RuntimeError("Failed to acquire camera: Device or resource busy\n"
                        "ERROR RPI pipeline_base.cpp: Pipeline handler in use by another process")
    err = picamera2_error(busy)
    assert "busy" in str(err) and "another process" in str(err) and "systemctl stop" in str(err)
    assert "rpicam-hello --list-cameras" in str(picamera2_error(IndexError("list index out of range")))
    # regression: the advice named only calibrate's --camera N, which the daemon and the
    # doctor (whose messages these are too) do not have: it names the config key as well
    for said in (str(picamera2_error(IndexError("list index out of range"))), PICAMERA2_MISSING):
        assert 'camera.backend = "opencv"' in said and "--camera N for edge-cli calibrate" in said

    class Picamera2:  # what picamera2 does when libcamera refuses the camera
        def __init__(self, num=0):
            raise busy

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=Picamera2))
    with pytest.raises(CameraError, match="Pi camera is busy.*Pipeline handler in use"):
        PiCamera()
