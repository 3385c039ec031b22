"""What the microphone hears in a living room: rooms, noises, music, microphones.

Training only (scipy, pyroomacoustics).  Everything is seeded and pure: a function of
the signal, the random generator and the material it is given.

* :func:`train_rir` — a room impulse response for training: the early part from the
  image-source method (pyroomacoustics, reflections up to order 12) and the late part
  as exponentially decaying noise with the room's RT60 (Schroeder's statistical model),
  its level set by the critical distance.  About 5 ms per room instead of 1–5 s for a
  full image-source response, so every augmented copy gets a room of its own.
* :func:`eval_rir` — the evaluation rooms: the full image-source method (order from
  Sabine's formula), a different simulator from the one trained on, so the report does
  not reward fitting our own simulator.
* :func:`noise` — fan, mains hum, street, pink/white hiss; babble and music are mixed
  from real recordings of *training* speakers and artists by :func:`Scene.render`.
* :func:`colour` — microphone and preamp colouration: high-pass, low-pass, a peak.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SR = 16000
NOISE_KINDS = ("fan", "hum", "street", "pink", "white")
C_SOUND = 343.0


# ---------------------------------------------------------------- rooms
@dataclass(frozen=True)
class Room:
    dims: tuple[float, float, float]
    rt60: float
    mic: tuple[float, float, float]
    talker: tuple[float, float, float]
    other: tuple[float, float, float]  # where the loudspeaker / TV / other talkers are

    @property
    def distance(self) -> float:
        return float(np.linalg.norm(np.subtract(self.talker, self.mic)))


def _inside(rng, dims, margin=0.3, z=(0.8, 1.8)):
    return (float(rng.uniform(margin, dims[0] - margin)), float(rng.uniform(margin, dims[1] - margin)),
            float(rng.uniform(*z)))


def random_room(rng: np.random.Generator, size=((3, 7), (3, 6), (2.4, 3.0)), rt60=(0.2, 0.9),
                distance=(0.5, 4.0)) -> Room:
    """A shoebox room with a microphone, a talker ``distance`` metres away (as far as the
    room allows) and a second source elsewhere."""
    dims = tuple(float(rng.uniform(*s)) for s in size)
    mic = _inside(rng, dims, z=(0.7, 1.5))
    want = float(rng.uniform(*distance))
    for _ in range(50):
        az = rng.uniform(0, 2 * np.pi)
        talker = (mic[0] + want * np.cos(az), mic[1] + want * np.sin(az), float(rng.uniform(1.0, 1.7)))
        if 0.3 <= talker[0] <= dims[0] - 0.3 and 0.3 <= talker[1] <= dims[1] - 0.3:
            break
        want *= 0.95
    else:
        talker = _inside(rng, dims)
    other = _inside(rng, dims, z=(0.5, 1.5))
    return Room(dims, float(rng.uniform(*rt60)), mic, talker, other)


def _shoebox(room: Room, max_order: int | None):
    import pyroomacoustics as pra

    absorption, order = pra.inverse_sabine(room.rt60, room.dims)
    order = order if max_order is None else min(order, max_order)
    box = pra.ShoeBox(room.dims, fs=SR, materials=pra.Material(absorption), max_order=order)
    box.add_source(room.talker)
    box.add_source(room.other)
    box.add_microphone(room.mic)
    box.compute_rir()
    return [np.asarray(box.rir[0][i], np.float64) for i in range(2)]


def _from_direct(h: np.ndarray, source, mic) -> np.ndarray:
    """Drop the propagation delay before the direct path (keep 2 ms), so a convolved
    signal stays aligned with its voice-activity labels, and scale the direct path to 1."""
    d = float(np.linalg.norm(np.subtract(source, mic)))
    k = max(0, int(d / C_SOUND * SR) - int(0.002 * SR))
    h = h[k:]
    return (h / max(np.max(np.abs(h[: int(0.01 * SR)])), 1e-9)).astype(np.float32)


def late_tail(rt60: float, volume: float, distance: float, e_direct: float,
              rng: np.random.Generator, length_rt: float = 1.2) -> np.ndarray:
    """Diffuse reverberation from the direct sound on: noise whose energy decays 60 dB
    in ``rt60`` seconds (high frequencies a little faster), carrying the reverberant
    energy that the critical distance r_c = 0.057·sqrt(V/RT60) gives relative to a direct
    path of energy ``e_direct`` (direct-to-reverberant ratio (r_c/r)²)."""
    from scipy.signal import lfilter

    t = np.arange(int(length_rt * rt60 * SR)) / SR
    rc = 0.057 * np.sqrt(volume / rt60)
    e_rev = e_direct * (distance / rc) ** 2
    density = e_rev * (13.816 / rt60) / SR  # energy per sample at t = 0
    lp = 0.3 + 0.5 * min(1.0, rt60)  # one-pole smoothing: duller as the room is more live
    tail = lfilter([1 - lp], [1, -lp], rng.standard_normal(len(t))) * np.sqrt((1 + lp) / (1 - lp))
    return tail * np.sqrt(density) * np.exp(-6.908 * t / rt60)


def train_rir(room: Room, rng: np.random.Generator, order: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """(talker → mic, other source → mic) responses for training, direct path at 1: the
    image-source response up to ``order``, cross-faded into :func:`late_tail` around the
    time by which images of that order along the shortest wall-to-wall axis arrive."""
    out = []
    volume = float(np.prod(room.dims))
    t_mix = order * min(room.dims) / C_SOUND
    for h, src in zip(_shoebox(room, order), (room.talker, room.other)):
        d = float(np.linalg.norm(np.subtract(src, room.mic)))
        arrive = int(d / C_SOUND * SR)
        e_direct = float(np.sum(h[max(0, arrive - 48) : arrive + 48] ** 2))
        tail = late_tail(room.rt60, volume, d, e_direct, rng)
        full = np.zeros(max(len(h), arrive + len(tail)))
        t = (np.arange(len(full)) - arrive) / SR
        fade = np.clip((t - 0.6 * t_mix) / (0.4 * t_mix), 0.0, 1.0)  # 0 → 1 over [0.6, 1]·t_mix
        full[: len(h)] = h * (1 - fade[: len(h)])
        full[arrive : arrive + len(tail)] += tail * fade[arrive : arrive + len(tail)]
        out.append(_from_direct(full, src, room.mic))
    return out[0], out[1]


def eval_rir(room: Room) -> tuple[np.ndarray, np.ndarray]:
    """(talker → mic, other → mic) by the full image-source method."""
    h = _shoebox(room, None)
    return _from_direct(h[0], room.talker, room.mic), _from_direct(h[1], room.other, room.mic)


def reverberate(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    from scipy.signal import fftconvolve

    return fftconvolve(x, h)[: len(x)].astype(np.float32)


# ---------------------------------------------------------------- noises
def _pink(n: int, rng: np.random.Generator, exponent: float = 1.0) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spec / f ** (exponent / 2), n)


def noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of a stationary-ish room noise, unit RMS."""
    t = np.arange(n) / SR
    if kind == "white":
        x = rng.standard_normal(n)
    elif kind == "pink":
        x = _pink(n, rng)
    elif kind == "fan":  # broadband, rolled off, with blade-pass tones
        x = _pink(n, rng, 1.6)
        f0 = rng.uniform(20, 120)
        for k in range(1, 4):
            x += rng.uniform(0.05, 0.4) * np.std(x) * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3))
    elif kind == "hum":  # mains hum and its harmonics over a little hiss
        f0 = 50.0 if rng.random() < 0.7 else 60.0
        x = 0.05 * rng.standard_normal(n)
        for k in range(1, 6):
            x += rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3))
    elif kind == "street":  # brown rumble, slowly swelling (traffic passing)
        x = _pink(n, rng, 2.0)
        swell = 1 + 0.8 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 6.3))
        x = x * swell + 0.1 * np.std(x) * _pink(n, rng)
    else:
        raise ValueError(f"noise kind {kind!r}: expected one of {NOISE_KINDS}")
    return (x / max(float(np.std(x)), 1e-12)).astype(np.float32)


