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
        # at the ends against wrap-around; the padded length a whole number of steps, so
        # that the output's time scale and its start are exact (no drift to the end)
        left = ctx_in
        right = left + (-(len(x) + 2 * left)) % step_in
        xp = np.pad(x, (left, right), mode="reflect" if len(x) > 1 else "edge")
        y = _fft_resample(xp, len(xp) // step_in * step_out)
        y = y[ctx_out : ctx_out + n_out]
        return np.pad(y, (0, n_out - len(y)), mode="edge").astype(np.float32)
    xp = np.pad(x, (ctx_in, ctx_in + block_in), mode="reflect")
    out = np.empty(n_out, np.float32)
    for b in range(0, -(-n_out // block_out)):
        span = xp[b * block_in : b * block_in + block_in + 2 * ctx_in]
        y = _fft_resample(span, block_out + 2 * ctx_out)[ctx_out : ctx_out + block_out]
        o = b * block_out
        out[o : o + block_out] = y[: n_out - o]
    return out


class StreamResampler:
    """Block-by-block resampling of a live stream (a microphone that records at 44.1 or
    48 kHz only) to ``rate_out``: a windowed-sinc polyphase filter (Kaiser, beta 8, 16 zero
    crossings, cut-off 0.45 of the lower rate), so each output sample depends only on the
    input around it and the output is the same (to rounding) however the input is cut into
    blocks.
    Output sample ``k`` is the signal at input time ``k · rate_in / rate_out``; it is given
    once the input reaches a filter half-width past it (about 1 ms)."""

    ZERO_CROSSINGS = 16

    def __init__(self, rate_in: int, rate_out: int) -> None:
        if rate_in <= 0 or rate_out <= 0:
            raise ValueError(f"sample rates must be positive, got {rate_in} and {rate_out}")
        g = gcd(int(rate_in), int(rate_out))
        self.up, self.down = rate_out // g, rate_in // g  # output k at input k·down/up
        cutoff = 0.9 * min(1.0, self.up / self.down)  # of the input's Nyquist frequency
        self.half = int(np.ceil(self.ZERO_CROSSINGS / cutoff))
        taps = np.arange(-self.half + 1, self.half + 1)  # input offsets around floor(t)
        phases = np.arange(self.up)[:, None] / self.up  # fractional part of t
        d = phases - taps[None, :]  # t - n for each phase and tap
        h = cutoff * np.sinc(cutoff * d) * np.kaiser(2 * self.half + 1, 8.0)[
            np.clip(np.round(d + self.half).astype(int), 0, 2 * self.half)]
        self._bank = h / h.sum(axis=1, keepdims=True)  # each phase passes DC at gain 1
        self._taps = taps
        self._buf = np.zeros(self.half, np.float64)  # silence before the first sample
        self._start = -self.half  # input index of _buf[0]
        self._k = 0  # next output sample

    def push(self, block: np.ndarray) -> np.ndarray:
        """The output samples the input so far completes (float32)."""
        self._buf = np.concatenate([self._buf, np.asarray(block, np.float64).ravel()])
        end = self._start + len(self._buf)  # input samples known: indexes < end
        # output k needs input up to floor(k·down/up) + half
        last = ((end - 1 - self.half) * self.up) // self.down
        if last < self._k:
            return np.zeros(0, np.float32)
        n = last + 1 - self._k
        y = np.empty(n, np.float64)
        # the window of output k starts at input floor(k·down/up) - half + 1; outputs k, k+up,
        # k+2·up, ... share a phase and their windows start `down` inputs apart: one strided
        # view each, no gathered copies
        frames = np.lib.stride_tricks.sliding_window_view(self._buf, len(self._taps))
        for r in range(min(self.up, n)):
            k = self._k + r
            base, phase = divmod(k * self.down, self.up)
            first = base - self.half + 1 - self._start
            count = len(range(r, n, self.up))
            rows = frames[first : first + (count - 1) * self.down + 1 : self.down]
            y[r::self.up] = rows @ self._bank[phase]
        self._k = last + 1
        keep = (self._k * self.down) // self.up - self.half + 1 - self._start
        self._buf, self._start = self._buf[keep:], self._start + keep
        return y.astype(np.float32)
