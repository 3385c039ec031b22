"""Face expression: frame → largest face → shared crop preprocessing → int8 model → result.

No face, no guess: a frame without a detected face gives ``label=None`` and empty
probabilities.  :func:`edge.vision.faces.preprocess_crops` and
:func:`edge.vision.faces.face_probs` are the functions the training evaluation uses,
so reported accuracy is what the device does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.labels import confidence, expected_va
from edge.manifest import ModelError
from edge.runtime import TFLiteModel
from edge.vision.faces import (
    Box,
    DetectorParams,
    FaceDetector,
    FaceParams,
    crop_face,
    face_probs,
    largest,
    preprocess_crops,
    to_gray_u8,
)


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
    """Classifies the largest face in a frame, or ready face crops, with a verified model."""

    def __init__(self, model: TFLiteModel, detector: FaceDetector | None = None,
                 detector_params: DetectorParams | None = None) -> None:
        if model.manifest.modality != "face":
            raise ModelError(f"{model.path}: not a face model (modality "
                             f"{model.manifest.modality!r})")
        self.model = model
        self.params = check_face_params(model)
        self.labels = model.manifest.labels
        self._detector = detector
        self._detector_params = detector_params

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = FaceDetector(self._detector_params)
        return self._detector

    def result(self, probs: np.ndarray | None, faces: int, box: Box | None) -> FaceResult:
        if probs is None:
            return FaceResult(None, {}, None, None, 0.0, faces, box)
        pd = {lab: float(p) for lab, p in zip(self.labels, probs)}
        v, a = expected_va(pd)
        label = self.labels[int(np.argmax(probs))]
        return FaceResult(label, pd, v, a, confidence(pd), faces, box)

    def probabilities(self, crops) -> np.ndarray:
        """(n, K) for face crops (one image or a list; any size, colour or grayscale)."""
        x = preprocess_crops(crops, self.params)
        return face_probs(self.model.predict, x, self.params)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, list[Box]]:
        gray = to_gray_u8(image)
        return gray, self.detector.detect(gray)

    def classify_frame(self, image: np.ndarray) -> FaceResult:
        """The largest face in a camera frame or photo (BGR/BGRA/grayscale, uint8/16)."""
        gray, boxes = self.detect(image)
        box = largest(boxes)
        if box is None:
            return self.result(None, 0, None)
        crop = crop_face(gray, box, self.params)
        return self.result(self.probabilities(crop)[0], len(boxes), box)

    def classify_crop(self, image: np.ndarray) -> FaceResult:
        """An already aligned face crop (as in FER-2013): no detection."""
        gray = to_gray_u8(image)
        h, w = gray.shape
        return self.result(self.probabilities(gray)[0], 1, (0, 0, int(w), int(h)))


def face_recogniser(model_path: Path | str | None = None) -> FaceRecogniser:
    """The shipped face model (or ``model_path``): the factory ``camera.recogniser``
    names by default (:mod:`edge.recognisers`)."""
    from edge.runtime import default_models_dir, load_model

    path = Path(model_path) if model_path else default_models_dir() / "face_expression.tflite"
    return FaceRecogniser(load_model(path, "face"))
