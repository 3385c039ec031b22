"""argparse ``type`` functions for the CLI's numbers: a value outside what the command
can use (a negative timeout, a NaN, a zero sample rate) is refused at parse time, exit 2
naming the argument, instead of failing later in a way that does not name it."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(lo: float | None = None, hi: float | None = None, *, integer: bool = False,
           above: bool = False) -> Callable[[str], float | int]:
    """A type for a finite number in [lo, hi] (``above``: lo itself excluded; None: no
    bound); ``integer`` for whole numbers."""
    kind = "an integer" if integer else "a number"
    left = "(" if above else "["
    where = (f"in {left}{lo:g}, {hi:g}]" if lo is not None and hi is not None
             else f"{'>' if above else '≥'} {lo:g}" if lo is not None
             else f"≤ {hi:g}" if hi is not None else "")

    def parse(text: str) -> float | int:
        try:
            x = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind} {where}, got {text!r}") from None
        if (not math.isfinite(x) or (lo is not None and (x <= lo if above else x < lo))
                or (hi is not None and x > hi)):
            raise argparse.ArgumentTypeError(f"expected {kind} {where}, got {text}")
        return x

    return parse
