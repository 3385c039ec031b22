"""Vocal tract length perturbation (Jaitly & Hinton 2013) on cepstral feature windows.

A longer or shorter vocal tract moves the formants down or up together, while pitch
and timing stay: a stand-in speaker that the speed perturbation of the feature banks
(which moves pitch, formants and rate together) does not make.  Here it is applied to
windows drawn from the banks, so no bank is recomputed: the cepstra (without c0, the
log-energy) are turned back into the log-mel spectrum's shape by the inverse of the
feature path's lifted DCT, the mel bands are read at ``alpha`` × their centre
frequencies (linear interpolation between bands, the edge bands repeated), and the
result is turned into cepstra again.  c0 and the pitch columns are left as they are.
Training only: the device's features are untouched.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from edge.audio import features as F


@lru_cache(maxsize=4)
def _tables(p: F.FeatureParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lifted DCTᵀ (nfilt, numcep), its pseudo-inverse, band centres in Hz)."""
    dct_t = F._tables(p)[2]
    mel = np.linspace(2595 * np.log10(1 + p.lowfreq / 700.0), 2595 * np.log10(1 + p.highfreq / 700.0),
                      p.nfilt + 2)[1:-1]
    centres = 700 * (10 ** (mel / 2595.0) - 1)
    return dct_t, np.linalg.pinv(dct_t), centres


def warp_cepstra(x: np.ndarray, alphas: np.ndarray, p: F.FeatureParams) -> np.ndarray:
    """Windows (n, T, C) whose first ``p.numcep`` columns are the feature path's cepstra
    (c0 the log-energy), each warped by its own factor ``alphas[i]`` (> 1: formants move
    down, as from a longer vocal tract). Other columns are copied."""
    dct_t, inv, centres = _tables(p)
    x = np.asarray(x, np.float32)
    alphas = np.asarray(alphas, np.float64)
    if x.ndim != 3 or alphas.shape != (len(x),):
        raise ValueError(f"expected windows (n, T, C) and n factors, got {x.shape} and {alphas.shape}")
    k = p.numcep
    cep = x[..., :k].astype(np.float64)
    cep[..., 0] = 0.0  # c0 holds the log-energy, not the spectrum's mean
    shape = cep @ inv  # (n, T, nfilt): log-mel bands less their mean
    pos = np.interp(centres[None, :] * alphas[:, None], centres,
                    np.arange(p.nfilt, dtype=np.float64))  # (n, nfilt) band positions
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, p.nfilt - 1)
    f = (pos - lo)[:, None, :]
    warped = (np.take_along_axis(shape, lo[:, None, :], axis=2) * (1 - f)
              + np.take_along_axis(shape, hi[:, None, :], axis=2) * f)
    out = x.copy()
    out[..., 1:k] = (warped @ dct_t)[..., 1:k]
    return out


def vtlp(x: np.ndarray, p: F.FeatureParams, rng: np.random.Generator,
         alpha_range: tuple[float, float], share: float = 1.0) -> np.ndarray:
    """Each window (or, with ``share`` < 1, a random ``share`` of them; the others are
    returned as they are) warped by a factor drawn uniformly from ``alpha_range``."""
    if share >= 1.0:  # every window (the random draws of the runs made before ``share``)
        return warp_cepstra(x, rng.uniform(*alpha_range, size=len(x)), p)
    x = np.array(x, np.float32)
    pick = np.flatnonzero(rng.random(len(x)) < share)
    if len(pick):
        x[pick] = warp_cepstra(x[pick], rng.uniform(*alpha_range, size=len(pick)), p)
    return x


def shift_pitch(x: np.ndarray, p: F.FeatureParams, rng: np.random.Generator,
                semitones: float) -> np.ndarray:
    """Each window's pitch column (semitones re 150 Hz; 0 in unvoiced frames, which stay 0)
    moved by one draw from [-``semitones``, ``semitones``]: speakers' voices apart from their
    formants, as :func:`vtlp` moves the formants apart from the pitch."""
    if not p.pitch:
        raise ValueError("a pitch shift needs the pitch columns (--pitch)")
    col = p.numcep + 1  # the columns: cepstra, voicing, semitones
    x = np.array(x, np.float32)
    d = rng.uniform(-semitones, semitones, size=len(x)).astype(np.float32)
    voiced = x[:, :, col] != 0
    x[:, :, col] += np.where(voiced, d[:, None], np.float32(0))
    return x
