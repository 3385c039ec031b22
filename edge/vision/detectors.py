"""The face detector registry: a name → a detector whose ``detect(gray)`` gives
:class:`~edge.vision.blazeface.Detection` s in frame pixels.

* ``blazeface`` (default): MediaPipe BlazeFace short range on the TFLite interpreter,
  with eye keypoints for alignment; no OpenCV.
* ``haar``: OpenCV's 2001 frontal-face cascade (boxes only, no keypoints): kept for
  comparison (``bench/bench_face.py``) and for an install that wants it; it needs OpenCV.

Chosen by measurement on the composed scenes of :mod:`training.face_scenes`
(docs/models/face/detection.md).
"""

from __future__ import annotations

from dataclasses import fields

from edge.vision.blazeface import BlazeFaceDetector, BlazeFaceParams, Detection

DEFAULT = "blazeface"


class HaarDetector:
    """The Haar cascade of :mod:`edge.vision.faces` behind the registry's interface."""

    name = "haar"

    def __init__(self, params=None) -> None:
        from edge.vision.faces import FaceDetector

        self._det = FaceDetector(params)
        self.params = self._det.params

    def detect(self, gray) -> list[Detection]:
        return [Detection(tuple(float(v) for v in b), 1.0) for b in self._det.detect(gray)]


def _haar(**params) -> HaarDetector:
    from edge.vision.faces import DetectorParams

    return HaarDetector(DetectorParams(**params) if params else None)


def _blazeface(**params) -> BlazeFaceDetector:
    return BlazeFaceDetector(BlazeFaceParams(**params) if params else None)


REGISTRY = {"blazeface": _blazeface, "haar": _haar}


def make_detector(name: str = DEFAULT, **params):
    """The detector called ``name`` with its parameters (unknown names/keys refused)."""
    if name not in REGISTRY:
        raise ValueError(f"face detector {name!r}: expected one of {sorted(REGISTRY)}")
    if name == "blazeface":
        known = {f.name for f in fields(BlazeFaceParams)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"face detector 'blazeface': unknown parameter(s) {unknown}; "
                             f"expected some of {sorted(known)}")
    try:
        return REGISTRY[name](**params)
    except TypeError as exc:
        raise ValueError(f"face detector {name!r}: {exc}") from None
