"""MFCC features: the ONE code path shared by training and the device.

The reference is ``python_speech_features.mfcc`` (with a Hamming window).  It imports
SciPy, which would add ~30 MB of RSS on a Pi for one DCT, so this module computes the
same numbers with NumPy alone: the same pre-emphasis, framing, power spectrum, mel
filterbank (built by the reference's formula), orthonormal DCT-II, lifter and
log-energy coefficient.  ``tests/test_features.py`` pins ``mfcc`` and the streaming
``StreamingMFCC`` to the reference on real clips; ``StreamingWindows`` cuts streamed
frames into the same windows as :func:`windows`.

Training, conversion and the device all call :func:`mfcc`, :func:`windows` and
:func:`normalise` with the :class:`FeatureParams` stored in each model's manifest.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from edge.audio import denoise
from edge.audio.pitch import pitch_columns
from edge.params import strict_from_dict

NORMALISATIONS = ("c0rel", "cmvn", "none")
# FeatureParams keys added after models had shipped: manifests and training runs written
# before read with the value that reproduces what those models did.
ADDED_LATER = {"column_scale": None, "column_offset": None, "noise_suppression": 0}


@dataclass(frozen=True)
class FeatureParams:
    """Everything that decides the numbers a speech model sees."""

    sample_rate: int = 16000
    winlen: float = 0.025  # analysis frame, seconds
    winstep: float = 0.01  # frame hop, seconds
    numcep: int = 40
    nfilt: int = 40
    nfft: int = 512
    lowfreq: float = 0.0
    highfreq: float = 8000.0
    preemph: float = 0.97
    ceplifter: int = 22
    append_energy: bool = True
    winfunc: str = "hamming"
    window_s: float = 2.0  # model input window, seconds
    hop_s: float = 0.5  # hop between model windows, seconds
    # c0rel: log-energy relative to the window's 90th percentile (microphone gain drops
    # out; only c0 depends on gain), the spectral coefficients as they are, so loudness
    # dynamics and spectral tilt (arousal cues) survive. cmvn: per-window mean and
    # variance normalisation of every coefficient. none: raw.
    normalisation: str = "c0rel"
    # A white noise floor (dBFS) added to every frame's power spectrum, like 16-bit
    # quantisation noise. Digital silence (exact zeros) in a file would otherwise give
    # log(eps) coefficients that no microphone produces. None: exactly the reference.
    floor_db: float | None = -96.0
    # Two prosodic columns after the cepstra: voicing strength (normalised
    # autocorrelation peak, x20) and pitch in semitones re 150 Hz on voiced frames
    # (0 elsewhere), from the same frames. Scaled to the cepstra's range so one int8
    # input scale keeps their resolution.
    pitch: bool = False
    # A per-column affine map x*scale + offset applied after ``normalisation``: the model's
    # input BatchNorm, moved out of the network at conversion (convert.speech) so the int8
    # input's one scale spans evenly standardised columns instead of the raw cepstra's
    # wide range (a 16x finer input step). None: no map (training, and older models).
    column_scale: tuple[float, ...] | None = None
    column_offset: tuple[float, ...] | None = None
    # WebRTC noise suppression of the audio before the frames (edge.audio.denoise):
    # 0 off, 1-4 its levels. 16 kHz only.
    noise_suppression: int = 0

    def __post_init__(self) -> None:
        for name in ("column_scale", "column_offset"):
            value = getattr(self, name)
            if value is None:
                continue
            value = tuple(float(v) for v in value)
            object.__setattr__(self, name, value)  # lists from JSON -> hashable tuples
            if len(value) != self.n_features or not all(map(math.isfinite, value)):
                raise ValueError(
                    f"{name}: expected {self.n_features} finite numbers (one per column), "
                    f"got {len(value)}"
                )
        if (self.column_scale is None) != (self.column_offset is None):
            raise ValueError("column_scale/column_offset: expected both or neither")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate: expected a positive integer, got {self.sample_rate}")
        if not 0 < self.winstep <= self.winlen:
            raise ValueError(f"winstep: expected 0 < winstep <= winlen, got {self.winstep}")
        if self.frame_len > self.nfft:
            raise ValueError(f"nfft: expected >= frame length {self.frame_len}, got {self.nfft}")
        if not 0 < self.numcep <= self.nfilt:
            raise ValueError(f"numcep: expected 1..nfilt ({self.nfilt}), got {self.numcep}")
        if not 0 <= self.lowfreq < self.highfreq <= self.sample_rate / 2:
            raise ValueError(
                f"highfreq: expected lowfreq < highfreq <= {self.sample_rate / 2}, "
                f"got {self.lowfreq}..{self.highfreq}"
            )
        if self.floor_db is not None and not -150.0 <= self.floor_db <= -40.0:
            raise ValueError(f"floor_db: expected None or -150..-40 dBFS, got {self.floor_db}")
        if self.winfunc not in ("hamming", "rect"):
            raise ValueError(f"winfunc: expected 'hamming' or 'rect', got {self.winfunc!r}")
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(
                f"normalisation: expected one of {NORMALISATIONS}, got {self.normalisation!r}"
            )
        if self.noise_suppression not in denoise.LEVELS:
            raise ValueError(f"noise_suppression: expected one of {denoise.LEVELS}, "
                             f"got {self.noise_suppression!r}")
        if self.noise_suppression and self.sample_rate != denoise.SAMPLE_RATE:
            raise ValueError(f"noise_suppression: needs sample_rate {denoise.SAMPLE_RATE}, "
                             f"got {self.sample_rate}")
        if self.window_s < self.winlen or self.hop_s <= 0:
            raise ValueError(
                f"window_s/hop_s: expected window_s >= winlen and hop_s > 0, "
                f"got {self.window_s}/{self.hop_s}"
            )

    @property
    def n_features(self) -> int:
        """Columns per frame: the cepstra, plus voicing and pitch when ``pitch``."""
        return self.numcep + (2 if self.pitch else 0)

    @property
    def frame_len(self) -> int:
        return _round_half_up(self.winlen * self.sample_rate)

    @property
    def frame_step(self) -> int:
        return _round_half_up(self.winstep * self.sample_rate)

    @property
    def window_frames(self) -> int:
        """Frames in one model input window."""
        return _round_half_up(self.window_s / self.winstep)

    @property
    def hop_frames(self) -> int:
        return max(1, _round_half_up(self.hop_s / self.winstep))

    def to_dict(self) -> dict:
        d = asdict(self)
        for name in ("column_scale", "column_offset"):
            d[name] = None if d[name] is None else list(d[name])
        return d

    @classmethod
    def from_dict(cls, data: dict, where: str = "feature parameters") -> FeatureParams:
        return strict_from_dict(cls, {**ADDED_LATER, **data}, where)


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


@lru_cache(maxsize=8)
def _tables(p: FeatureParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """(window, mel filterbank^T, DCT^T with lifter, level offset, floor) for ``p``, cached."""
    n = p.frame_len
    win = np.hamming(n) if p.winfunc == "hamming" else np.ones(n)
    # Mel filterbank exactly as python_speech_features.get_filterbanks builds it.
    def hz2mel(hz):
        return 2595 * np.log10(1 + hz / 700.0)

    def mel2hz(mel):
        return 700 * (10 ** (mel / 2595.0) - 1)

    melpoints = np.linspace(hz2mel(p.lowfreq), hz2mel(p.highfreq), p.nfilt + 2)
    bins = np.floor((p.nfft + 1) * mel2hz(melpoints) / p.sample_rate)
    fb = np.zeros((p.nfilt, p.nfft // 2 + 1))
    for j in range(p.nfilt):
        for i in range(int(bins[j]), int(bins[j + 1])):
            fb[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
        for i in range(int(bins[j + 1]), int(bins[j + 2])):
            fb[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
    # Orthonormal DCT-II, first numcep rows, with the sinusoidal lifter folded in.
    k = np.arange(p.numcep)[:, None]
    m = np.arange(p.nfilt)[None, :]
    dct = np.cos(np.pi * k * (2 * m + 1) / (2 * p.nfilt)) * np.sqrt(2.0 / p.nfilt)
    dct[0] *= np.sqrt(0.5)
    if p.ceplifter > 0:
        lift = 1 + (p.ceplifter / 2.0) * np.sin(np.pi * np.arange(p.numcep) / p.ceplifter)
        dct *= lift[:, None]
    # log-energy of a frame -> level in dB relative to full scale (pre-emphasised RMS).
    level_offset = np.log(0.5 * np.sum(win**2))
    # per-bin power of a white floor whose frame level is floor_db
    floor = 0.0
    if p.floor_db is not None:
        floor = 10 ** (p.floor_db / 10) * 0.5 * np.sum(win**2) / (p.nfft // 2 + 1)
    return win, np.ascontiguousarray(fb.T), np.ascontiguousarray(dct.T), level_offset, floor


def _preemphasis(signal: np.ndarray, coeff: float, previous: float | None = None) -> np.ndarray:
    out = np.empty_like(signal)
    if signal.size == 0:
        return out
    out[0] = signal[0] if previous is None else signal[0] - coeff * previous
    out[1:] = signal[1:] - coeff * signal[:-1]
    return out


def _frames(x: np.ndarray, n: int, step: int) -> np.ndarray:
    """The frames of ``n`` samples every ``step`` that fit in ``x``: a read-only view (the
    windowing makes the one copy), not a gathered index array."""
    return np.lib.stride_tricks.sliding_window_view(x, n)[::step]


def _frame_features(frames: np.ndarray, p: FeatureParams) -> np.ndarray:
    """MFCC rows for already pre-emphasised, un-windowed frames (n, frame_len)."""
    win, fb_t, dct_t, _, floor = _tables(p)
    spec = np.fft.rfft(frames * win, p.nfft)
    pspec = (spec.real**2 + spec.imag**2) / p.nfft
    if floor:
        pspec += floor
    energy = pspec.sum(axis=1)
    energy = np.where(energy == 0, np.finfo(float).eps, energy)
    feat = pspec @ fb_t
    feat = np.where(feat == 0, np.finfo(float).eps, feat)
    cep = np.log(feat) @ dct_t
    if p.append_energy:
        cep[:, 0] = np.log(energy)
    if p.pitch:
        cep = np.concatenate([cep, pitch_columns(frames, p)], axis=1)
    return cep


def _as_float64(signal: np.ndarray) -> np.ndarray:
    x = np.asarray(signal)
    if x.ndim != 1:
        raise ValueError(f"signal: expected a mono 1-D array, got shape {x.shape}")
    return x.astype(np.float64, copy=False)


def mfcc(signal: np.ndarray, p: FeatureParams) -> np.ndarray:
    """MFCC frames (n_frames, numcep) float32 of a mono float signal in [-1, 1].

    With ``floor_db=None`` equal to ``python_speech_features.mfcc(signal, p.sample_rate,
    p.winlen, p.winstep, p.numcep, p.nfilt, p.nfft, p.lowfreq, p.highfreq, p.preemph,
    p.ceplifter, p.append_energy, winfunc=numpy.hamming)``; the floor only changes frames
    and bands whose power is near it. With ``noise_suppression`` the signal is first
    passed through :func:`edge.audio.denoise.suppress`.
    """
    x = _as_float64(signal)
    if p.noise_suppression:
        x = denoise.suppress(x, p.noise_suppression)
    x = _preemphasis(x, p.preemph)
    n, step = p.frame_len, p.frame_step
    numframes = 1 if len(x) <= n else 1 + int(math.ceil((len(x) - n) / step))
    padded = np.concatenate([x, np.zeros((numframes - 1) * step + n - len(x))])
    return _frame_features(_frames(padded, n, step), p).astype(np.float32)


def frame_levels_db(feats: np.ndarray, p: FeatureParams) -> np.ndarray:
    """Per-frame level in dBFS (pre-emphasised RMS) from the log-energy coefficient."""
    if not p.append_energy:
        raise ValueError("frame_levels_db needs append_energy=True feature parameters")
    offset = _tables(p)[3]
    return (feats[:, 0].astype(np.float64) - offset) * (10.0 / math.log(10.0))


class StreamingMFCC:
    """Incremental MFCC over audio blocks: frame-for-frame equal to :func:`mfcc`.

    ``push(block)`` returns the frames completed by ``block``; ``flush()`` returns the
    zero-padded tail frame that :func:`mfcc` would add at the end of a finite signal.
    """

    def __init__(self, p: FeatureParams) -> None:
        self.p = p
        self.reset()

    def push(self, block: np.ndarray) -> np.ndarray:
        x = _as_float64(block)
        if self._ns is not None:
            x = self._ns.push(x)
        if x.size == 0:
            return np.zeros((0, self.p.n_features), np.float32)
        y = _preemphasis(x, self.p.preemph, self._last)
        self._last = float(x[-1])
        self._buf = np.concatenate([self._buf, y])
        n, step = self.p.frame_len, self.p.frame_step
        count = 0 if len(self._buf) < n else 1 + (len(self._buf) - n) // step
        if count == 0:
            return np.zeros((0, self.p.n_features), np.float32)
        out = _frame_features(_frames(self._buf, n, step)[:count], self.p).astype(np.float32)
        self._buf = self._buf[count * step :]
        self._emitted_any = True
        return out

    def flush(self) -> np.ndarray:
        """Frames for the tail as :func:`mfcc` pads it; resets the stream."""
        head = np.zeros((0, self.p.n_features), np.float32)
        if self._ns is not None:  # the suppressor's last samples, then the frames' tail
            ns, self._ns = self._ns, None
            head = self.push(ns.flush())
        tail = self._tail()
        return tail if not head.size else np.concatenate([head, tail])

    def _tail(self) -> np.ndarray:
        n = self.p.frame_len
        step = self.p.frame_step
        tail = self._buf
        emitted = self._emitted_any
        self.reset()
        # mfcc() ends with frames starting every `step` until one covers the end.
        if emitted and len(tail) <= n - step:
            return np.zeros((0, self.p.n_features), np.float32)
        if tail.size == 0:
            return np.zeros((0, self.p.n_features), np.float32)
        padded = np.concatenate([tail, np.zeros(n - len(tail))])
        return _frame_features(padded[None, :], self.p).astype(np.float32)

    def reset(self) -> None:
        self._buf = np.zeros(0)
        self._last: float | None = None  # last raw sample, for pre-emphasis across blocks
        self._emitted_any = False
        level = self.p.noise_suppression
        self._ns = denoise.NoiseSuppressor(level) if level else None


class StreamingWindows:
    """Model windows from streamed MFCC frames: for a whole utterance, window for window
    equal to :func:`windows`.  ``push(frames)`` returns the windows completed (one every
    ``hop_frames``); ``flush()`` ends the utterance as :func:`windows` does (a clip
    shorter than a window tiled, the tail in an end-aligned window) and resets."""

    def __init__(self, p: FeatureParams) -> None:
        self.p = p
        self.reset()

    def push(self, frames: np.ndarray) -> list[np.ndarray]:
        w, h = self.p.window_frames, self.p.hop_frames
        out: list[np.ndarray] = []
        if frames.shape[0]:
            self._buf = np.concatenate([self._buf, frames])
            self._recent = np.concatenate([self._recent, frames])[-w:]
        while self._buf.shape[0] >= w:
            out.append(self._buf[:w].copy())
            self._buf = self._buf[h:]
        self._emitted += len(out)
        return out

    def flush(self) -> list[np.ndarray]:
        w, h = self.p.window_frames, self.p.hop_frames
        recent, short, tail = self._recent, self._emitted == 0, self._buf.shape[0] > w - h
        self.reset()
        if short and recent.shape[0]:
            return [np.resize(recent, (w, self.p.n_features))]
        return [recent.copy()] if not short and tail else []

    def reset(self) -> None:
        self._buf = np.zeros((0, self.p.n_features), np.float32)
        self._recent = self._buf
        self._emitted = 0


def windows(feats: np.ndarray, p: FeatureParams) -> np.ndarray:
    """Cut MFCC frames into model windows (n_windows, window_frames, numcep).

    Windows start every ``hop_frames``; the last window is aligned to the end so no
    speech at the tail is lost.  A clip shorter than one window is repeated (tiled) to
    fill it, so the model never sees padding it was not trained on.
    """
    t, hop = p.window_frames, p.hop_frames
    n = feats.shape[0]
    if n == 0:
        raise ValueError("no audio frames to window")
    if n < t:
        feats = np.resize(feats, (t, feats.shape[1]))  # tiles rows
        n = t
    starts = list(range(0, n - t + 1, hop))
    if starts[-1] != n - t:
        starts.append(n - t)
    return np.stack([feats[s : s + t] for s in starts]).astype(np.float32)


def normalise(win: np.ndarray, p: FeatureParams) -> np.ndarray:
    """Per-window normalisation as the model was trained with, then the per-column map
    when ``p`` has one; works on (..., T, C)."""
    if p.normalisation == "none":
        out = win.astype(np.float32, copy=False)
    elif p.normalisation == "c0rel":
        out = win.astype(np.float32, copy=True)
        out[..., 0] -= np.percentile(out[..., 0], 90, axis=-1)[..., None]
    else:
        mean = win.mean(axis=-2, keepdims=True)
        std = win.std(axis=-2, keepdims=True)
        out = ((win - mean) / (std + 1e-5)).astype(np.float32)
    if p.column_scale is None:
        return out
    scale = np.asarray(p.column_scale, np.float32)
    return out * scale + np.asarray(p.column_offset, np.float32)
