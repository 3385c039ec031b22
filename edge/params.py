"""Strict construction of parameter dataclasses from manifests and config (JSON/TOML)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def strict_from_dict(cls: type[T], data: dict[str, Any], where: str) -> T:
    """``cls(**data)``, rejecting unknown and missing keys with ``where`` in the message."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; expected {sorted(known)}")
    missing = sorted(known - set(data))
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}")
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc
