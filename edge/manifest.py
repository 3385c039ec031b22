"""Model manifests: the JSON file beside each ``.tflite`` that says what it is.

A manifest records the labels, the input tensor (shape, dtype, quantisation), the
feature parameters, the sha256 of the model file, the data and split it was trained
on, the metrics measured on the fixed test split and the data licence note.  The
device refuses a model whose file hash or feature parameters do not match.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge.labels import QUADRANTS, check_labels

MANIFEST_VERSION = 1
MODALITIES = ("speech", "face", "music")


class ModelError(ValueError):
    """A model or its manifest is missing, corrupt or does not match."""


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str  # "int8", "float32", ...
    scale: float = 0.0  # quantisation; 0.0 where not quantised
    zero_point: int = 0


@dataclass(frozen=True)
class Manifest:
    name: str
    modality: str
    labels: tuple[str, ...]
    input: TensorSpec
    output: TensorSpec
    features: dict[str, Any]
    sha256: str
    model_file: str
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    licence: str = ""
    version: int = MANIFEST_VERSION
    # A speech model's gate: {"no_speech_output": true, "threshold": t[, "hangover": n]} when
    # the model has one output more than its labels, P(nobody is talking), and windows at or
    # above t (and the n voiced windows after one) are not passed on (edge.audio.speech.gate).
    # Empty: the outputs are the labels.
    gate: dict[str, Any] = field(default_factory=dict)

    @property
    def n_outputs(self) -> int:
        return len(self.labels) + (1 if self.gate.get("no_speech_output") else 0)

    def to_json(self) -> str:
        data = asdict(self)
        data["labels"] = list(self.labels)
        return json.dumps(data, indent=2, sort_keys=False) + "\n"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


def _spec(data: Any, where: str) -> TensorSpec:
    if not isinstance(data, dict):
        raise ModelError(f"{where}: expected an object with shape and dtype")
    try:
        return TensorSpec(
            shape=tuple(int(d) for d in data["shape"]),
            dtype=str(data["dtype"]),
            scale=float(data.get("scale", 0.0)),
            zero_point=int(data.get("zero_point", 0)),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:  # a scale beyond a float
        raise ModelError(f"{where}: expected shape (list of ints) and dtype: {exc}") from exc


def load_manifest(path: Path) -> Manifest:
    """Parse and structurally validate a manifest file (no hash check)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: manifest not found (every .tflite needs its .json)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not a readable JSON manifest: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    required = ("name", "modality", "labels", "input", "output", "features", "sha256", "model_file")
    missing = [k for k in required if k not in data]
    if missing:
        raise ModelError(f"{path}: missing field(s) {missing}")
    known = set(Manifest.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ModelError(f"{path}: unknown field(s) {unknown}")
    if data["modality"] not in MODALITIES:
        raise ModelError(f"{path}: field 'modality': expected one of {MODALITIES}")
    labels = data["labels"]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ModelError(f"{path}: field 'labels': expected a list of strings")
    if data["modality"] == "music":  # Russell quadrants, not emotions
        if sorted(labels) != sorted(QUADRANTS) or len(set(labels)) != len(labels):
            raise ModelError(f"{path}: field 'labels': a music model's labels are {list(QUADRANTS)}")
    else:
        try:
            check_labels(labels, f"{path}: field 'labels'")
        except ValueError as exc:
            raise ModelError(str(exc)) from exc
    if not isinstance(data["features"], dict):
        raise ModelError(f"{path}: field 'features': expected an object")
    gate = data.get("gate", {})
    hangover = gate.get("hangover", 0) if isinstance(gate, dict) else 0
    if not isinstance(gate, dict) or set(gate) - {"no_speech_output", "threshold", "hangover"} or (
            gate and not (gate.get("no_speech_output") is True
                          and isinstance(gate.get("threshold"), (int, float))
                          and 0.0 < gate["threshold"] <= 1.0  # no float(): 10**400
                          and type(hangover) is int and 0 <= hangover <= 20)):
        raise ModelError(f"{path}: field 'gate': expected {{}} or {{\"no_speech_output\": true, "
                         f"\"threshold\": a number in (0, 1], optionally \"hangover\": 0..20 "
                         f"windows}}, got {gate!r}")
    if data.get("version", MANIFEST_VERSION) != MANIFEST_VERSION:
        raise ModelError(f"{path}: field 'version': expected {MANIFEST_VERSION}")
    return Manifest(
        name=str(data["name"]),
        modality=data["modality"],
        labels=tuple(labels),
        input=_spec(data["input"], f"{path}: field 'input'"),
        output=_spec(data["output"], f"{path}: field 'output'"),
        features=data["features"],
        sha256=str(data["sha256"]),
        model_file=str(data["model_file"]),
        training=dict(data.get("training", {})),
        metrics=dict(data.get("metrics", {})),
        licence=str(data.get("licence", "")),
        gate=dict(gate),
    )


def verify_model_file(model_path: Path, manifest: Manifest) -> None:
    """Raise ModelError unless the model file exists and its sha256 matches."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelError(f"{model_path}: model file not found")
    actual = sha256_file(model_path)
    if actual != manifest.sha256:
        raise ModelError(
            f"{model_path}: sha256 {actual[:16]}… does not match its manifest "
            f"({manifest.sha256[:16]}…); the model file was changed or the manifest is stale"
        )
