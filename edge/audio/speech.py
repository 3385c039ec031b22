"""Speech emotion: audio → MFCC windows → voice gate → int8 model → clip result.

:func:`prepare_clip` and :func:`aggregate` are the same functions the training
evaluation uses, so reported accuracy is what the device does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.audio import features as F
from edge.audio.music_heard import QUIET, SOUND, SPEECH
from edge.audio.vad import VadParams, is_voiced
from edge.labels import confidence, expected_va
from edge.manifest import ModelError
from edge.runtime import TFLiteModel

# The name of a speech model's extra output for windows with nobody talking, and the
# probability of it above which a window is not passed on (manifest gate.threshold).
NO_SPEECH = "no_speech"
NO_SPEECH_THRESHOLD = 0.5


@dataclass(frozen=True)
class SpeechResult:
    label: str | None  # None: no voiced window, no guess
    probabilities: dict[str, float]
    valence: float | None
    arousal: float | None
    confidence: float
    windows: int
    voiced_windows: int
    extra: dict = field(default_factory=dict)
    # one window (classify_window): what the gate heard, quiet / sound / speech
    # (edge.audio.music_heard), and the window's median frame level; "" / None for a clip
    heard: str = ""
    level_db: float | None = None


def window_levels(feats: np.ndarray, p: F.FeatureParams) -> np.ndarray:
    """Per-window frame levels (n_windows, window_frames), cut like :func:`F.windows`."""
    levels = F.frame_levels_db(feats, p)[:, None]
    return F.windows(levels, p)[..., 0]


def prepare_clip(
    signal: np.ndarray, p: F.FeatureParams, vad: VadParams
) -> tuple[np.ndarray, np.ndarray]:
    """(normalised model windows, voiced mask) for a whole clip."""
    feats = F.mfcc(signal, p)
    raw = F.windows(feats, p)
    voiced = np.array([is_voiced(lv, vad) for lv in window_levels(feats, p)], dtype=bool)
    return F.normalise(raw, p), voiced


@dataclass
class Hangover:
    """The no-speech decision's hangover over a stream of windows: after a voiced window
    the no-speech output refused, the next ``windows`` voiced windows are refused too (a
    song's voice-like moments pass the output a window or two at a time, inside long
    stretches it refuses; a talker's windows pass in runs).  A window the energy gate calls
    unvoiced ends it, so a pause in speech does.  0 windows: no hangover."""

    windows: int = 0
    left: int = 0

    def step(self, voiced: bool, refused: bool) -> bool:
        """Whether this window is kept."""
        if not voiced:
            self.left = 0
            return False
        if refused:
            self.left = self.windows
            return False
        if self.left:
            self.left -= 1
            return False
        return True


def gate(window_probs: np.ndarray, voiced: np.ndarray, n_labels: int,
         no_speech_threshold: float, hangover: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(emotion probabilities, kept) per window.  A model with one output more than its
    ``n_labels`` emotions has a 'no speech' output (music, noise, nobody talking): a
    window is kept when the energy gate calls it voiced and that output is below
    ``no_speech_threshold`` (with ``hangover``: and the windows are one clip's, in order,
    through :class:`Hangover`); the emotions are renormalised without it."""
    window_probs = np.asarray(window_probs, np.float32)
    voiced = np.asarray(voiced, bool)
    if window_probs.shape[-1] == n_labels:
        return window_probs, voiced
    emo = window_probs[..., :n_labels]
    emo = emo / np.maximum(emo.sum(axis=-1, keepdims=True), 1e-12)
    kept = voiced & (window_probs[..., n_labels] < no_speech_threshold)
    if hangover:
        h = Hangover(int(hangover))
        kept = np.array([h.step(bool(v), not k) for v, k in zip(voiced, kept)], bool)
    return emo, kept


def aggregate(window_probs: np.ndarray, voiced: np.ndarray) -> np.ndarray | None:
    """Clip probabilities: the mean over voiced windows; None when none is voiced."""
    if window_probs.shape[0] == 0 or not voiced.any():
        return None
    mean = window_probs[voiced].mean(axis=0)
    return mean / max(float(mean.sum()), 1e-12)


def check_feature_params(model: TFLiteModel, sample_rate: int | None = None) -> F.FeatureParams:
    """The model's feature parameters, refusing any the device cannot honour."""
    where = f"{model.path}: manifest field 'features'"
    try:
        p = F.FeatureParams.from_dict(model.manifest.features, where)
    except ValueError as exc:
        raise ModelError(str(exc)) from exc
    expected = (p.window_frames, p.n_features)
    if tuple(model.input_shape[1:]) != expected:
        raise ModelError(
            f"{where}: window_s/winstep/numcep/pitch give input {expected}, "
            f"but the model takes {tuple(model.input_shape[1:])}"
        )
    if sample_rate is not None and p.sample_rate != sample_rate:
        raise ModelError(
            f"{where}: sample_rate {p.sample_rate} Hz, but the device captures {sample_rate} Hz"
        )
    return p


class SpeechRecogniser:
    """Classifies clips or single windows with a verified speech model."""

    def __init__(
        self, model: TFLiteModel, vad: VadParams | None = None, sample_rate: int | None = None
    ) -> None:
        if model.manifest.modality != "speech":
            raise ModelError(f"{model.path}: not a speech model")
        self.model = model
        self.params = check_feature_params(model, sample_rate)
        self.vad = vad or VadParams()
        self.labels = model.manifest.labels
        self.stream = Hangover(self.no_speech_hangover)  # classify_window's, window to window

    def result(self, probs: np.ndarray | None, windows: int, voiced: int,
               **window: object) -> SpeechResult:
        """``window``: ``heard`` and ``level_db`` of a single window."""
        if probs is None:
            return SpeechResult(None, {}, None, None, 0.0, windows, voiced, **window)
        pd = {lab: float(p) for lab, p in zip(self.labels, probs)}
        v, a = expected_va(pd)
        label = self.labels[int(np.argmax(probs))]
        return SpeechResult(label, pd, v, a, confidence(pd), windows, voiced, **window)

    @property
    def hears_music(self) -> bool:
        """Whether the model can tell sound from speech (it has a no-speech output)."""
        return self.model.manifest.n_outputs > len(self.labels)

    @property
    def no_speech_threshold(self) -> float:
        """The calibrated threshold (``vad.no_speech_threshold``), else the manifest's."""
        if self.vad.no_speech_threshold is not None:
            return self.vad.no_speech_threshold
        return float(self.model.manifest.gate.get("threshold", NO_SPEECH_THRESHOLD))

    @property
    def no_speech_hangover(self) -> int:
        """Windows refused after one the no-speech output refused (manifest gate.hangover)."""
        return int(self.model.manifest.gate.get("hangover", 0))

    def gate(self, probs: np.ndarray, voiced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One clip's windows, in order, through the gate."""
        return gate(probs, voiced, len(self.labels), self.no_speech_threshold, self.no_speech_hangover)

    def reset_stream(self) -> None:
        """The stream of :meth:`classify_window` restarts (a paused microphone)."""
        self.stream = Hangover(self.no_speech_hangover)

    def _outputs(self, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the model's outputs for every window, voiced): only the windows the energy gate
        calls voiced are run; the others stay zero."""
        x, voiced = prepare_clip(signal, self.params, self.vad)
        full = np.zeros((x.shape[0], self.model.manifest.n_outputs), np.float32)
        if voiced.any():
            full[voiced] = self.model.predict(x[voiced])
        return full, voiced

    def clip_windows(self, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(emotion probabilities, kept, voiced) for every window of a clip: ``voiced`` by
        the energy gate, ``kept`` by the whole gate."""
        full, voiced = self._outputs(signal)
        emo, kept = self.gate(full, voiced)
        return emo, kept, voiced

    def no_speech_probs(self, signal: np.ndarray) -> np.ndarray:
        """P(no speech) of the clip's energy-voiced windows (empty for a model without the
        output): what ``edge-cli calibrate`` sets the threshold from."""
        full, voiced = self._outputs(signal)
        if self.model.manifest.n_outputs == len(self.labels):
            return np.zeros(0, np.float32)
        return full[voiced, -1]

    def classify_clip(self, signal: np.ndarray) -> SpeechResult:
        emo, kept, voiced = self.clip_windows(signal)
        return self.result(aggregate(emo, kept), int(len(kept)), int(kept.sum()))

    def classify_window(self, feats_window: np.ndarray) -> SpeechResult:
        """One raw MFCC window (window_frames, numcep) of a stream: successive calls are
        successive windows (the gate's hangover carries over; :meth:`reset_stream` starts
        another stream)."""
        p = self.params
        levels = F.frame_levels_db(feats_window, p)
        level = float(np.median(levels)) if levels.size else None
        if not is_voiced(levels, self.vad):
            self.stream.step(False, True)
            return self.result(None, 1, 0, heard=QUIET, level_db=level)
        emo, kept = gate(self.model.predict(F.normalise(feats_window[None], p)), np.ones(1, bool),
                         len(self.labels), self.no_speech_threshold)
        if not self.stream.step(True, not kept[0]):  # music or noise, nobody talking
            return self.result(None, 1, 0, heard=SOUND, level_db=level)
        return self.result(emo[0], 1, 1, heard=SPEECH, level_db=level)


def speech_recogniser(model_path: Path | str | None = None, vad_threshold_db: float | None = None,
                      sample_rate: int | None = None) -> SpeechRecogniser:
    """The shipped speech model (or ``model_path``): the factory ``audio.recogniser``
    names by default (:mod:`edge.recognisers`)."""
    from edge.runtime import default_models_dir, load_model

    path = Path(model_path) if model_path else default_models_dir() / "speech_emotion.tflite"
    vad = VadParams() if vad_threshold_db is None else VadParams(threshold_db=vad_threshold_db)
    return SpeechRecogniser(load_model(path, "speech"), vad, sample_rate)
