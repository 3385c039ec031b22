"""Speech corpora readers and the fixed speaker-independent splits.

Every corpus maps into the shared vocabulary (edge.labels.VOCABULARY). Splits are
those fixed in ../shared/data/README.md; validation is split off by speaker too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edge.audio.sources import AUDIO_SUFFIXES
from edge.labels import VOCABULARY

RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
EMODB_EMOTIONS = {"W": "angry", "E": "disgust", "A": "fearful", "F": "happy", "T": "sad", "N": "neutral"}
EMODB_FOLDERS = {
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happiness": "happy",
    "sadness": "sad",
    "neutral": "neutral",
}

# Fixed by ../shared/data/README.md: test speakers.  Validation speakers are ours,
# taken from the train side only (balanced by sex).
RAVDESS_TEST = frozenset(range(19, 25))
RAVDESS_VAL = frozenset({15, 16, 17, 18})
EMODB_TEST = frozenset({"15", "16"})
EMODB_VAL = frozenset({"12", "14"})

_RAVDESS_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_EMODB_RE = re.compile(r"^(\d\d)([a-z]\d\d)([WLEAFTN])([a-z]?)$")


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    speaker: str
    corpus: str


class DatasetError(ValueError):
    pass


def read_ravdess(root: Path) -> list[Clip]:
    """RAVDESS speech: ``Actor_NN/03-01-EE-II-SS-RR-AA.(wav|flac)``."""
    root = Path(root)
    clips = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        m = _RAVDESS_RE.match(path.stem)
        if not m:
            raise DatasetError(f"{path}: not a RAVDESS name (03-01-EE-II-SS-RR-AA)")
        modality, channel, emo, *_rest, actor = m.groups()
        if emo not in RAVDESS_EMOTIONS:
            raise DatasetError(f"{path}: unknown RAVDESS emotion code {emo!r}")
        clips.append(Clip(path, RAVDESS_EMOTIONS[emo], f"ravdess-{actor}", "ravdess"))
    if not clips:
        raise DatasetError(f"{root}: no RAVDESS audio files found")
    return clips


def read_emodb(root: Path) -> list[Clip]:
    """EmoDB: ``SSTTTEv`` names, speaker SS and emotion letter E (boredom 'L' skipped)."""
    root = Path(root)
    clips = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        m = _EMODB_RE.match(path.stem)
        if not m:
            raise DatasetError(f"{path}: not an EmoDB name (SSTTTEv)")
        speaker, _text, emo, _ver = m.groups()
        if emo == "L":  # boredom: not in the shared vocabulary
            continue
        clips.append(Clip(path, EMODB_EMOTIONS[emo], f"emodb-{speaker}", "emodb"))
    if not clips:
        raise DatasetError(f"{root}: no EmoDB audio files found")
    return clips


def read_label_folders(root: Path) -> list[Clip]:
    """Users' own data: ``root/<label>/*.wav|flac`` (speaker: a ``speaker_`` prefix or 'user')."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    clips = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name not in VOCABULARY:
            raise DatasetError(
                f"{folder}: unknown label folder {folder.name!r}; expected one of {list(VOCABULARY)}"
            )
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in AUDIO_SUFFIXES:
                speaker = path.stem.split("_", 1)[0] if "_" in path.stem else "user"
                clips.append(Clip(path, folder.name, f"user-{speaker}", "folder"))
    if not clips:
        raise DatasetError(f"{root}: no .wav/.flac files under <label>/ folders")
    return clips


def split_of(clip: Clip, ravdess_val: frozenset[int] = RAVDESS_VAL) -> str:
    """'train', 'val' or 'test' under the fixed speaker-independent splits.

    ``ravdess_val`` moves the RAVDESS validation group among actors 1-18 (for k-fold
    comparisons); the test actors are never part of it."""
    corpus, spk = clip.speaker.split("-", 1)
    if corpus == "ravdess":
        actor = int(spk)
        if actor in RAVDESS_TEST:
            return "test"
        return "val" if actor in ravdess_val else "train"
    if corpus == "emodb":
        if spk in EMODB_TEST:
            return "test"
        return "val" if spk in EMODB_VAL else "train"
    return "train"


def check_val_actors(actors: Iterable[int]) -> frozenset[int]:
    """A RAVDESS validation group: actors from 1-18 only (19-24 are the test speakers)."""
    group = frozenset(int(a) for a in actors)
    bad = sorted(a for a in group if not 1 <= a <= 18)
    if bad or not group:
        raise ValueError(f"RAVDESS validation actors must be among 1-18 (19-24 are the test "
                         f"speakers); got {sorted(group) or 'none'}")
    return group


def by_split(clips: Iterable[Clip], ravdess_val: frozenset[int] = RAVDESS_VAL
             ) -> dict[str, list[Clip]]:
    out: dict[str, list[Clip]] = {"train": [], "val": [], "test": []}
    for c in clips:
        out[split_of(c, ravdess_val)].append(c)
    return out


def first_ravdess_actors(clips: Iterable[Clip], n: int) -> list[Clip]:
    """``clips`` with only the ``n`` lowest-numbered RAVDESS actors among them (the other
    corpora untouched): a learning curve over the number of training speakers."""
    clips = list(clips)
    actors = sorted({c.speaker for c in clips if c.corpus == "ravdess"})
    if not 1 <= n <= len(actors):
        raise ValueError(f"expected 1 to {len(actors)} RAVDESS training actors, got {n}")
    keep = set(actors[:n])
    return [c for c in clips if c.corpus != "ravdess" or c.speaker in keep]


def load_corpora(data_dir: Path, corpora: Iterable[str]) -> list[Clip]:
    data_dir = Path(data_dir)
    clips: list[Clip] = []
    for name in corpora:
        if name == "ravdess":
            clips += read_ravdess(data_dir / "speech" / "ravdess")
        elif name == "emodb":
            clips += read_emodb(data_dir / "speech" / "emodb")
        else:
            clips += read_label_folders(Path(name))
    return clips
