"""Speech corpora readers and the fixed speaker-independent splits.

Every corpus maps into the shared vocabulary (edge.labels.VOCABULARY). Splits are
those fixed in ../shared/data/README.md; validation is split off by speaker too.
"""

from __future__ import annotations

import csv
import hashlib
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

# The newer corpora (../shared/data/NEW_CORPORA.md) leave the split to us.  Fixed here,
# before any run, by a rule on the speaker id (docs/models/splits.md says the same):
# ASED speakers 01-65: test = id % 5 == 0 (13 speakers, 4 of them female), val = id % 5 == 1.
ASED_TEST = frozenset(f"{i:02d}" for i in range(1, 66) if i % 5 == 0)
ASED_VAL = frozenset(f"{i:02d}" for i in range(1, 66) if i % 5 == 1)
# nEMO's 9 speakers: one woman and one man for test, another pair for validation.
NEMO_TEST = frozenset({"KD0", "SM0"})
NEMO_VAL = frozenset({"EB0", "TP0"})
# BAVED speaker ids 0-56, 100-103: test = id % 5 == 0, val = id % 5 == 1.
BAVED_TEST_MOD, BAVED_VAL_MOD = 0, 1
# 4Q music, by artist: the first 8 hex digits of sha1(artist, stripped and lower-cased)
# modulo 10: 0-1 test, 2 validation, 3-9 train.
FOURQ_TEST_BUCKETS, FOURQ_VAL_BUCKETS = frozenset({0, 1}), frozenset({2})

ASED_EMOTIONS = {"n1": "neutral", "f2": "fearful", "h3": "happy", "s4": "sad", "a5": "angry"}
NEMO_FOLDERS = ("neutral", "sad", "angry", "happy", "fearful", "surprised")
# BAVED's arousal levels (0 low, 1 neutral, 2 high) as an arousal target in [-1, 1].
BAVED_LEVELS = {"0": -1.0, "1": 0.0, "2": 1.0}
BAVED_FOLDERS = {"low": "0", "neutral": "1", "high": "2"}
QUADRANTS = ("Q1", "Q2", "Q3", "Q4")

_RAVDESS_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_EMODB_RE = re.compile(r"^(\d\d)([a-z]\d\d)([WLEAFTN])([a-z]?)$")
_ASED_RE = re.compile(r"^([nfhsa][1-5])-(\d\d)-(\d\d)-(\d\d)-(\d\d)$", re.IGNORECASE)
_NEMO_RE = re.compile(r"^([A-Z]{2}\d)_([a-z]+)_(\d+)$")
_BAVED_RE = re.compile(r"^(\d+)-([mf])-(\d+)-(\d)-([012])-(\d+)$")


@dataclass(frozen=True)
class Clip:
    """One labelled speech clip.  ``label`` is a VOCABULARY emotion, or None for a corpus
    that only gives an arousal level (BAVED: ``arousal`` in [-1, 1])."""

    path: Path
    label: str | None
    speaker: str
    corpus: str
    arousal: float | None = None


@dataclass(frozen=True)
class MusicClip:
    """One 4Q music clip: its Russell quadrant (Q1..Q4) and artist."""

    path: Path
    quadrant: str
    artist: str
    title: str


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


def _audio_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)


def read_ased(root: Path) -> list[Clip]:
    """ASED (Amharic): ``<emotion>/xn-yy-aa-gg-bb.opus``, emotion from xn, speaker bb."""
    clips = []
    for path in _audio_files(root):
        m = _ASED_RE.match(path.stem)
        if not m:
            raise DatasetError(f"{path}: not an ASED name (xn-yy-aa-gg-bb, e.g. h3-04-01-02-51)")
        code, *_rest, speaker = m.groups()
        emo = ASED_EMOTIONS.get(code.lower())
        if emo is None or (path.parent.name in VOCABULARY and path.parent.name != emo):
            raise DatasetError(f"{path}: emotion code {code!r} disagrees with its folder "
                               f"{path.parent.name!r} (expected one of {ASED_EMOTIONS})")
        clips.append(Clip(path, emo, f"ased-{speaker}", "ased"))
    if not clips:
        raise DatasetError(f"{root}: no ASED audio files found")
    return clips