def colour(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A cheap microphone: high-pass 50–250 Hz, low-pass 3.5–7.9 kHz, a ±6 dB peak."""
    from scipy.signal import butter, sosfilt

    hp = butter(2, rng.uniform(50, 250), "highpass", fs=SR, output="sos")
    lp = butter(2, rng.uniform(3500, 7900), "lowpass", fs=SR, output="sos")
    y = sosfilt(lp, sosfilt(hp, x))
    fc, gain = rng.uniform(300, 4000), 10 ** (rng.uniform(-6, 6) / 20)
    band = butter(1, [fc / 1.4, min(fc * 1.4, 7900)], "bandpass", fs=SR, output="sos")
    y = y + (gain - 1) * sosfilt(band, y)
    return y.astype(np.float32)


def mix_at(x: np.ndarray, other: np.ndarray, snr_db: float) -> np.ndarray:
    """``x`` plus ``other`` scaled to ``snr_db`` below it (power over the whole signal)."""
    px = float(np.mean(x**2)) + 1e-10
    po = float(np.mean(other**2)) + 1e-10
    return x + other * np.sqrt(px / po / 10 ** (snr_db / 10))


def loop_to(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of ``x`` from a random offset, looped."""
    if len(x) == 0:
        return np.zeros(n, np.float32)
    start = int(rng.integers(len(x)))
    reps = int(np.ceil((start + n) / len(x)))
    return np.tile(x, reps)[start : start + n]


# ---------------------------------------------------------------- scenes
@dataclass
class Scene:
    """How one augmented copy is heard.  ``render`` applies it to a (speech) signal."""

    room: Room | None = None
    noise_kind: str | None = None
    noise_snr_db: float = 30.0
    music: np.ndarray | None = None
    music_snr_db: float = 10.0
    babble: list[np.ndarray] = field(default_factory=list)
    babble_snr_db: float = 15.0
    colour: bool = False
    gain_db: float = 0.0

    def render(self, x: np.ndarray, rng: np.random.Generator, rirs=None) -> np.ndarray:
        """``rirs``: (talker, other) responses for ``room`` (made with :func:`train_rir` if
        not given).  The talker's voice and the other sources share one room."""
        n = len(x)
        h_t = h_o = None
        if self.room is not None:
            h_t, h_o = rirs if rirs is not None else train_rir(self.room, rng)
        y = reverberate(x, h_t) if h_t is not None else x.astype(np.float32)
        clean = y
        if self.music is not None:
            m = loop_to(self.music, n, rng)
            m = reverberate(m, h_o) if h_o is not None else m
            y = mix_at(y, m, self.music_snr_db) if np.any(clean) else m
        if self.babble:
            b = sum(loop_to(s, n, rng) for s in self.babble)
            b = reverberate(b, h_o) if h_o is not None else b
            y = mix_at(y, b, self.babble_snr_db)
        if self.noise_kind is not None:
            z = noise(self.noise_kind, n, rng)
            y = mix_at(y, z, self.noise_snr_db) if np.any(clean) else y + 0.1 * z * np.std(y)
        if self.colour:
            y = colour(y, rng)
        y = y * 10 ** (self.gain_db / 20)
        peak = float(np.max(np.abs(y))) if len(y) else 0.0
        if peak > 0.99:  # the ADC clips: scale down instead, as an AGC would
            y = y * (0.99 / peak)
        return y.astype(np.float32)


def random_scene(rng: np.random.Generator, music_bank: list[np.ndarray], babble_bank: list[np.ndarray],
                 p_room: float = 0.85, p_music: float = 0.3, p_babble: float = 0.15,
                 p_noise: float = 0.7) -> Scene:
    """A training scene: a room most of the time, often noise, sometimes music or babble."""
    s = Scene()
    if rng.random() < p_room:
        s.room = random_room(rng)
    if rng.random() < p_noise:
        s.noise_kind = str(rng.choice(NOISE_KINDS))
        s.noise_snr_db = float(rng.uniform(5, 30))
    if music_bank and rng.random() < p_music:
        s.music = music_bank[int(rng.integers(len(music_bank)))]
        s.music_snr_db = float(rng.uniform(0, 25))
    if babble_bank and rng.random() < p_babble:
        k = int(rng.integers(3, 7))
        s.babble = [babble_bank[int(i)] for i in rng.integers(len(babble_bank), size=k)]
        s.babble_snr_db = float(rng.uniform(5, 25))
    s.colour = bool(rng.random() < 0.5)
    s.gain_db = float(rng.uniform(-20, 6))
    return s
