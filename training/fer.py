"""FER-2013 readers: the shared npz, Kaggle's ``fer2013.csv`` and ``train/``/``test/`` folders.

Every reader returns a :class:`FerData` with grayscale uint8 crops, labels as indices
into :data:`LABELS` (FER's 7 classes named in the shared vocabulary), the split of each
row (``TRAIN``, ``VAL``, ``TEST``) and, where known, the FER+ vote distribution.

Splits (``../shared/data/README.md``): FER ``Training`` → train, ``PublicTest`` →
validation and model selection, ``PrivateTest`` → the reported test figure only.
The folder layout (``train/<label>/*.jpg``, ``test/<label>/*.jpg``) merges Public and
Private test; there ``test/`` is the test split and validation is a fixed 10 % of
``train/`` (a ``val/`` or ``validation/`` folder is used instead when present).
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.labels import check_labels
from edge.vision.sources import IMAGE_SUFFIXES

# FER-2013 class order (0 Angry … 6 Neutral), named in the shared vocabulary.
FER_NAMES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
LABELS = ("angry", "disgust", "fearful", "happy", "sad", "surprised", "neutral")
TRAIN, VAL, TEST = 0, 1, 2
USAGE = {"Training": TRAIN, "PublicTest": VAL, "PrivateTest": TEST}
SPLIT_NAMES = ("train", "val", "test")
# FER+ columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt,
# unknown, NF.  Column of each of LABELS:
FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                   "contempt", "unknown", "NF")
FERPLUS_TO_LABELS = (4, 5, 6, 1, 3, 2, 0)
# Folder names people use for each class (Kaggle "msambare/fer2013" and the vocabulary).
FOLDER_ALIASES = {
    "angry": 0, "anger": 0, "disgust": 1, "disgusted": 1, "fear": 2, "fearful": 2,
    "happy": 3, "happiness": 3, "sad": 4, "sadness": 4, "surprise": 5, "surprised": 5,
    "neutral": 6,
}

check_labels(LABELS, "training.fer.LABELS")


class FerError(ValueError):
    """A FER file or folder that cannot be read; the message says which and why."""


@dataclass
class FerData:
    pixels: np.ndarray  # uint8 (N, 48, 48)
    label: np.ndarray  # int64 (N,) index into LABELS
    split: np.ndarray  # int64 (N,) TRAIN / VAL / TEST
    ferplus: np.ndarray | None = None  # float32 (N, 7) vote shares over LABELS; NaN row: none
    source: str = ""
    votes: np.ndarray | None = None  # raw FER+ votes (N, 10) where the source has them

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def subset(self, idx) -> FerData:
        fp = None if self.ferplus is None else self.ferplus[idx]
        votes = None if self.votes is None else self.votes[idx]
        return FerData(self.pixels[idx], self.label[idx], self.split[idx], fp, self.source, votes)

    def part(self, split: int) -> FerData:
        return self.subset(np.flatnonzero(self.split == split))

    def counts(self) -> dict:
        return {SPLIT_NAMES[s]: int(np.sum(self.split == s)) for s in (TRAIN, VAL, TEST)}


def ferplus_shares(votes: np.ndarray) -> np.ndarray:
    """FER+ votes (N, 10) → vote shares over LABELS (N, 7); NaN rows where unusable
    (unpaired rows, -1; or no vote for any of the 7 classes)."""
    v = np.asarray(votes, np.float32)
    seven = v[:, list(FERPLUS_TO_LABELS)]
    total = seven.sum(axis=1, keepdims=True)
    bad = (v < 0).any(axis=1, keepdims=True) | (total <= 0)
    out = np.divide(seven, total, out=np.zeros_like(seven), where=total > 0)
    return np.where(bad, np.nan, out).astype(np.float32)


def ferplus_majority(shares: np.ndarray, votes: np.ndarray | None = None) -> np.ndarray:
    """FER+ majority label per row (index into LABELS), -1 where there is none: no usable
    votes, a tie, or (given the raw votes) contempt/unknown/not-a-face outvoting all 7."""
    lab = np.full(shares.shape[0], -1, np.int64)
    ok = ~np.isnan(shares).any(axis=1)
    s = np.nan_to_num(shares)
    top = s.max(axis=1)
    unique = (s == top[:, None]).sum(axis=1) == 1
    keep = ok & unique
    if votes is not None:
        v = np.asarray(votes, np.float32)
        seven_max = v[:, list(FERPLUS_TO_LABELS)].max(axis=1)
        keep &= seven_max > v[:, 7:].max(axis=1)
    lab[keep] = s[keep].argmax(axis=1)
    return lab


def read_npz(path: Path) -> FerData:
    """The shared ``fer2013.npz`` (pixels, label, usage, ferplus_votes)."""
    path = Path(path)
    try:
        d = np.load(path)
        pixels, label, usage = d["pixels"], d["label"], d["usage"]
        votes = d["ferplus_votes"] if "ferplus_votes" in d.files else None
    except FileNotFoundError:
        raise FerError(f"{path}: file not found") from None
    except (OSError, ValueError, KeyError) as exc:
        raise FerError(f"{path}: not a FER-2013 npz (pixels, label, usage): {exc}") from exc
    if pixels.ndim != 3 or pixels.shape[1:] != (48, 48) or len(label) != len(pixels):
        raise FerError(f"{path}: expected pixels (N, 48, 48) and N labels, got {pixels.shape}")
    if "label_names" in d.files and tuple(str(x) for x in d["label_names"]) != FER_NAMES:
        raise FerError(f"{path}: label_names {list(d['label_names'])}, expected {list(FER_NAMES)}")
    if label.max() > 6 or usage.max() > 2:
        raise FerError(f"{path}: label must be 0..6 and usage 0..2")
    return FerData(pixels.astype(np.uint8), label.astype(np.int64), usage.astype(np.int64),
                   None if votes is None else ferplus_shares(votes), str(path),
                   None if votes is None else np.asarray(votes, np.int16))


def read_csv(path: Path) -> FerData:
    """Kaggle's ``fer2013.csv``: columns emotion, pixels (2304 numbers), Usage."""
    path = Path(path)
    if not path.is_file():
        raise FerError(f"{path}: file not found")
    pixels, labels, usage = [], [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"emotion", "pixels", "Usage"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise FerError(f"{path}: expected columns {sorted(need)}, got {reader.fieldnames}")
        for i, row in enumerate(reader, start=2):
            try:
                px = np.array(row["pixels"].split(), dtype=np.int64)
                lab = int(row["emotion"])
                use = USAGE[row["Usage"].strip()]
            except (ValueError, KeyError, AttributeError) as exc:
                raise FerError(f"{path}:{i}: bad row ({exc!r})") from None
            if px.size != 48 * 48 or px.min() < 0 or px.max() > 255 or not 0 <= lab <= 6:
                raise FerError(f"{path}:{i}: expected 2304 pixels 0..255 and emotion 0..6")
            pixels.append(px.astype(np.uint8).reshape(48, 48))
            labels.append(lab)
            usage.append(use)
    return _collected(pixels, labels, usage, path, "no rows")


def _collected(pixels: list, labels: list, split: list, source: Path, empty: str) -> FerData:
    if not labels:
        raise FerError(f"{source}: {empty}")
    return FerData(np.stack(pixels), np.asarray(labels, np.int64), np.asarray(split, np.int64),
                   None, str(source))


def _stable_fraction(name: str) -> float:
    return (zlib.crc32(name.encode("utf-8")) & 0xFFFFFFFF) / 2**32


def read_folders(root: Path, val_fraction: float = 0.1) -> FerData:
    """``root/train/<label>/*.jpg`` and ``root/test/<label>/*.jpg`` (+ optional ``val/``)."""
    from edge.vision.faces import resize_crop
    from edge.vision.sources import ImageError, load_image

    root = Path(root)
    parts = {"train": TRAIN, "val": VAL, "validation": VAL, "test": TEST}
    found = {name: root / name for name in parts if (root / name).is_dir()}
    if "train" not in found or "test" not in found:
        raise FerError(f"{root}: expected folders train/<label>/ and test/<label>/")
    pixels, labels, split = [], [], []
    has_val = "val" in found or "validation" in found
    for name, folder in sorted(found.items()):
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            key = sub.name.lower()
            if key not in FOLDER_ALIASES:
                raise FerError(f"{sub}: unknown label folder {sub.name!r}; expected one of "
                               f"{sorted(FOLDER_ALIASES)}")
            for img in sorted(sub.iterdir()):
                if img.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                try:
                    gray = load_image(img, gray=True)
                except ImageError as exc:
                    raise FerError(str(exc)) from None
                if gray.shape != (48, 48):
                    gray = resize_crop(gray, 48)
                s = parts[name]
                if s == TRAIN and not has_val and _stable_fraction(f"{sub.name}/{img.name}") < val_fraction:
                    s = VAL
                pixels.append(gray)
                labels.append(FOLDER_ALIASES[key])
                split.append(s)
    return _collected(pixels, labels, split, root, "no images found under train/ and test/")


def load_fer(path: Path) -> FerData:
    """Read FER-2013 from an npz, a Kaggle csv, or a train/test folder tree.

    ``path`` may also be a data root holding ``face/fer2013.npz`` (``../shared/data``).
    """
    path = Path(path)
    if path.is_dir():
        if (path / "face" / "fer2013.npz").is_file():
            return read_npz(path / "face" / "fer2013.npz")
        if (path / "fer2013.npz").is_file():
            return read_npz(path / "fer2013.npz")
        if (path / "fer2013.csv").is_file():
            return read_csv(path / "fer2013.csv")
        return read_folders(path)
    if path.suffix == ".npz":
        return read_npz(path)
    if path.suffix == ".csv":
        return read_csv(path)
    raise FerError(f"{path}: expected fer2013.npz, fer2013.csv or a folder with train/ and test/")
