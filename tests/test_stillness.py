"""Detections reused on still frames (edge.vision.stillness), on real FER-2013 faces."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT
from face_helpers import face_frame, fer, needs_fer, no_face_frame

from edge.vision import align
from edge.vision.stillness import ReusingDetector, StillParams, block_means, still


class Counting:
    """A detector that answers from a table and counts its calls."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, gray):
        self.calls += 1
        return [("face", self.calls)]


def noisy(gray: np.ndarray, seed: int, sigma: float = 4.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(gray + rng.normal(0, sigma, gray.shape), 0, 255).astype(np.uint8)


def test_still_frames_reuse_and_any_change_looks_again():
    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, (240, 320)).astype(np.float32)
    inner = Counting()
    det = ReusingDetector(inner, StillParams(frames=4, threshold=6.0))
    assert det.name == "counting"  # the wrapped detector's attributes
    first = det.detect(noisy(base, 1))
    # sensor noise alone: the same detections for three more frames, then a fresh look
    assert [det.detect(noisy(base, s)) for s in (2, 3, 4)] == [first] * 3 and inner.calls == 1
    assert det.detect(noisy(base, 5)) != first and inner.calls == 2
    # a 40-px patch changes: looked at at once
    moved = base.copy()
    moved[100:140, 100:140] += 30
    det.detect(noisy(moved, 6))
    assert inner.calls == 3 and (det.scans, det.reused) == (3, 3)
    # another frame size: looked at
    det.detect(noisy(base[:200], 7))
    assert inner.calls == 4
    # frames = 1: every frame
    every = ReusingDetector(Counting(), StillParams(frames=1))
    for s in range(3):
        every.detect(noisy(base, s))
    assert every.scans == 3 and every.reused == 0


def test_block_means_and_still():
    g = np.arange(64, dtype=np.uint8).reshape(8, 8)
    m = block_means(g, 4)
    assert m.shape == (2, 2) and m[0, 0] == pytest.approx(np.mean(g[:4, :4]))
    assert still(m, m + 6, 6.0) and not still(m, m + 6.5, 6.0) and not still(None, m, 6.0)
    assert not still(m, m[:1], 6.0)
    assert block_means(g[:3, :3], 4).shape == (3, 3)  # smaller than a block: the pixels
    for bad, match in (({"frames": 0}, "still_frames"), ({"threshold": 300}, "still_threshold"),
                       ({"block": 1}, "block")):
        with pytest.raises(ValueError, match=match):
            StillParams(**bad)


@needs_fer
def test_a_still_person_is_classified_every_frame_on_the_reused_face():
    # the expression model reads each frame's own pixels at the reused box: a still face
    # keeps its answer, and a frame whose face changes is looked at again
    from edge.runtime import load_model
    from edge.vision.expression import FaceOptions, FaceRecogniser
    d = fer()
    private = d.pixels[np.flatnonzero(d.split == 2)]
    frame = align.bgr_to_gray(face_frame(private[11], size=(640, 480), face=160))
    model = load_model(ROOT / "models_tflite" / "face_expression.tflite", "face")
    rec = FaceRecogniser(model, options=FaceOptions())
    det = rec.detector
    assert isinstance(det, ReusingDetector) and det.still == StillParams(4, 6.0)
    answers = [rec.classify_frame(noisy(frame, s)) for s in range(4)]
    assert (det.scans, det.reused) == (1, 3)
    assert {a.faces for a in answers} == {1} and len({a.box for a in answers}) == 1
    assert len({a.label for a in answers}) == 1
    other = align.bgr_to_gray(face_frame(private[11], size=(640, 480), face=160, at=(300, 200)))
    # the person moved: looked at again, the same answer as a recogniser that always looks
    off = FaceRecogniser(rec.model, options=FaceOptions(still_frames=1))
    assert not isinstance(off.detector, ReusingDetector)
    a, b = rec.classify_frame(other), off.classify_frame(other)
    assert det.scans == 2 and a.faces == 1 and a.box[0] > 250
    assert (a.label, a.box, a.probabilities) == (b.label, b.box, b.probabilities)
    assert rec.classify_frame(align.bgr_to_gray(no_face_frame(size=(640, 480), seed=3))).faces == 0
    assert det.scans == 3


def test_the_face_bench_times_the_detector_on_every_frame():
    # bench/bench_face.py repeats its frames; with still-frame reuse its "detect" time was
    # the reuse check's (1.1 ms instead of the detector's ~27 ms under load)
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_face", ROOT / "bench" / "bench_face.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from edge.runtime import load_model

    model = load_model(ROOT / "models_tflite" / "face_expression.tflite", "face")
    for name in ("blazeface", "haar"):
        assert not isinstance(bench.timed_recogniser(model, name).detector, ReusingDetector)


def test_block_region_covers_the_window_and_one_block_around():
    from edge.vision.stillness import block_region

    rows, cols = block_region((100.0, 50.0, 160.0), 8, (60, 80))
    assert (rows.start, rows.stop, cols.start, cols.stop) == (5, 28, 11, 34)
    # a letterboxed whole-frame window reaches past the frame: clipped to it
    rows, cols = block_region((0.0, -80.0, 640.0), 8, (60, 80))
    assert (rows.start, rows.stop, cols.start, cols.stop) == (0, 60, 0, 80)


@needs_fer
def test_blazeface_is_reused_window_by_window_with_the_answer_of_a_full_look():
    # a person shifts in a still room: only the windows around them are looked through
    # again, and the faces are those a full look at the frame finds
    from edge.vision.blazeface import BlazeFaceDetector

    d = fer()
    private = d.pixels[np.flatnonzero(d.split == 2)]
    room = align.bgr_to_gray(no_face_frame(size=(640, 480), seed=5))
    first = align.bgr_to_gray(face_frame(private[11], size=(640, 480), face=120, at=(60, 60)))
    first[:, 300:] = room[:, 300:]
    shifted = align.bgr_to_gray(face_frame(private[11], size=(640, 480), face=120, at=(76, 70)))
    shifted[:, 300:] = room[:, 300:]
    full = BlazeFaceDetector()
    det = ReusingDetector(BlazeFaceDetector(), StillParams(frames=4, threshold=6.0))
    n = len(full.frame_windows(first.shape))
    assert n > 20
    assert det.detect(noisy(first, 1)) and det.counts()["windows_looked"] == n
    det.detect(noisy(first, 2))
    assert det.counts() == {"scans": 1, "reused": 1, "windows_looked": n, "windows_reused": n}
    frame = noisy(shifted, 3)
    got = det.detect(frame)
    looked = det.counts()["windows_looked"] - n
    assert 0 < looked < n / 2 and det.scans == 2
    want = full.detect(frame)
    assert len(got) == len(want) == 1
    assert np.allclose(got[0].box, want[0].box, atol=0.5) and got[0].score == pytest.approx(want[0].score)
    # a frame size change looks through every window of the new size
    small = noisy(shifted[:240, :320], 4)
    det.detect(small)
    assert det.counts()["windows_looked"] - n - looked == len(full.frame_windows(small.shape))


def test_a_frame_detector_is_reused_by_frame():
    det = ReusingDetector(Counting(), StillParams(frames=4))
    det.detect(np.zeros((48, 64), np.uint8))
    assert det.counts() == {"scans": 1, "reused": 0}
