"""Several faces through the daemon: the ``[face]`` options reach the recogniser, ``…/mood``
says how many faces the latest frame showed, how many got a guess and why not, and the
fusion policy decides the face observation; one person is the one-person answer.

The frames are real FER-2013 PrivateTest faces (``face_helpers.face_frame``) written as
PNG files and decoded by the daemon's file-backed camera; the model is the shipped one;
the broker a real Mosquitto.  What the daemon publishes is compared with the payload
built in-process from the same decoded image by the same recogniser and fuser.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from conftest import ROOT
from face_helpers import face_frame, fer, needs_fer
from test_daemon_support import (  # noqa: F401 - broker_fixture provides "broker"
    ListSink,
    broker_fixture,
    daemon_config,
    daemon_log,
    run_to_end,
    start_daemon,
    stop,
    subscriber,
    wait_for,
)

from edge.config import load_config
from edge.daemon import Daemon, RunOptions
from edge.mood.fusion import FACE, MoodFuser, Observation
from edge.publish.payloads import FrameFaces, mood_payload
from edge.vision.expression import FaceOptions, FaceRecogniser
from edge.vision.sources import load_image

SHIPPED_FACE = ROOT / "models_tflite" / "face_expression.tflite"
QUIET = {"mood": {"interval_s": 60.0}, "stats": {"interval_s": 3600.0}}  # one mood, at the end


def _crops() -> tuple[np.ndarray, np.ndarray]:
    """Two PrivateTest faces the shipped model reads differently (angry, then happy)."""
    d = fer()
    idx = np.flatnonzero(d.split == 2)
    return d.pixels[idx[3]], d.pixels[idx[6]]


def _two_faces() -> np.ndarray:
    """A large face on the left, a smaller one nearer the centre (480×240)."""
    big, small = _crops()
    frame = face_frame(big, size=(480, 240), face=140, at=(10, 50))
    right = face_frame(small, size=(480, 240), face=100, at=(250, 70))
    frame[:, 200:] = right[:, 200:]
    return frame


def _write(folder, *frames) -> list:
    import cv2

    folder.mkdir()
    paths = []
    for i, f in enumerate(frames):
        paths.append(folder / f"{i:02d}.png")
        assert cv2.imwrite(str(paths[-1]), f)
    return paths


@pytest.fixture(scope="module")
def rec() -> FaceRecogniser:
    from edge.runtime import load_model

    return FaceRecogniser(load_model(SHIPPED_FACE, "face"))


def _expected(results, last) -> dict:
    """The mood the daemon should publish for these recogniser results, fused in order
    (fast replay: fusion's present is the last observation's time), ``ts`` zeroed."""
    f = MoodFuser(load_config(None, env={}).fusion)
    labels, ts = {}, 0.0
    for i, r in enumerate(results):
        if r.label is not None:
            ts = float(i)
            f.observe(Observation.from_probabilities(FACE, ts, r.probabilities))
            labels[FACE] = r.label
    faces = FrameFaces(last.faces, last.classified, last.reason)
    return json.loads(json.dumps(dict(mood_payload(f.estimate(ts), labels, 0.0, faces), ts=0)))


def _run(broker, tmp_path, device_id, images, face=None) -> dict:
    """The one ``…/mood`` a ``--fast --exit-when-done`` run over ``images`` publishes."""
    conf = daemon_config(tmp_path, broker.port, device_id, **QUIET, **({"face": face} if face else {}))
    sub = subscriber(broker.port, device_id, discovery=False)
    proc = start_daemon(tmp_path, "--config", str(conf), "--image-dir", str(images), "--fast",
                        "--exit-when-done")
    seen = []
    try:
        wait_for(sub, lambda m: m.topic.endswith("/availability") and m.payload == b"offline",
                 90, seen)
        assert proc.wait(10) == 0, daemon_log(tmp_path)
    finally:
        stop(proc)
        sub.stop()
    moods = [m.json() for m in seen if m.topic == f"moodedge/{device_id}/mood"]
    assert len(moods) == 1, (moods, daemon_log(tmp_path))
    return dict(moods[0], ts=0)


@needs_fer
@pytest.mark.parametrize(("policy", "which"), [
    ("largest", "the large face on the left"),
    ("mean", "both faces"),
    ("nearest_to_centre", "the small face nearer the centre"),
])
def test_two_faces_are_counted_and_fused_by_the_configured_policy(broker, tmp_path, rec, policy, which):
    (path,) = _write(tmp_path / "img", _two_faces())
    image = load_image(path)  # what the daemon's camera source decodes
    options = FaceOptions(max_faces=2, fusion=policy)
    want = FaceRecogniser(rec.model, rec.detector, options).classify_frame(image)
    assert (want.faces, want.classified) == (2, 2)
    mood = _run(broker, tmp_path, f"two{policy[:4]}", tmp_path / "img",
                {"max_faces": 2, "fusion": policy})
    assert mood == _expected([want], want), which
    assert (mood["faces"], mood["faces_classified"], mood["face_reason"]) == (2, 2, None)
    # the policies give different answers on this frame, so the one applied is visible
    others = {p: FaceRecogniser(rec.model, rec.detector, FaceOptions(max_faces=2, fusion=p))
              .classify_frame(image).valence for p in ("largest", "mean", "nearest_to_centre")}
    assert min(abs(others[policy] - v) for p, v in others.items() if p != policy) > 0.1, others
    assert mood["sources"]["face"]["label"] == want.label


@needs_fer
def test_by_default_two_faces_are_counted_and_the_largest_is_the_answer(broker, tmp_path, rec):
    (path,) = _write(tmp_path / "img", _two_faces())
    want = rec.classify_frame(load_image(path))
    assert (want.faces, want.classified) == (2, 1) and want.box[0] < 100  # the large face
    mood = _run(broker, tmp_path, "twodefault", tmp_path / "img")
    assert mood == _expected([want], want)
    assert (mood["faces"], mood["faces_classified"]) == (2, 1)


@needs_fer
def test_one_face_is_the_one_person_answer_whatever_the_policy(broker, tmp_path, rec):
    big, _ = _crops()
    (path,) = _write(tmp_path / "img", face_frame(big))
    image = load_image(path)
    want = rec.classify_frame(image)  # the defaults: one face, largest
    assert (want.faces, want.classified, want.label) == (1, 1, "angry")
    for policy in ("mean", "nearest_to_centre"):
        other = FaceRecogniser(rec.model, rec.detector, FaceOptions(max_faces=4, fusion=policy))
        assert other.classify_frame(image).probabilities == want.probabilities, policy
    mood = _run(broker, tmp_path, "oneface", tmp_path / "img", {"max_faces": 4, "fusion": "mean"})
    assert mood == _expected([want], want)
    assert (mood["faces"], mood["faces_classified"], mood["face_reason"]) == (1, 1, None)


@needs_fer
def test_a_face_too_small_gets_no_guess_and_the_mood_says_why(broker, tmp_path, rec):
    big, small = _crops()
    paths = _write(tmp_path / "img", face_frame(big), face_frame(small, face=80, at=(120, 80)))
    strict = FaceRecogniser(rec.model, rec.detector, FaceOptions(min_face=100))
    results = [strict.classify_frame(load_image(p)) for p in paths]
    assert results[0].label is not None and results[1].label is None
    assert results[1].reason.startswith("face too small (") and results[1].reason.endswith(" px < 100 px)")
    mood = _run(broker, tmp_path, "toosmall", tmp_path / "img", {"min_face": 100})
    assert mood == _expected(results, results[1])
    assert (mood["faces"], mood["faces_classified"]) == (1, 0)
    assert mood["face_reason"] == results[1].reason
    assert mood["sources"]["face"]["label"] == results[0].label  # the face still fused


class _OldStyle:
    """A third-party recogniser written before ``faces``: its results lack the new fields."""

    class Result:
        def __init__(self, label, probs):
            self.label, self.probabilities = label, probs
            self.valence = self.arousal = None
            self.confidence = 0.0

    def __init__(self, faces=None):
        self.faces = faces

    def classify_frame(self, image):
        r = self.Result("happy", {"happy": 0.9, "sad": 0.1})
        if self.faces is not None:
            r.faces = self.faces
        return r


def _in_process(tmp_path, face) -> ListSink:
    img = tmp_path / "img"
    img.mkdir()
    for i in range(3):
        np.save(img / f"{i:02d}.npy", np.full((48, 64, 3), 100 + i, np.uint8))
    cfg = load_config(None, {"daemon.state_dir": str(tmp_path / "state"), "mood.interval_s": 60.0,
                             "stats.interval_s": 3600.0, "camera.fps": 4.0}, env={})
    sink = ListSink()
    d = Daemon(cfg, RunOptions(image_dir=img, fast=True, exit_when_done=True), sink=sink,
               speech=None, face=face)
    run_to_end(d, 60)
    return sink


def test_a_recogniser_without_face_counts_gives_null_counts_not_a_crash(tmp_path):
    sink = _in_process(tmp_path, _OldStyle())
    mood = sink.moods[-1]
    assert mood["sources"]["face"]["label"] == "happy"
    assert (mood["faces"], mood["faces_classified"], mood["face_reason"]) == (None, None, None)


def test_a_recogniser_with_a_nonsense_face_count_is_an_error_counted_not_a_crash(tmp_path):
    sink = _in_process(tmp_path, _OldStyle(faces="several"))
    assert sink.moods == []  # no frame was usable
    face = sink.stats[-1]["stages"]["face"]
    assert face["errors"] == 3 and face["processed"] == 0, face


def test_a_change_in_the_number_of_faces_republishes_the_mood():
    from edge.daemon.base import DropQueue, StageStats
    from edge.daemon.clock import Replay
    from edge.daemon.stages import MoodWorker

    cfg = load_config(None, env={})
    w = MoodWorker(threading.Event(), cfg.fusion, cfg.mood, DropQueue(4, StageStats("fusion")),
                   ListSink(), StageStats("fusion"), lambda est: None, Replay(fast=True))
    f = MoodFuser(cfg.fusion)
    f.observe(Observation.from_probabilities(FACE, 0.0, {"happy": 0.9, "sad": 0.1}))
    est = f.estimate(0.0)
    one = mood_payload(est, {FACE: "happy"}, 0.0, FrameFaces(1, 1))
    w.last, w.last_time = one, time.monotonic()
    assert not w._changed(mood_payload(est, {FACE: "happy"}, 0.0, FrameFaces(1, 1)))
    assert not w._changed(mood_payload(est, {FACE: "happy"}, 0.0, FrameFaces(1, 0, "head turned")))
    assert w._changed(mood_payload(est, {FACE: "happy"}, 0.0, FrameFaces(2, 1)))
    assert w._changed(mood_payload(est, {FACE: "happy"}, 0.0, FrameFaces(0, 0, "no face")))


def _mood_worker():
    from edge.daemon.base import DropQueue, StageStats
    from edge.daemon.clock import Replay
    from edge.daemon.stages import MoodWorker

    cfg = load_config(None, env={})
    inq = DropQueue(8, StageStats("fusion"))
    sink = ListSink()
    w = MoodWorker(threading.Event(), cfg.fusion, cfg.mood, inq, sink, StageStats("fusion"),
                   lambda est: None, Replay(fast=True))
    return w, inq, sink, cfg


def _feed(w, inq, item) -> None:
    inq.push(item, True, threading.Event())
    w.next_tick = 0.0  # tick now: the test decides when, not the wall clock
    w.step()


def test_pausing_the_camera_forgets_the_faces_of_its_last_frame(tmp_path):
    """Regression: ``…/mood`` kept saying ``faces: 2`` after the camera was paused (privacy)."""
    from edge.daemon.base import SourceStatus
    from edge.daemon.control import DaemonControl
    from edge.daemon.stages import Labelled
    from edge.daemon.state import State

    w, inq, sink, cfg = _mood_worker()
    state = State(tmp_path / "state.json", cfg.tracks.policy, cfg.tracks.target)
    control = DaemonControl(state, SourceStatus(), None, lambda: True)
    control.mood = w
    obs = Observation.from_probabilities(FACE, 1.0, {"happy": 0.9, "sad": 0.1})
    _feed(w, inq, Labelled(obs, "happy", FrameFaces(2, 1), ts=1.0))
    assert sink.moods[-1]["faces"] == 2
    control.pause(["camera"], True)
    _feed(w, inq, None)
    assert sink.moods[-1]["faces"] is None, sink.moods[-1]
    assert sink.moods[-1]["faces_classified"] is None


def test_the_faces_of_a_frame_older_than_max_age_are_not_reported():
    """Regression: a camera that stopped delivering (failed, retrying) left its last
    frame's face count in every later ``…/mood``."""
    from edge.daemon.stages import Labelled
    from edge.mood.fusion import VOICE

    w, inq, sink, cfg = _mood_worker()
    face = Observation.from_probabilities(FACE, 1.0, {"happy": 0.9, "sad": 0.1})
    _feed(w, inq, Labelled(face, "happy", FrameFaces(1, 1), ts=1.0))
    assert sink.moods[-1]["faces"] == 1
    later = 1.0 + cfg.fusion.max_age_s + 1.0
    voice = Observation.from_probabilities(VOICE, later, {"sad": 0.8, "neutral": 0.2})
    _feed(w, inq, Labelled(voice, "sad"))
    assert sink.moods[-1]["faces"] is None, sink.moods[-1]


