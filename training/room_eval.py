"""The room as the test: seeded evaluation conditions for speech models.

Each condition turns clean clips into what a microphone in a living room hears, with
the full image-source method (a different simulator from the one used in training,
:func:`training.rooms.train_rir`) and its own seeds:

* ``room_noise15`` — rooms 3–7 × 3–6 × 2.4–3 m, RT60 0.3–0.7 s, the talker 1–3 m from
  the microphone, pink noise plus 50/100 Hz hum at 15 dB SNR;
* ``room_music10`` — the same kind of rooms, real songs (4Q clips of validation or
  test artists) from a loudspeaker elsewhere in the room at 10 dB SNR;
* ``music_only`` — those songs in those rooms with nobody talking: every window the
  gate passes is a false "someone's emotion".

Validation speakers/artists with :data:`VAL_SEED` are for choosing; test ones with
:data:`TEST_SEED` are scored once, at conversion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training import rooms as R

VAL_SEED = 1001
TEST_SEED = 2002
CONDITIONS = ("room_noise15", "room_music10")
CLIPS_PER_ROOM = 6


def eval_room(rng: np.random.Generator) -> R.Room:
    return R.random_room(rng, size=((3, 7), (3, 6), (2.4, 3.0)), rt60=(0.3, 0.7), distance=(1.0, 3.0))


def _hum_and_pink(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / R.SR
    pink = R.noise("pink", n, rng)
    hum = (np.sin(2 * np.pi * 50 * t + rng.uniform(0, 6.3))
           + 0.5 * np.sin(2 * np.pi * 100 * t + rng.uniform(0, 6.3)))
    hum = hum / np.std(hum)
    return (pink + rng.uniform(0.3, 1.0) * hum).astype(np.float32)


@dataclass
class Condition:
    name: str
    signals: list[np.ndarray]
    rooms: list[R.Room]


def simulate(condition: str, signals: list[np.ndarray], seed: int,
             music: list[np.ndarray] | None = None) -> Condition:
    """``signals`` heard under ``condition`` (one room per :data:`CLIPS_PER_ROOM` clips)."""
    if condition not in (*CONDITIONS, "music_only"):
        raise ValueError(f"condition {condition!r}: expected one of {(*CONDITIONS, 'music_only')}")
    if condition != "room_noise15" and not music:
        raise ValueError(f"condition {condition!r} needs music clips")
    rng = np.random.default_rng([seed, sum(map(ord, condition))])
    out, rooms = [], []
    rir = None
    for i, x in enumerate(signals):
        if i % CLIPS_PER_ROOM == 0:
            room = eval_room(rng)
            rir = R.eval_rir(room)
        rooms.append(room)
        h_talker, h_other = rir
        n = len(x)
        if condition == "room_noise15":
            y = R.mix_at(R.reverberate(x, h_talker), _hum_and_pink(n, rng), 15.0)
        elif condition == "room_music10":
            m = R.reverberate(R.loop_to(music[int(rng.integers(len(music)))], n, rng), h_other)
            y = R.mix_at(R.reverberate(x, h_talker), m, 10.0)
        else:  # music_only: x is itself a song, played in the room
            y = R.reverberate(x, h_other) * 10 ** (rng.uniform(-10, 0) / 20)
        peak = float(np.max(np.abs(y))) if len(y) else 0.0
        out.append((y * (0.99 / peak) if peak > 0.99 else y).astype(np.float32))
    return Condition(condition, out, rooms)