def read_nemo(root: Path) -> list[Clip]:
    """nEMO (Polish): ``<emotion>/SPK_emotion_n.opus``; the folder is the label."""
    clips = []
    for path in _audio_files(root):
        m = _NEMO_RE.match(path.stem)
        if not m:
            raise DatasetError(f"{path}: not an nEMO name (SPK_emotion_N, e.g. KD0_anger_12)")
        if path.parent.name not in NEMO_FOLDERS:
            raise DatasetError(f"{path}: unknown nEMO label folder {path.parent.name!r}; "
                               f"expected one of {list(NEMO_FOLDERS)}")
        clips.append(Clip(path, path.parent.name, f"nemo-{m.group(1)}", "nemo"))
    if not clips:
        raise DatasetError(f"{root}: no nEMO audio files found")
    return clips


def read_baved(root: Path) -> list[Clip]:
    """BAVED (Arabic words): ``<level folder>/speaker-gender-age-word-level-record.opus``;
    no emotion label, an arousal target from the level instead."""
    clips = []
    for path in _audio_files(root):
        m = _BAVED_RE.match(path.stem)
        if not m:
            raise DatasetError(f"{path}: not a BAVED name (speaker-gender-age-word-level-record)")
        speaker, _g, _age, _word, level, _rec = m.groups()
        folder = BAVED_FOLDERS.get(path.parent.name)
        if folder is not None and folder != level:
            raise DatasetError(f"{path}: level {level} disagrees with its folder {path.parent.name!r}")
        clips.append(Clip(path, None, f"baved-{int(speaker)}", "baved", BAVED_LEVELS[level]))
    if not clips:
        raise DatasetError(f"{root}: no BAVED audio files found")
    return clips


def fourq_split(artist: str) -> str:
    """'train', 'val' or 'test' for a 4Q artist (the fixed rule above)."""
    h = int(hashlib.sha1(artist.strip().lower().encode("utf-8")).hexdigest()[:8], 16) % 10
    return "test" if h in FOURQ_TEST_BUCKETS else "val" if h in FOURQ_VAL_BUCKETS else "train"


def read_4q(root: Path) -> list[MusicClip]:
    """4Q music clips listed in ``4q_metadata.csv`` (file, quadrant, artist, title)."""
    root = Path(root)
    meta = root / "4q_metadata.csv"
    if not meta.is_file():
        raise DatasetError(f"{meta}: 4Q metadata not found")
    clips = []
    with meta.open(newline="", encoding="utf-8") as fh:
        rows = csv.DictReader(fh)
        missing = {"file", "quadrant", "artist", "title"} - set(rows.fieldnames or [])
        if missing:
            raise DatasetError(f"{meta}: missing columns {sorted(missing)}")
        for i, row in enumerate(rows, start=2):
            if row["quadrant"] not in QUADRANTS:
                raise DatasetError(f"{meta}:{i}: quadrant {row['quadrant']!r}, expected one of {QUADRANTS}")
            path = root / row["file"]
            if not path.is_file():
                raise DatasetError(f"{meta}:{i}: {path} not found")
            clips.append(MusicClip(path, row["quadrant"], row["artist"], row["title"]))
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
        raise DatasetError(f"{root}: no audio files ({', '.join(AUDIO_SUFFIXES)}) under <label>/ folders")
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
    if corpus == "ased":
        return "test" if spk in ASED_TEST else "val" if spk in ASED_VAL else "train"
    if corpus == "nemo":
        return "test" if spk in NEMO_TEST else "val" if spk in NEMO_VAL else "train"
    if corpus == "baved":
        mod = int(spk) % 5
        return "test" if mod == BAVED_TEST_MOD else "val" if mod == BAVED_VAL_MOD else "train"
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
        elif name in READERS:
            clips += READERS[name](data_dir / "speech" / name)
        else:
            clips += read_label_folders(Path(name))
    return clips


READERS = {"ased": read_ased, "nemo": read_nemo, "baved": read_baved}
