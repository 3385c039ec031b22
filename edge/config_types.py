"""The generic half of the config loader: a parsed TOML table → a typed, frozen dataclass.

:func:`build` walks a dataclass's fields by their type hints (bool, int, float, str, Path,
enums, fixed-length tuples, tables, nested dataclasses, ``X | None``), rejects unknown keys,
checks the ranges/choices in a field's metadata (:func:`ranged`, :func:`choices`), then lets
the dataclass's own ``__post_init__`` checks run.  Every error is a :class:`ConfigError`
naming the key path (``mqtt.tls.ca_file``) and what was expected.  The sections themselves,
the cross-field checks and the secrets are :mod:`edge.config`'s.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration problem; the message names the file, the key and what was expected."""


def ranged(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> dict:
    return {"range": (lo, hi, lo_open)}


def choices(*values: str) -> dict:
    return {"choices": values}

def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp in (str, Path):
        return "a string" if tp is str else "a path (string)"
    if isinstance(tp, type) and issubclass(tp, Enum):
        return "one of " + ", ".join(repr(p.value) for p in tp)
    if dataclasses.is_dataclass(tp):
        return "a table"
    if origin is tuple:
        return f"an array of {len(typing.get_args(tp))} numbers"
    if origin in (Mapping, dict):
        return "a table"
    return str(tp)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(args[0], value, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {_show(value)}")
        return build(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_show(value)}")
        if isinstance(value, int) and abs(value) > 1e300 or not math.isfinite(value):
            shown = f"an integer of {len(str(abs(value)))} digits" if isinstance(value, int) else value
            raise ConfigError(f"{where}: expected a finite number, got {shown}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_show(value)}")
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: expected a path (non-empty string), got {_show(value)}")
        return Path(value).expanduser()
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError:
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {_show(value)}") from None
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list) or len(value) != len(args):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {_show(value)}")
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin in (Mapping, dict):
        _, vt = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {_show(value)}")
        return {k: _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    raise TypeError(f"{where}: unsupported config type {tp!r}")  # a bug here, not in the file


def _show(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text if len(text) <= 60 else text[:57] + '...'}"


def _check_meta(meta: Mapping[str, Any], value: Any, where: str) -> None:
    if "range" in meta and value is not None:
        lo, hi, lo_open = meta["range"]
        if (lo is not None and (value <= lo if lo_open else value < lo)) or (
            hi is not None and value > hi
        ):
            bounds = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
            raise ConfigError(f"{where}: expected a value in {bounds}, got {value}")
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{where}: expected one of {list(meta['choices'])}, got {value!r}")


def build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    prefix = f"{where}." if where else ""
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"{prefix}{unknown[0]}: unknown key; expected one of {sorted(known)}"
            + (f" (also unknown: {unknown[1:]})" if len(unknown) > 1 else "")
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        converted = _convert(hints[name], value, key)
        _check_meta(known[name].metadata, converted, key)
        kwargs[name] = converted
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # the section's own checks (e.g. FusionParams)
        raise ConfigError(f"{where or 'config'}: {exc}") from None
