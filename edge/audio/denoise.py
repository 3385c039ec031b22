"""Noise suppression before the features: WebRTC's, as Home Assistant's voice stack runs it.

``webrtc-noise-gain`` (rhasspy; the front end of Wyoming satellites) wraps WebRTC's
audio-processing noise suppressor for 16 kHz, 16-bit mono audio in 10 ms frames. A
model whose :class:`~edge.audio.features.FeatureParams` has ``noise_suppression`` 1–4
hears its audio through it, in training and on the device alike: :func:`edge.audio.
features.mfcc` and :class:`~edge.audio.features.StreamingMFCC` call this module, so
there is one path. Automatic gain stays off: loudness is an arousal cue.

The suppressor keeps state (its noise estimate) from frame to frame. A clip
(:func:`suppress`) starts it fresh; a stream (:class:`NoiseSuppressor`) keeps it across
blocks, and the two give the same samples for the same audio.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
FRAME = 160  # samples in the suppressor's 10 ms frame at 16 kHz
LEVELS = (0, 1, 2, 3, 4)  # 0: off; 1-4: WebRTC's suppression levels (mild to very high)


def _processor(level: int):
    try:
        from webrtc_noise_gain import AudioProcessor
    except ImportError as e:  # a manifest asks for it on a machine without the package
        raise RuntimeError(
            f"noise_suppression: level {level} needs the webrtc-noise-gain package "
            "(pip install webrtc-noise-gain)"
        ) from e
    return AudioProcessor(0, level)  # auto gain 0 dBFS: off


def _to_pcm(x: np.ndarray) -> bytes:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2").tobytes()


class NoiseSuppressor:
    """Streaming suppression of float blocks in [-1, 1]: ``push`` returns the samples
    completed so far (whole 10 ms frames), ``flush`` the zero-padded rest, cut to its
    length, and resets."""

    def __init__(self, level: int) -> None:
        if level not in LEVELS[1:]:
            raise ValueError(f"noise_suppression: expected one of {LEVELS[1:]}, got {level!r}")
        self.level = level
        self.reset()

    def push(self, block: np.ndarray) -> np.ndarray:
        self._buf = np.concatenate([self._buf, np.asarray(block, np.float64)])
        whole = len(self._buf) // FRAME * FRAME
        out = self._run(self._buf[:whole])
        self._buf = self._buf[whole:]
        return out

    def flush(self) -> np.ndarray:
        rest = len(self._buf)
        out = self._run(np.concatenate([self._buf, np.zeros((-rest) % FRAME)]))[:rest]
        self.reset()
        return out

    def reset(self) -> None:
        self._proc = _processor(self.level)
        self._buf = np.zeros(0)

    def _run(self, x: np.ndarray) -> np.ndarray:
        if x.size == 0:
            return np.zeros(0)
        pcm = _to_pcm(x)
        out = b"".join(self._proc.Process10ms(pcm[i : i + 2 * FRAME]).audio
                       for i in range(0, len(pcm), 2 * FRAME))
        return np.frombuffer(out, "<i2").astype(np.float64) / 32768.0


def suppress(signal: np.ndarray, level: int) -> np.ndarray:
    """The whole clip through a fresh suppressor: float64, the same length."""
    ns = NoiseSuppressor(level)
    head = ns.push(signal)
    return np.concatenate([head, ns.flush()])
