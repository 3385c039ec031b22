"""The two prosodic columns of :class:`edge.audio.features.FeatureParams` with ``pitch``:
voicing strength and pitch per frame, by autocorrelation (part of the one feature path)."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edge.audio.features import FeatureParams

PITCH_MIN_HZ, PITCH_MAX_HZ, VOICED = 80.0, 400.0, 0.5
OCTAVE_COST = 0.03
PITCH_GATE_DB = -75.0  # frames quieter than this (dBFS, de-emphasised) are unvoiced


@lru_cache(maxsize=8)
def _pitch_tables(p: FeatureParams) -> tuple:
    """(Hann window, FFT size, de-emphasis gain, window autocorrelation, octave cost per
    lag, window energy, lag range)."""
    n = p.frame_len
    nfft = 1 << (2 * n - 1).bit_length()  # linear (not circular) autocorrelation
    win = np.hanning(n + 2)[1:-1]
    w = np.pi * np.arange(nfft // 2 + 1) * 2 / nfft
    # undo the pre-emphasis (its gain ~0 near DC, so floor it at the lowest pitch)
    h2 = 1 + p.preemph**2 - 2 * p.preemph * np.cos(w)
    h_min = 1 + p.preemph**2 - 2 * p.preemph * math.cos(2 * np.pi * PITCH_MIN_HZ / p.sample_rate)
    gain = 1.0 / np.maximum(h2, h_min)
    gain[w * p.sample_rate / (2 * np.pi) < PITCH_MIN_HZ * 0.75] = 0.0  # hum and DC out
    rw = np.fft.irfft(np.abs(np.fft.rfft(win, nfft)) ** 2, nfft)
    lo = int(p.sample_rate / PITCH_MAX_HZ)
    hi = min(int(math.ceil(p.sample_rate / PITCH_MIN_HZ)), n - 2)
    cost = OCTAVE_COST * np.log2(np.arange(lo - 1, hi + 2) / lo)
    return win, nfft, gain, rw[: hi + 2] / rw[0], cost, 0.5 * float(np.sum(win**2)), lo, hi


PITCH_CHUNK = 64  # frames per FFT batch: bounds the temporaries (a 5 s clip at once: ~20 MB)


def pitch_columns(frames: np.ndarray, p: FeatureParams) -> np.ndarray:
    """(voicing x20, semitones re 150 Hz or 0) per pre-emphasised frame, by autocorrelation.

    The normalised autocorrelation of the Hann-windowed frame divided by the window's
    own (Boersma 1993); its highest peak between 80 and 400 Hz gives voicing strength
    and period (refined by a parabola through the peak and its neighbours).  Frames are
    independent, so they go through in chunks of PITCH_CHUNK (same values, less memory).
    """
    if len(frames) > PITCH_CHUNK:
        return np.concatenate([pitch_columns(frames[i : i + PITCH_CHUNK], p)
                               for i in range(0, len(frames), PITCH_CHUNK)])
    win, nfft, gain, rw, cost, win_energy, lo, hi = _pitch_tables(p)
    x = frames - frames.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(x * win, nfft)
    r = np.fft.irfft((spec.real**2 + spec.imag**2) * gain, nfft)[:, : hi + 2]
    r0 = r[:, :1]  # >= 0; where 0, r is 0 at every lag
    rn = r / np.maximum(r0, 1e-300) / rw
    # octave cost: of near-equal peaks at T, 2T, ... the shortest period wins
    score = rn[:, lo - 1 : hi + 2] - cost
    k = np.argmax(score[:, 1:-1], axis=1)
    rows = np.arange(len(rn))
    peak = rn[rows, lo + k]
    left = rn[rows, lo + k - 1]
    right = rn[rows, lo + k + 1]
    is_peak = (score[rows, k + 1] > score[rows, k]) & (score[rows, k + 1] >= score[rows, k + 2])
    denom = left - 2 * peak + right
    shift = np.where(denom < 0, 0.5 * (left - right) / np.where(denom < 0, denom, -1.0), 0.0)
    lag = lo + k + np.clip(shift, -0.5, 0.5)
    # a true period is a local maximum inside the range, in a frame above the gate
    level_db = 10 * np.log10(np.maximum(r0[:, 0], 1e-30) / win_energy)
    real = is_peak & (level_db > PITCH_GATE_DB)
    voicing = np.where(real, np.clip(peak, 0.0, 1.0), 0.0)
    semis = 12 * np.log2(p.sample_rate / lag / 150.0)
    semis = np.where(voicing >= VOICED, semis, 0.0)
    return np.stack([20 * voicing, semis], axis=1)
