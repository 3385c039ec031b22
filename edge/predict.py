"""Batch prediction over files: load the model once, go on past bad files."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.audio.sources import AudioFileError, iter_audio_files, load_audio
from edge.audio.speech import SpeechRecogniser, SpeechResult
from edge.audio.vad import VadParams
from edge.runtime import default_models_dir, load_model


@dataclass(frozen=True)
class FilePrediction:
    path: str
    result: SpeechResult | None = None
    error: str | None = None

    def as_json(self) -> dict:
        r = self.result
        assert r is not None
        return {
            "path": self.path,
            "modality": "speech",
            "label": r.label,
            "probabilities": {k: round(v, 6) for k, v in r.probabilities.items()},
            "valence": None if r.valence is None else round(r.valence, 4),
            "arousal": None if r.arousal is None else round(r.arousal, 4),
            "confidence": round(r.confidence, 4),
            "windows": r.windows,
            "voiced_windows": r.voiced_windows,
        }


def speech_recogniser(model_path: Path | None = None, vad_threshold_db: float | None = None,
                      sample_rate: int | None = None) -> SpeechRecogniser:
    path = Path(model_path) if model_path else default_models_dir() / "speech_emotion.tflite"
    vad = VadParams() if vad_threshold_db is None else VadParams(threshold_db=vad_threshold_db)
    return SpeechRecogniser(load_model(path, "speech"), vad, sample_rate)


def predict_files(paths: list[Path], model_path: Path | None = None,
                  vad_threshold_db: float | None = None) -> Iterator[FilePrediction]:
    """One FilePrediction per input file, in order; errors are per file, never raised."""
    rec = speech_recogniser(model_path, vad_threshold_db)
    for path in iter_audio_files(paths):
        try:
            signal = load_audio(path, rec.params.sample_rate)
        except AudioFileError as exc:
            yield FilePrediction(str(path), error=str(exc))
            continue
        yield FilePrediction(str(path), rec.classify_clip(signal))
