"""TFLite interpreter loading and a small quantisation-aware model wrapper.

The interpreter comes from ``ai_edge_litert`` (LiteRT, the maintained package), else
``tflite_runtime`` (stopped at Python 3.11 and built against NumPy 1.x), else
``tensorflow.lite`` (workstation only: the device never needs TensorFlow).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.manifest import Manifest, ModelError, load_manifest, manifest_path, verify_model_file

log = logging.getLogger(__name__)

INTERPRETER_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite")
_loaded: tuple[type, str] | None = None


def _import(module: str):
    import importlib

    mod = importlib.import_module(module)
    return mod.Interpreter


def interpreter_class(preferred: tuple[str, ...] = INTERPRETER_MODULES) -> tuple[type, str]:
    """The first importable interpreter class and the module it came from."""
    global _loaded
    if _loaded is not None and preferred == INTERPRETER_MODULES:
        return _loaded
    errors = []
    for module in preferred:
        try:
            cls = _import(module)
        except ImportError as exc:
            errors.append(f"{module}: {exc}")
            continue
        except (AttributeError, RuntimeError) as exc:  # e.g. NumPy 2 vs a NumPy 1.x build
            msg = str(exc)
            if module.startswith("tflite_runtime") and "numpy" in msg.lower():
                msg += " (tflite-runtime is built against NumPy 1.x: install 'numpy<2' or use ai-edge-litert)"
            errors.append(f"{module}: {msg}")
            continue
        log.info("TFLite interpreter: %s", module)
        if preferred == INTERPRETER_MODULES:
            _loaded = (cls, module)
        return cls, module
    raise ModelError(
        "no TFLite interpreter found; install 'ai-edge-litert' (or 'tflite-runtime' with "
        "numpy<2 on Python <= 3.11). Tried: " + "; ".join(errors)
    )


@dataclass
class TFLiteModel:
    """A verified model: manifest + interpreter, run on float inputs."""

    path: Path
    manifest: Manifest
    interpreter_module: str

    def __post_init__(self) -> None:
        cls, _ = interpreter_class((self.interpreter_module,))
        try:
            self._interp = cls(model_path=str(self.path), num_threads=1)
            self._interp.allocate_tensors()
        except Exception as exc:  # the interpreters raise RuntimeError, ValueError, SystemError
            hint = ""
            if self.interpreter_module.startswith("tflite_runtime") and np.lib.NumpyVersion(
                np.__version__
            ) >= "2.0.0":
                hint = (f"; tflite-runtime is built against NumPy 1.x and cannot run with NumPy "
                        f"{np.__version__}: install 'numpy<2' or use ai-edge-litert")
            raise ModelError(f"{self.path}: {self.interpreter_module} cannot load it "
                             f"({type(exc).__name__}: {exc}){hint}") from None
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_dtype, self._out_dtype = inp["dtype"], out["dtype"]
        self._in_q = inp["quantization"]
        self._out_q = out["quantization"]
        shape = tuple(int(d) for d in inp["shape"])
        expected = tuple(self.manifest.input.shape)
        if shape[1:] != expected[1:]:
            raise ModelError(
                f"{self.path}: input shape {shape} does not match manifest {expected}"
            )
        if np.dtype(self._in_dtype).name != self.manifest.input.dtype:
            raise ModelError(
                f"{self.path}: input dtype {np.dtype(self._in_dtype).name} does not match "
                f"manifest {self.manifest.input.dtype}"
            )
        n_out = int(out["shape"][-1])
        if n_out != self.manifest.n_outputs:
            extra = " and a no-speech output (field 'gate')" if self.manifest.gate else ""
            raise ModelError(
                f"{self.path}: {n_out} outputs but manifest lists {len(self.manifest.labels)} "
                f"labels{extra}"
            )
        self._batch = int(shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.manifest.input.shape)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Output probabilities (n, manifest.n_outputs) float32 for float inputs
        (n, *input_shape[1:])."""
        x = np.asarray(x, np.float32)
        if x.shape[1:] != self.input_shape[1:]:
            raise ValueError(f"input: expected (n, {self.input_shape[1:]}), got {x.shape}")
        if x.shape[0] == 0:
            return np.zeros((0, self.manifest.n_outputs), np.float32)
        if not np.isfinite(x).all():  # cast to int8 they are undefined, and the model would answer them
            bad = int(np.count_nonzero(~np.isfinite(x)))
            raise ValueError(f"input: {bad} value{' is' if bad == 1 else 's are'} not a finite "
                             f"number{'' if bad == 1 else 's'} (NaN or infinity)")
        if self._batch != x.shape[0]:
            self._interp.resize_tensor_input(self._in_index, [x.shape[0], *x.shape[1:]])
            self._interp.allocate_tensors()
            self._batch = x.shape[0]
        self._interp.set_tensor(self._in_index, self._quantise(x))
        self._interp.invoke()
        return self._dequantise(self._interp.get_tensor(self._out_index))

    def _quantise(self, x: np.ndarray) -> np.ndarray:
        if self._in_dtype == np.float32:
            return x
        scale, zero = self._in_q
        info = np.iinfo(self._in_dtype)
        q = np.round(x / scale + zero)
        return np.clip(q, info.min, info.max).astype(self._in_dtype)

    def _dequantise(self, y: np.ndarray) -> np.ndarray:
        if self._out_dtype == np.float32:
            return y.astype(np.float32, copy=True)
        scale, zero = self._out_q
        return ((y.astype(np.float32) - zero) * scale).astype(np.float32)


def load_model(model_path: Path, modality: str | None = None,
               interpreter: str | None = None) -> TFLiteModel:
    """Load a ``.tflite`` with its manifest, refusing a hash or shape mismatch.

    ``interpreter`` (or the environment variable ``MOODEDGE_INTERPRETER``) names one of
    INTERPRETER_MODULES to use instead of the first importable one.
    """
    model_path = Path(model_path)
    manifest = load_manifest(manifest_path(model_path))
    if modality is not None and manifest.modality != modality:
        raise ModelError(
            f"{model_path}: manifest says modality {manifest.modality!r}, expected {modality!r}"
        )
    verify_model_file(model_path, manifest)
    choice = interpreter or os.environ.get("MOODEDGE_INTERPRETER") or None
    if choice is not None and choice not in INTERPRETER_MODULES:
        raise ModelError(f"interpreter {choice!r}: expected one of {INTERPRETER_MODULES}")
    _, module = interpreter_class((choice,) if choice else INTERPRETER_MODULES)
    return TFLiteModel(model_path, manifest, module)


SHIPPED_MODELS = {"speech": "speech_emotion.tflite", "face": "face_expression.tflite"}


def default_models_dir() -> Path:
    """Where the shipped models are, from any working directory: ``edge/models/`` in an
    installed package (the wheel carries the repository's ``models_tflite/`` there, see
    setup.py), else ``models_tflite/`` beside ``edge/`` (a checkout, editable or on
    ``sys.path``)."""
    here = Path(__file__).resolve().parent
    candidates = (here / "models", here.parent / "models_tflite")
    return next((d for d in candidates if d.is_dir()), candidates[0])


def resolve_model_path(modality: str, explicit: Path | str | None = None) -> Path:
    """``explicit`` (a config key or a command-line flag) if given, else the shipped model
    for ``modality`` ("speech" or "face"). Loading it (:func:`load_model`) says what is
    wrong with either."""
    if explicit:
        return Path(explicit)
    try:
        return default_models_dir() / SHIPPED_MODELS[modality]
    except KeyError:
        raise ModelError(f"modality {modality!r}: expected one of {sorted(SHIPPED_MODELS)}") from None