@needs_fer
def test_stats_count_the_frames_the_detector_looked_at_and_those_that_kept_their_faces(tmp_path):
    # a person sitting still (the same face, fresh sensor noise) for five frames, then
    # another frame: the detector looks at the first, the fifth (still_frames = 4) and
    # the last; the others keep the first frame's faces
    big, other = _crops()
    still = face_frame(big, size=(320, 240), face=140, at=(60, 40), colour=False).astype(np.float32)
    rng = np.random.default_rng(0)
    frames = [np.clip(still + rng.normal(0, 3, still.shape), 0, 255).astype(np.uint8) for _ in range(5)]
    frames.append(face_frame(other, size=(320, 240), face=140, at=(120, 60), colour=False))
    folder = tmp_path / "img"
    folder.mkdir()
    for i, f in enumerate(frames):
        np.save(folder / f"{i:02d}.npy", f)
    cfg = load_config(None, {"daemon.state_dir": str(tmp_path / "state"), "stats.interval_s": 3600.0},
                      env={})
    sink = ListSink()
    d = Daemon(cfg, RunOptions(image_dir=folder, fast=True, exit_when_done=True), sink=sink, speech=None)
    run_to_end(d)
    got = sink.stats[-1]["face_detector"]
    assert (got["scans"], got["reused"]) == (3, 3)
    # by window: every window at the first and fifth frames, the rest kept on the still
    # ones, and on the last only those its new face moved
    from edge.vision.blazeface import BlazeFaceDetector

    n = len(BlazeFaceDetector().frame_windows((240, 320)))
    assert got["windows_looked"] + got["windows_reused"] == 6 * n
    assert 2 * n < got["windows_looked"] <= 3 * n and got["windows_reused"] >= 3 * n
