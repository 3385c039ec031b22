"""Music features: frame-level descriptors of an excerpt and their pooled clip vector.

The ONE path shared by ``training.music``, ``convert.music`` and the device
(:mod:`edge.music.emotion`): :func:`frames` turns 16 kHz mono audio into frame tables,
:func:`pool` turns frame tables (the whole excerpt, or a crop of it in training) into
one vector of :func:`feature_names` statistics.

- Timbre and loudness: MFCCs from the project's MFCC code (``edge.audio.features``:
  ``StreamingMFCC``, frame for frame its ``mfcc``, with music-sized frames), their mean
  and standard deviation, and the standard deviation of their frame-to-frame change.
- Spectrum (a 4096-point STFT, 256 ms frames): centroid, roll-off (85 %), flatness, RMS
  level and spectral flux, mean and standard deviation.
- Harmony: a 12-bin chroma from the same STFT (55 Hz – 4 kHz); its mean rotated to the
  best-fitting key's tonic (key-invariant), and the best major and minor key-profile
  correlations (Krumhansl–Kessler), a mode cue for valence.
- Rhythm: the autocorrelation of the flux envelope: peak strength and tempo between 60
  and 200 BPM.
- With ``contrast`` (off in models made before it): spectral contrast in six octave bands
  (Jiang et al. 2002: the log ratio of a band's strongest to its weakest fifth of bins,
  peaks over valleys: tonal against noisy, harsh against soft), mean and standard
  deviation; each band's share of the frame's energy (dB), mean; and the loudness range
  (the level's 90th minus 10th percentile over the excerpt).

NumPy only (no SciPy, no librosa): cheap on a Pi.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from edge.audio import features as F
from edge.params import strict_from_dict

# Krumhansl-Kessler key profiles, tonic first.
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class MusicFeatureParams:
    """Everything that decides the numbers the music model sees."""

    sample_rate: int = 16000
    numcep: int = 20
    mfcc_winlen: float = 0.064
    mfcc_winstep: float = 0.032
    mfcc_nfft: int = 1024
    stft_n: int = 4096
    stft_hop: int = 1024
    chroma_lo_hz: float = 55.0
    chroma_hi_hz: float = 4000.0
    excerpt_s: float = 20.0  # decoded from the middle of a track
    contrast: bool = False  # the octave-band contrast, band energy and loudness range group
    min_s: float = 5.0  # shorter audio is refused
    # per-column affine map of the pooled vector (standardisation, set at conversion)
    column_scale: tuple[float, ...] | None = None
    column_offset: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        cols = [getattr(self, k) for k in ("column_scale", "column_offset")]
        if (cols[0] is None) != (cols[1] is None):
            raise ValueError("column_scale/column_offset: expected both or neither")
        if cols[0] is not None:
            object.__setattr__(self, "column_scale", tuple(map(float, cols[0])))
            object.__setattr__(self, "column_offset", tuple(map(float, cols[1])))
            if not len(self.column_scale) == len(self.column_offset) == n_features(self):
                raise ValueError(f"column_scale/column_offset: expected {n_features(self)} numbers each")
        if not 0 < self.min_s <= self.excerpt_s:
            raise ValueError(f"min_s/excerpt_s: expected 0 < min_s <= excerpt_s, got "
                             f"{self.min_s}/{self.excerpt_s}")

    @property
    def mfcc_params(self) -> F.FeatureParams:
        return F.FeatureParams(sample_rate=self.sample_rate, winlen=self.mfcc_winlen,
                               winstep=self.mfcc_winstep, numcep=self.numcep, nfilt=40,
                               nfft=self.mfcc_nfft, highfreq=self.sample_rate / 2)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict, where: str = "music feature parameters") -> MusicFeatureParams:
        return strict_from_dict(cls, {**ADDED_LATER, **data}, where)


# MusicFeatureParams keys added after a model had shipped: manifests and runs written before
# are read with the value that reproduces what those models did.
ADDED_LATER = {"contrast": False}
SPECTRAL = ("centroid", "rolloff", "flatness", "level_db", "flux")
BAND_EDGES_HZ = (0.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 8000.0)  # the contrast's octave bands
N_BANDS = len(BAND_EDGES_HZ) - 1
CONTRAST_SHARE = 0.2  # the strongest and the weakest fifth of a band's bins


def feature_names(p: MusicFeatureParams) -> list[str]:
    names = [f"mfcc{i}_{s}" for s in ("mean", "std", "dstd") for i in range(p.numcep)]
    names += [f"{k}_{s}" for k in SPECTRAL for s in ("mean", "std")]
    names += [f"chroma_rel{i}" for i in range(12)]
    names += ["key_major", "key_minor", "chroma_std", "pulse", "tempo"]
    if p.contrast:
        names += [f"contrast{b}_{s}" for s in ("mean", "std") for b in range(N_BANDS)]
        names += [f"band{b}_share_db" for b in range(N_BANDS)]
        names += ["loudness_range_db"]
    return names


def n_features(p: MusicFeatureParams) -> int:
    return 3 * p.numcep + 2 * len(SPECTRAL) + 12 + 5 + (3 * N_BANDS + 1 if p.contrast else 0)


def spectral_columns(p: MusicFeatureParams) -> int:
    """Columns of :func:`frames`' spectral table: SPECTRAL, chroma, then (``contrast``) each
    band's contrast and energy share."""
    return len(SPECTRAL) + 12 + (2 * N_BANDS if p.contrast else 0)


