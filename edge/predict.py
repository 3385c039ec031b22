"""Batch prediction over files: load the model once, go on past bad files."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.audio.sources import AUDIO_SUFFIXES, AudioFileError, SampleRateError, load_audio
from edge.audio.speech import SpeechResult, speech_recogniser
from edge.vision.sources import IMAGE_SUFFIXES


@dataclass(frozen=True)
class FilePrediction:
    path: str
    result: SpeechResult | None = None
    error: str | None = None

    def as_json(self) -> dict:
        r = self.result
        assert r is not None
        return {**result_json(self.path, "speech", r), "windows": r.windows,
                "voiced_windows": r.voiced_windows}


def result_json(path: str, modality: str, r) -> dict:
    """The fields every modality's prediction shares, rounded for printing."""
    return {
        "path": path,
        "modality": modality,
        "label": r.label,
        "probabilities": {k: round(v, 6) for k, v in r.probabilities.items()},
        "valence": None if r.valence is None else round(r.valence, 4),
        "arousal": None if r.arousal is None else round(r.arousal, 4),
        "confidence": round(r.confidence, 4),
    }


@dataclass(frozen=True)
class ImagePrediction:
    path: str
    result: object | None = None  # edge.vision.expression.FaceResult
    error: str | None = None

    def as_json(self) -> dict:
        r = self.result
        assert r is not None
        return {**result_json(self.path, "face", r), "faces": r.faces,
                "box": None if r.box is None else list(r.box)}


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def iter_inputs(paths: list[Path]) -> Iterator[tuple[str, Path]]:
    """("speech" | "face", path) for files given and those found in folders, in order.

    Image suffixes go to the face model; everything else named explicitly goes to the
    speech model (which names what is wrong with a non-audio file). A folder with neither
    comes as ("empty", folder): a typo'd or wrong folder is not a run with nothing to say."""
    for p in map(Path, paths):
        if p.is_dir():
            found = [("speech" if q.suffix.lower() in AUDIO_SUFFIXES else "face", q)
                     for q in sorted(q for q in p.rglob("*") if q.is_file())
                     if q.suffix.lower() in AUDIO_SUFFIXES or is_image(q)]
            yield from found or [("empty", p)]
        else:
            yield ("face" if is_image(p) else "speech"), p


def predict_image(rec, path: Path, face_crops: bool = False,
                  annotate_dir: Path | None = None) -> ImagePrediction:
    """One image: the largest face (or the whole image as a crop); errors are returned."""
    from edge.vision.sources import ImageError, load_image

    try:
        image = load_image(path, gray=annotate_dir is None)
    except ImageError as exc:
        return ImagePrediction(str(path), error=str(exc))
    result = rec.classify_crop(image) if face_crops else rec.classify_frame(image)
    if annotate_dir is not None:
        from edge.vision.annotate import write_annotated

        write_annotated(image, result, Path(annotate_dir) / f"{path.stem}.annotated.png")
    return ImagePrediction(str(path), result)


def predict_paths(paths: list[Path], speech_model: Path | None = None,
                  vad_threshold_db: float | None = None, face_model: Path | None = None,
                  face_crops: bool = False, annotate_dir: Path | None = None,
                  resample: bool = False) -> Iterator[FilePrediction | ImagePrediction]:
    """Audio files → speech predictions, images → face predictions, in input order.

    Each model is loaded once, when the first file that needs it comes."""
    speech = face = None
    for kind, path in iter_inputs(paths):
        if kind == "empty":
            yield FilePrediction(str(path), error=(
                f"{path}: no audio ({'/'.join(AUDIO_SUFFIXES)}) or image "
                f"({'/'.join(sorted(IMAGE_SUFFIXES))}) files in this folder"))
            continue
        if kind == "face":
            if face is None:
                from edge.vision.expression import FaceOptions, face_recogniser

                # photos, not a camera: each is looked at on its own (no still-frame reuse)
                face = face_recogniser(face_model, FaceOptions(still_frames=1))
            yield predict_image(face, path, face_crops, annotate_dir)
            continue
        if speech is None:
            speech = speech_recogniser(speech_model, vad_threshold_db)
        try:
            signal = load_audio(path, speech.params.sample_rate, resample)
        except SampleRateError as exc:
            yield FilePrediction(str(path), error=f"{exc}; or pass --resample")
            continue
        except AudioFileError as exc:
            yield FilePrediction(str(path), error=str(exc))
            continue
        yield FilePrediction(str(path), speech.classify_clip(signal))
