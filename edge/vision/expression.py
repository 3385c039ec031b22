"""Face expression: frame → faces → eyes-level crops → shared preprocessing → int8 model.

The detector comes from :mod:`edge.vision.detectors` (BlazeFace by default).  With eye
keypoints the crop is aligned (:mod:`edge.vision.align`); without them (Haar) it is
the box grown by the manifest's margin, as before.  Every face is counted; the at most
``max_faces`` largest are classified and fused by ``fusion``
(:mod:`edge.vision.people`); with the defaults (one face, ``largest``) a frame gives
exactly the one-person answer.

No face, no guess: a frame without a usable face gives ``label=None``, empty
probabilities and a ``reason`` (no face, face too small, head turned or tilted).
:func:`edge.vision.faces.preprocess_crops` and :func:`edge.vision.faces.face_probs` are
the functions the training evaluation uses, so reported accuracy is what the device does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.labels import confidence, expected_va
from edge.manifest import ModelError
from edge.runtime import TFLiteModel
from edge.vision import align
from edge.vision.blazeface import Detection
from edge.vision.faces import (
    Box,
    FaceParams,
    crop_face,
    face_probs,
    normalise,
    preprocess_crops,
    to_gray_u8,
)
from edge.vision.people import POLICIES, choose_faces, fuse_faces

# Calibrated on FER-2013 Training crops seen by BlazeFace (python -m training.face_align
# --calibrate; docs/models/face/detection.md): the model's crop relative to the box.
ALIGN = align.AlignParams(side=1.188, dx=0.0, dy=-0.093)
CROP_PAD = 0.25  # a given crop is looked at inside a border of this fraction of its side
CROP_MIN_SCORE = 0.5  # a given crop is a face: MediaPipe's default threshold will do


@dataclass(frozen=True)
class FaceObservation:
    """One face of a frame: where, what the model made of it, or why it got no guess."""

    box: Box
    probabilities: np.ndarray | None  # None: no guess
    reason: str | None = None  # why not, when no guess
    roll: float | None = None
    yaw: float | None = None


@dataclass(frozen=True)
class FaceOptions:
    """What the camera path does with the faces it finds (validated)."""

    detector: str = "blazeface"  # a name in edge.vision.detectors.REGISTRY
    max_faces: int = 1  # classify at most this many of the largest faces
    fusion: str = "largest"  # "largest", "mean" or "nearest_to_centre"
    # Limits chosen on PublicTest (python -m training.face_align --honesty): crops shrunk
    # to 40 px score 0.669 (48 px: 0.693), to 32 px 0.641, to 24 px 0.562; crops whose
    # nose lies more than 0.35 eye distances off the eyes' midpoint 0.60 (below: 0.70).
    min_face: int = 40  # pixels (box side): smaller faces get no guess
    max_yaw: float = 0.35  # nose offset along the eye line, in eye distances
    max_roll: float = 45.0  # degrees of eye-line tilt (the crop is levelled up to this)
    # A still frame keeps the last frame's detections (edge.vision.stillness): the
    # detector looks again after this many frames, or as soon as anything moves.
    still_frames: int = 4
    still_threshold: float = 6.0  # grey levels an 8×8 block's mean may move in a still frame

    def __post_init__(self) -> None:
        from edge.vision.detectors import REGISTRY

        if self.detector not in REGISTRY:
            raise ValueError(f"detector: expected one of {sorted(REGISTRY)}, got {self.detector!r}")
        if not 1 <= int(self.max_faces) <= 16:
            raise ValueError(f"max_faces: expected 1..16, got {self.max_faces}")
        if self.fusion not in POLICIES:
            raise ValueError(f"fusion: expected one of {POLICIES}, got {self.fusion!r}")
        if not 8 <= int(self.min_face) <= 1024:
            raise ValueError(f"min_face: expected 8..1024 pixels, got {self.min_face}")
        if not 0.0 < self.max_yaw <= 2.0:
            raise ValueError(f"max_yaw: expected (0, 2] eye distances, got {self.max_yaw}")
        if not 0.0 < self.max_roll <= 90.0:
            raise ValueError(f"max_roll: expected (0, 90] degrees, got {self.max_roll}")
        self.stillness  # noqa: B018 - validates still_frames and still_threshold

    @property
    def stillness(self):
        from edge.vision.stillness import StillParams

        return StillParams(self.still_frames, self.still_threshold)


@dataclass(frozen=True)
class FaceResult:
    label: str | None  # None: no face, no guess
    probabilities: dict[str, float]
    valence: float | None
    arousal: float | None
    confidence: float
    faces: int  # faces detected in the frame (1 for a given crop)
    box: Box | None  # (x, y, w, h) of the face classified, in frame pixels
    extra: dict = field(default_factory=dict)
    reason: str | None = None  # why label is None
    per_face: tuple[FaceObservation, ...] = ()  # the faces looked at, largest first

    @property
    def classified(self) -> int:
        """Of the faces looked at, those given a guess (not refused as too small/turned)."""
        return sum(o.probabilities is not None for o in self.per_face)


def check_face_params(model: TFLiteModel) -> FaceParams:
    """The model's preprocessing parameters, refusing any that do not fit the model."""
    where = f"{model.path}: manifest field 'features'"
    try:
        p = FaceParams.from_dict(model.manifest.features, where)
    except ValueError as exc:
        raise ModelError(str(exc)) from exc
    if tuple(model.input_shape[1:]) != p.input_shape:
        raise ModelError(
            f"{where}: crop_size {p.crop_size} gives input {p.input_shape}, "
            f"but the model takes {tuple(model.input_shape[1:])}"
        )
    return p