@lru_cache(maxsize=4)
def _stft_tables(p: MusicFeatureParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Hann window, bin frequencies, chroma map (bins, 12))."""
    win = np.hanning(p.stft_n).astype(np.float64)
    freqs = np.fft.rfftfreq(p.stft_n, 1.0 / p.sample_rate)
    cmap = np.zeros((len(freqs), 12))
    ok = (freqs >= p.chroma_lo_hz) & (freqs <= p.chroma_hi_hz)
    midi = 69 + 12 * np.log2(np.maximum(freqs, 1e-6) / 440.0)
    for pc in range(12):  # triangular weight within a semitone of the pitch class
        d = np.abs(((midi - pc + 6) % 12) - 6)
        cmap[:, pc] = np.where(ok, np.maximum(0.0, 1.0 - d), 0.0)
    return win, freqs, cmap


@lru_cache(maxsize=4)
def _band_bins(p: MusicFeatureParams) -> tuple[tuple[int, int], ...]:
    """(first, last + 1) STFT bin of each contrast band (DC left out)."""
    freqs = _stft_tables(p)[1]
    edges = [max(1, int(np.searchsorted(freqs, f))) for f in BAND_EDGES_HZ[:-1]] + [len(freqs)]
    return tuple(zip(edges[:-1], edges[1:]))


def band_contrast(power: np.ndarray, p: MusicFeatureParams) -> np.ndarray:
    """(frames, 2 · N_BANDS): each octave band's contrast (dB: mean of its strongest
    :data:`CONTRAST_SHARE` of bins over its weakest's), then its share of the frame's
    energy (dB)."""
    total = power.sum(axis=1)
    out = np.empty((len(power), 2 * N_BANDS))
    for b, (lo, hi) in enumerate(_band_bins(p)):
        band = np.sort(power[:, lo:hi], axis=1)
        k = max(1, int(round(CONTRAST_SHARE * (hi - lo))))
        out[:, b] = 10 * np.log10(band[:, -k:].mean(axis=1) / band[:, :k].mean(axis=1))
        out[:, N_BANDS + b] = 10 * np.log10(band.sum(axis=1) / total + 1e-12)
    return out


def frames(x: np.ndarray, p: MusicFeatureParams) -> tuple[np.ndarray, np.ndarray]:
    """(MFCC frames (n1, numcep), spectral frames (n2, :func:`spectral_columns`)) of mono
    float audio."""
    x = np.asarray(x, np.float64)
    if x.ndim != 1 or len(x) < p.stft_n:
        raise ValueError(f"audio: expected mono with at least {p.stft_n} samples")
    # StreamingMFCC gives mfcc()'s frames exactly, with temporaries bounded by the block
    stream = F.StreamingMFCC(p.mfcc_params)
    block = 2 * p.sample_rate
    mf = np.concatenate([stream.push(x[i : i + block]) for i in range(0, len(x), block)]
                        + [stream.flush()])
    win, freqs, cmap = _stft_tables(p)
    count = 1 + (len(x) - p.stft_n) // p.stft_hop
    out = np.empty((count, spectral_columns(p)), np.float32)
    prev = None
    for s in range(0, count, 64):  # bounded temporaries
        idx = np.arange(p.stft_n)[None, :] + p.stft_hop * np.arange(s, min(count, s + 64))[:, None]
        mag = np.abs(np.fft.rfft(x[idx] * win, axis=1))
        power = mag**2 + 1e-12
        total = power.sum(axis=1)
        centroid = (power @ freqs) / total
        cum = np.cumsum(power, axis=1)
        rolloff = freqs[np.argmax(cum >= 0.85 * total[:, None], axis=1)]
        flatness = np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)
        level = 10 * np.log10(total / (0.5 * np.sum(win**2) * p.stft_n) + 1e-12)
        logmag = np.log1p(100 * mag)
        diff = np.diff(logmag, axis=0, prepend=logmag[:1] if prev is None else prev[None])
        flux = np.maximum(diff, 0).mean(axis=1)
        prev = logmag[-1]
        chroma = power @ cmap
        chroma /= chroma.sum(axis=1, keepdims=True) + 1e-12
        cols = [centroid / 1000.0, rolloff / 1000.0, flatness, level, flux, chroma]
        if p.contrast:
            cols.append(band_contrast(power, p))
        out[s : s + len(mag)] = np.column_stack(cols)
    return mf, out


def _key(chroma_mean: np.ndarray) -> tuple[int, float, float]:
    """(tonic of the best key, best major correlation, best minor correlation)."""
    c = chroma_mean - chroma_mean.mean()
    best = []
    for prof in (MAJOR, MINOR):
        prof = prof - prof.mean()
        r = [float(np.dot(np.roll(prof, k), c) / (np.linalg.norm(prof) * np.linalg.norm(c) + 1e-12))
             for k in range(12)]
        best.append((max(r), int(np.argmax(r))))
    (rmaj, kmaj), (rmin, kmin) = best
    return (kmaj if rmaj >= rmin else kmin), rmaj, rmin


def _pulse(flux: np.ndarray, fps: float) -> tuple[float, float]:
    """(autocorrelation peak 60-200 BPM, its tempo / 100 BPM) of the flux envelope."""
    e = flux - flux.mean()
    n = len(e)
    lo, hi = int(math.floor(fps * 60 / 200)), int(math.ceil(fps * 60 / 60))
    if n <= hi + 1 or not np.any(e):
        return 0.0, 0.0
    spec = np.fft.rfft(e, 2 * n)
    ac = np.fft.irfft(np.abs(spec) ** 2)[: hi + 1]
    ac = ac / (ac[0] + 1e-12)
    k = lo + int(np.argmax(ac[lo : hi + 1]))
    return float(ac[k]), float(60.0 * fps / k / 100.0)


def pool(mf: np.ndarray, spec: np.ndarray, p: MusicFeatureParams) -> np.ndarray:
    """The clip vector (``feature_names(p)`` order) of frame tables from :func:`frames`."""
    d = np.diff(mf, axis=0) if len(mf) > 1 else np.zeros_like(mf)
    n = len(SPECTRAL)
    s = spec[:, :n]
    chroma = spec[:, n : n + 12]
    cm = chroma.mean(axis=0)
    tonic, rmaj, rmin = _key(cm)
    pulse, tempo = _pulse(s[:, 4], p.sample_rate / p.stft_hop)
    stats = np.column_stack([s.mean(axis=0), s.std(axis=0)]).ravel()
    parts = [mf.mean(0), mf.std(0), d.std(0), stats, np.roll(cm, -tonic) * 12,
             [rmaj, rmin, float(chroma.std(axis=0).mean()) * 12, pulse, tempo]]
    if p.contrast:
        c = spec[:, n + 12 : n + 12 + N_BANDS]
        share = spec[:, n + 12 + N_BANDS : n + 12 + 2 * N_BANDS]
        lo, hi = np.percentile(s[:, 3], [10, 90])
        parts += [c.mean(0), c.std(0), share.mean(0), [hi - lo]]
    return np.concatenate(parts).astype(np.float32)


def standardise(vec: np.ndarray, p: MusicFeatureParams) -> np.ndarray:
    """The pooled vector(s) through the manifest's per-column map (if any)."""
    if p.column_scale is None:
        return np.asarray(vec, np.float32)
    return (np.asarray(vec, np.float32) * np.asarray(p.column_scale, np.float32)
            + np.asarray(p.column_offset, np.float32))


def clip_vector(x: np.ndarray, p: MusicFeatureParams) -> np.ndarray:
    """:func:`pool` of :func:`frames`: the unstandardised vector of one excerpt."""
    return pool(*frames(x, p), p)
