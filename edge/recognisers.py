"""The recogniser registry: a ``"module:factory"`` spec from the config
(``audio.recogniser``, ``camera.recogniser``) → a recogniser, or why there is none.

A factory is called with the configured model path (None: its default model).  Each
kind names the method its daemon stage calls, checked here, so a wrong factory is a
clear message at start and the modality is ``absent``, never a crash later.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from edge.manifest import ModelError

#: kind → the method its stage calls
KINDS = {"speech": "classify_window", "face": "classify_frame"}
#: specs that earlier example configs wrote (the factories lived in edge.predict)
MOVED = {"edge.predict:face_recogniser": "edge.vision.expression:face_recogniser",
         "edge.predict:speech_recogniser": "edge.audio.speech:speech_recogniser"}


def load_recogniser(kind: str, spec: str, model: Path | None) -> tuple[Any | None, str]:
    """(recogniser, "") or (None, why not)."""
    method = KINDS[kind]
    spec = MOVED.get(spec, spec)
    module, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr or f"{kind}_recogniser")
    except (ImportError, AttributeError) as exc:
        return None, f"no {kind} recogniser installed ({spec}: {exc})"
    try:
        rec = factory(model)
    except (ModelError, ValueError, OSError, LookupError) as exc:
        return None, f"{kind} model unavailable: {exc}"
    if not callable(getattr(rec, method, None)):
        return None, f"{spec} returned {type(rec).__name__} without {method}()"
    return rec, ""
