"""Music in the room, from what the speech gate already decides about each window.

Every 0.5 s window the speech stage hears is one of three kinds (:func:`window_kind`):
the speech gate passes it (:data:`SPEECH`: the energy gate and the model's no-speech
output, trained on the 4Q training artists' songs and room noises against speech); or it
is not speech but loud, its median frame level ``loud_db`` above the voice threshold
(which ``edge-cli calibrate`` puts 3 dB over the room's noise floor), however steady
(:data:`SOUND`); else :data:`QUIET` (silence, the room's fan, hum or street).  Where most
of the recent windows that are *not speech* are sound, music is playing.  (Chosen on
validation streams, ``python -m training.music_heard_eval``: counting the no-speech
output's soft windows as sound too let room noise alone turn music on.)

Speech windows count neither way, so talking over music keeps the music heard (its pauses
are sound) and talking in a quiet room does not turn it on (its pauses are quiet).  Two
thresholds with a gap between them (hysteresis) and a minimum of non-speech windows in
the span keep the answer from flickering.  Pure: no clocks, no I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

QUIET, SOUND, SPEECH = "quiet", "sound", "speech"
KINDS = (QUIET, SOUND, SPEECH)


@dataclass(frozen=True)
class MusicHeardParams:
    """``[audio.music]``: when the microphone counts as hearing music."""

    enabled: bool = True
    span_s: float = 10.0  # the recent audio looked at
    on_fraction: float = 0.6  # of the span's non-speech windows being sound: music starts
    off_fraction: float = 0.3  # ... at or below this: music stopped
    min_windows: int = 6  # non-speech windows the span needs before anything changes
    loud_db: float = 25.0  # a window this far above the voice threshold is sound

    def __post_init__(self) -> None:
        if not 2.0 <= self.span_s <= 120.0:
            raise ValueError(f"span_s: expected 2..120 seconds, got {self.span_s}")
        if not 0.0 < self.on_fraction <= 1.0:
            raise ValueError(f"on_fraction: expected (0, 1], got {self.on_fraction}")
        if not 0.0 <= self.off_fraction < self.on_fraction:
            raise ValueError(f"off_fraction: expected 0 <= off_fraction < on_fraction "
                             f"({self.on_fraction}), got {self.off_fraction}")
        if not 1 <= int(self.min_windows) <= 240:
            raise ValueError(f"min_windows: expected 1..240, got {self.min_windows}")
        if not 0.0 <= self.loud_db <= 80.0:
            raise ValueError(f"loud_db: expected 0..80 dB, got {self.loud_db}")


def window_kind(gate: str, level_db: float | None, threshold_db: float, loud_db: float) -> str:
    """One window's kind from the speech gate's verdict ``gate`` (quiet / sound / speech,
    :attr:`edge.audio.speech.SpeechResult.heard`) and its median frame level."""
    if gate == SPEECH:
        return SPEECH
    if level_db is not None and level_db >= threshold_db + loud_db:
        return SOUND  # loud and nobody talking: music (or a loud machine)
    return QUIET


class MusicHeard:
    """The hysteresis over the last ``span_s`` of windows (``hop_s`` apart)."""

    def __init__(self, params: MusicHeardParams, hop_s: float) -> None:
        if hop_s <= 0:
            raise ValueError(f"hop_s: expected > 0, got {hop_s}")
        self.params, self.hop_s = params, hop_s
        self.reset()

    def reset(self) -> None:
        """Forget what was heard (a paused microphone)."""
        self.recent: deque[str] = deque(maxlen=max(1, round(self.params.span_s / self.hop_s)))
        self.on = False

    def copy(self) -> MusicHeard:
        c = MusicHeard(self.params, self.hop_s)
        c.recent.extend(self.recent)
        c.on = self.on
        return c

    def over(self, kinds) -> list[bool]:
        """:attr:`on` after each of ``kinds``, taken in turn: the evaluation's view of a stream."""
        out = []
        for k in kinds:
            self.update(k)
            out.append(self.on)
        return out

    def fraction(self) -> float | None:
        """Sound windows among the span's non-speech windows (None: too few of them)."""
        sound = sum(k == SOUND for k in self.recent)
        other = sum(k == QUIET for k in self.recent) + sound
        return None if other < self.params.min_windows else sound / other

    def update(self, kind: str) -> bool:
        """Take one window's kind; True when this changes :attr:`on`."""
        if kind not in KINDS:
            raise ValueError(f"window kind: expected one of {KINDS}, got {kind!r}")
        self.recent.append(kind)
        f = self.fraction()
        if f is None:
            return False
        was = self.on
        if not was and f >= self.params.on_fraction:
            self.on = True
        elif was and f <= self.params.off_fraction:
            self.on = False
        return self.on != was


def heard_over(kinds, params: MusicHeardParams, hop_s: float) -> list[bool]:
    """:meth:`MusicHeard.over` from a fresh detector."""
    return MusicHeard(params, hop_s).over(kinds)
