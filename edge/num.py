"""Two numeric helpers shared by the pure core and the payload builders."""

from __future__ import annotations


def clip(x: float, lo: float = -1.0, hi: float = 1.0) -> float:
    return min(hi, max(lo, x))


def rnd(x: float | None, nd: int = 4) -> float | None:
    """``x`` rounded to ``nd`` decimals as a Python float (None stays None)."""
    return None if x is None else round(float(x), nd)