class FaceRecogniser:
    """Classifies the faces in a frame, or ready face crops, with a verified model."""

    def __init__(self, model: TFLiteModel, detector=None, options: FaceOptions | None = None) -> None:
        if model.manifest.modality != "face":
            raise ModelError(f"{model.path}: not a face model (modality "
                             f"{model.manifest.modality!r})")
        self.model = model
        self.params = check_face_params(model)
        self.labels = model.manifest.labels
        self.options = options or FaceOptions()
        self._detector = detector

    @property
    def detector(self):
        if self._detector is None:
            from edge.vision.detectors import make_detector
            from edge.vision.stillness import ReusingDetector

            det = make_detector(self.options.detector)
            still = self.options.stillness
            self._detector = ReusingDetector(det, still) if still.frames > 1 else det
        return self._detector

    def detections(self) -> dict[str, int] | None:
        """Frames the detector looked at and frames given its last faces (still frames:
        edge.vision.stillness), for ``…/stats``; None before the first frame or when every
        frame is looked at."""
        det = self._detector
        return det.counts() if hasattr(det, "counts") else None

    def result(self, probs: np.ndarray | None, faces: int, box: Box | None, reason: str | None = None,
               per_face: tuple[FaceObservation, ...] = (), extra: dict | None = None) -> FaceResult:
        if probs is None:
            return FaceResult(None, {}, None, None, 0.0, faces, box, dict(extra or {}), reason, per_face)
        pd = {lab: float(p) for lab, p in zip(self.labels, probs)}
        v, a = expected_va(pd)
        label = self.labels[int(np.argmax(probs))]
        return FaceResult(label, pd, v, a, confidence(pd), faces, box, dict(extra or {}), None, per_face)

    def probabilities(self, crops) -> np.ndarray:
        """(n, K) for face crops (one image or a list; any size, colour or grayscale)."""
        x = preprocess_crops(crops, self.params)
        return face_probs(self.model.predict, x, self.params)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, list[Detection]]:
        gray = to_gray_u8(image)
        return gray, self.detector.detect(gray)

    def refusal(self, det: Detection, g: align.Geometry | None) -> str | None:
        """Why this face gets no guess, or None."""
        o = self.options
        side = max(det.box[2], det.box[3])
        if side < o.min_face:
            return f"face too small ({side:.0f} px < {o.min_face} px)"
        if g is not None and abs(g.yaw) > o.max_yaw:
            return f"head turned (yaw {g.yaw:+.2f} eye distances, limit {o.max_yaw})"
        if g is not None and abs(g.roll) > o.max_roll:
            return f"head tilted (roll {g.roll:+.0f} degrees, limit {o.max_roll:.0f})"
        return None

    def crop(self, gray: np.ndarray, det: Detection, g: align.Geometry | None) -> np.ndarray:
        """The model's crop of a face: eyes level when there are keypoints."""
        if g is None:
            return crop_face(gray, det.int_box, self.params)
        return align.crop_geometry(gray, g, self.params.crop_size)

    def observe(self, gray: np.ndarray, dets: list[Detection]) -> list[FaceObservation]:
        """The faces, largest first, each classified or refused (one model call for all)."""
        obs, crops = [], []
        for det in dets:
            g = None if det.keypoints is None else align.geometry(det.box, det.keypoints, ALIGN)
            reason = self.refusal(det, g)
            obs.append((det, g, reason))
            if reason is None:
                crops.append(self.crop(gray, det, g))
        probs = iter(self.probabilities(crops) if crops else [])
        return [FaceObservation(det.int_box, None if reason else next(probs), reason,
                                None if g is None else g.roll, None if g is None else g.yaw)
                for det, g, reason in obs]

    def classify_frame(self, image: np.ndarray) -> FaceResult:
        """The faces in a camera frame or photo (BGR/BGRA/grayscale, uint8/16), fused."""
        gray, dets = self.detect(image)
        if not dets:
            return self.result(None, 0, None, "no face")
        boxes = [d.int_box for d in dets]
        chosen = [dets[i] for i in choose_faces(boxes, self.options.max_faces)]
        obs = tuple(self.observe(gray, chosen))
        probs, i = fuse_faces([o.probabilities for o in obs], [o.box for o in obs],
                              (gray.shape[1], gray.shape[0]), self.options.fusion)
        if probs is None:
            return self.result(None, len(dets), obs[0].box, obs[0].reason, obs)
        return self.result(probs, len(dets), obs[i].box if i is not None else None, per_face=obs)

    def find_in_crop(self, gray: np.ndarray) -> tuple[tuple, np.ndarray] | None:
        """Box (x, y, w, h) and keypoints, in crop pixels, of the face in a tight crop (as
        in FER-2013), looked at inside a border of repeated edge pixels; None when no face
        is found near its centre or the detector has no keypoints."""
        det = self.detector
        if not hasattr(det, "raw"):
            return None
        h, w = gray.shape
        side = max(h, w) * (1 + 2 * CROP_PAD)
        x0, y0 = (w - side) / 2, (h - side) / 2
        scores, rows = det.raw(align.window(gray, x0, y0, side, det.size))
        mx, my = (rows[:, 0] + rows[:, 2]) / 2, (rows[:, 1] + rows[:, 3]) / 2
        ok = (scores > CROP_MIN_SCORE) & (np.abs(mx - 0.5) < 0.2) & (np.abs(my - 0.5) < 0.2)
        if not ok.any():
            return None
        r = rows[int(np.argmax(np.where(ok, scores, -1.0)))] * side
        r[0::2] += x0
        r[1::2] += y0
        return (r[0], r[1], r[2] - r[0], r[3] - r[1]), r[4:].reshape(6, 2)

    def align_crop(self, gray: np.ndarray) -> np.ndarray | None:
        """A tight face crop levelled as camera faces are (turned upright when its eyes
        tilt more than ALIGN.level_above; its framing is its own), or None (no face)."""
        found = self.find_in_crop(gray)
        if found is None:
            return None
        g = align.geometry(*found, ALIGN)
        h, w = gray.shape
        s = self.params.crop_size
        return align.aligned_crop(gray, ((w - 1) / 2, (h - 1) / 2), max(h, w), g.turn, s)

    def classify_crop(self, image: np.ndarray) -> FaceResult:
        """An already cut face crop (as in FER-2013): aligned when the detector finds its
        eyes, else as it is."""
        gray = to_gray_u8(image)
        h, w = gray.shape
        aligned = self.align_crop(gray)
        x = preprocess_crops(gray, self.params) if aligned is None else normalise(aligned, self.params)
        probs = face_probs(self.model.predict, x, self.params)[0]
        box = (0, 0, int(w), int(h))
        return self.result(probs, 1, box, per_face=(FaceObservation(box, probs),),
                           extra={"aligned": aligned is not None})


def face_recogniser(model_path: Path | str | None = None,
                    options: FaceOptions | None = None) -> FaceRecogniser:
    """The shipped face model (or ``model_path``) with the config's ``[face]`` options: the
    factory ``camera.recogniser`` names by default (:mod:`edge.recognisers`)."""
    from edge.runtime import default_models_dir, load_model

    path = Path(model_path) if model_path else default_models_dir() / "face_expression.tflite"
    return FaceRecogniser(load_model(path, "face"), options=options)
