"""The recogniser registry: a ``"module:factory"`` spec from the config
(``audio.recogniser``, ``camera.recogniser``) → a recogniser, or why there is none.

A factory is called with the configured model path (None: its default model) and, for
faces, the ``[face]`` options (:class:`edge.vision.expression.FaceOptions`) as a second
argument; a factory that takes no options (a stand-in) is called without them while they
are the defaults, and refused when the config sets some.  Each kind names the method its
daemon stage calls, checked here, so a wrong factory is a clear message at start and the
modality is ``absent``, never a crash later.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from edge.manifest import ModelError

#: kind → the method its stage calls
KINDS = {"speech": "classify_window", "face": "classify_frame"}
#: specs that earlier example configs wrote (the factories lived in edge.predict)
MOVED = {"edge.predict:face_recogniser": "edge.vision.expression:face_recogniser",
         "edge.predict:speech_recogniser": "edge.audio.speech:speech_recogniser"}


def _takes_options(factory: Any) -> bool:
    try:
        inspect.signature(factory).bind(None, None)
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): try it with the options
        return True
    return True


def load_recogniser(kind: str, spec: str, model: Path | None,
                    options: Any = None, default: Any = None) -> tuple[Any | None, str]:
    """(recogniser, "") or (None, why not).  ``options`` (when not None) go to the factory
    as its second argument; one that cannot take them gets none while ``options ==
    default``, and is refused otherwise."""
    method = KINDS[kind]
    spec = MOVED.get(spec, spec)
    module, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr or f"{kind}_recogniser")
    except (ImportError, AttributeError) as exc:
        return None, f"no {kind} recogniser installed ({spec}: {exc})"
    args: tuple = (model,)
    if options is not None and _takes_options(factory):
        args = (model, options)
    elif options is not None and options != default:
        return None, f"{spec} takes no {kind} options, but the config sets some: {options}"
    try:
        rec = factory(*args)
    except (ModelError, ValueError, OSError, LookupError) as exc:
        return None, f"{kind} model unavailable: {exc}"
    except Exception as exc:  # a plugin's factory may raise anything: the modality is absent
        return None, f"{spec} failed to build a {kind} recogniser ({type(exc).__name__}: {exc})"
    if not callable(getattr(rec, method, None)):
        return None, f"{spec} returned {type(rec).__name__} without {method}()"
    return rec, ""


def model_sha(recogniser: Any) -> str | None:
    """The sha256 of a recogniser's model (None: no recogniser, or one without a manifest)."""
    return getattr(getattr(getattr(recogniser, "model", None), "manifest", None), "sha256", None)
