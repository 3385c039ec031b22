"""Band-limited resampling of audio files to the model's sample rate (NumPy only).

Used only when the user asks for it (``edge-cli predict --resample``): by default a file
at another rate is an error, so nothing is silently changed.  The method is the FFT
one (an ideal low-pass at the lower Nyquist frequency), done block by block with some
context on each side so memory stays small on long files: each output block is cut
from the middle of a resampled, longer input span, and block boundaries fall on
exact sample positions of both rates.
"""

from __future__ import annotations

from math import gcd

import numpy as np

BLOCK_S = 8.0  # seconds of input per block
CONTEXT_S = 0.25  # seconds of context on each side of a block


def _fft_resample(x: np.ndarray, n_out: int) -> np.ndarray:
    n = len(x)
    spec = np.fft.rfft(x.astype(np.float64))
    keep = min(len(spec), n_out // 2 + 1)
    out = np.zeros(n_out // 2 + 1, np.complex128)
    out[:keep] = spec[:keep]
    if n_out < n and n_out % 2 == 0:
        out[-1] = out[-1].real  # the new Nyquist bin is real
    return np.fft.irfft(out, n_out) * (n_out / n)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """float32 mono ``x`` at ``rate_in`` Hz → float32 at ``rate_out`` Hz,
    ``round(len(x) · rate_out / rate_in)`` samples."""
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in} and {rate_out}")
    x = np.asarray(x, np.float32)
    if rate_in == rate_out or len(x) == 0:
        return x.copy()
    g = gcd(int(rate_in), int(rate_out))
    step_in, step_out = rate_in // g, rate_out // g  # block lengths that stay exact
    n_out = int(round(len(x) * rate_out / rate_in))
    k = max(1, int(BLOCK_S * rate_in) // step_in)
    block_in, block_out = k * step_in, k * step_out
    ctx_steps = max(1, -(-int(CONTEXT_S * rate_in) // step_in))
    ctx_in, ctx_out = ctx_steps * step_in, ctx_steps * step_out
    if len(x) <= block_in + 2 * ctx_in or block_in > 4 * BLOCK_S * rate_in:
        # short input, or a rate pair with no short exact block: in one piece, mirrored
        # at the ends against wrap-around
        pad = min(len(x) - 1, int(CONTEXT_S * rate_in))
        xp = np.pad(x, pad, mode="reflect") if pad > 0 else x
        total = int(round(len(xp) * rate_out / rate_in))
        y = _fft_resample(xp, total)
        start = int(round(pad * rate_out / rate_in))
        y = y[start : start + n_out]
        return np.pad(y, (0, n_out - len(y)), mode="edge").astype(np.float32)
    xp = np.pad(x, (ctx_in, ctx_in + block_in), mode="reflect")
    out = np.empty(n_out, np.float32)
    for b in range(0, -(-n_out // block_out)):
        span = xp[b * block_in : b * block_in + block_in + 2 * ctx_in]
        y = _fft_resample(span, block_out + 2 * ctx_out)[ctx_out : ctx_out + block_out]
        o = b * block_out
        out[o : o + block_out] = y[: n_out - o]
    return out
