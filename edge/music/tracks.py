"""The catalogue's value types, without SQLite: what the pure ranking code
(:mod:`edge.music.recommend`) and the command schema need (re-exported by
:mod:`edge.music.catalog`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

FEEDBACK_KINDS: tuple[str, ...] = ("like", "skip", "dislike")


class CatalogError(ValueError):
    """A catalogue problem the user can fix; the message names file, line and column."""


@dataclass(frozen=True)
class Track:
    """One playable track placed in arousal/valence space ([-1, 1]²)."""

    uri: str
    title: str
    artist: str
    valence: float
    arousal: float
    duration_s: float | None = None
    genre: str | None = None


@dataclass(frozen=True)
class CatalogSnapshot:
    """Track positions as arrays for vectorised ranking, taken at one ``version``.

    ``va`` is (n, 2) float64 (valence, arousal), and ``valence``/``arousal`` the same
    as contiguous columns (faster to scan); ``artist_ids`` (n,) int64 numbers the
    artists (case-folded); ``feedback`` (n,) float64 sums feedback values per track.
    """

    version: int
    tracks: tuple[Track, ...]
    va: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    artist_ids: np.ndarray
    feedback: np.ndarray
    index: Mapping[str, int]

    def __len__(self) -> int:
        return len(self.tracks)

    def subset(self, keep: np.ndarray) -> CatalogSnapshot:
        """The tracks where the boolean mask ``keep`` is true (same version, artists
        numbered as before; the feedback per track kept)."""
        idx = np.flatnonzero(keep)
        tracks = tuple(self.tracks[i] for i in idx)
        va = self.va[idx]
        return CatalogSnapshot(self.version, tracks, va, np.ascontiguousarray(va[:, 0]),
                               np.ascontiguousarray(va[:, 1]), self.artist_ids[idx],
                               self.feedback[idx], {t.uri: i for i, t in enumerate(tracks)})
