"""FER-2013 readers (npz, Kaggle csv, train/test folders), label mapping, splits, targets."""

from __future__ import annotations

import numpy as np
import pytest
from face_helpers import fer, needs_fer

from edge.labels import VOCABULARY
from training.fer import (
    FER_NAMES,
    LABELS,
    TEST,
    TRAIN,
    VAL,
    FerError,
    ferplus_majority,
    ferplus_shares,
    load_fer,
    read_csv,
    read_folders,
)

pytestmark = needs_fer


def test_npz_splits_and_labels_are_the_fixed_ones():
    d = fer()
    assert d.pixels.shape == (35887, 48, 48) and d.pixels.dtype == np.uint8
    assert d.counts() == {"train": 28709, "val": 3589, "test": 3589}
    # FER order 0 Angry ... 6 Neutral maps into the shared vocabulary
    assert dict(zip(FER_NAMES, LABELS)) == {
        "Angry": "angry", "Disgust": "disgust", "Fear": "fearful", "Happy": "happy",
        "Sad": "sad", "Surprise": "surprised", "Neutral": "neutral"}
    assert set(LABELS) <= set(VOCABULARY)
    assert np.bincount(d.label[d.split == TRAIN], minlength=7).tolist() == [
        3995, 436, 4097, 7215, 4830, 3171, 4965]
    assert d.part(TEST).counts() == {"train": 0, "val": 0, "test": 3589}


def test_ferplus_shares_and_majority():
    d = fer()
    ok = ~np.isnan(d.ferplus).any(axis=1)
    assert (~ok).sum() >= 168  # unpaired rows (-1) and rows with no vote among the 7
    np.testing.assert_allclose(d.ferplus[ok].sum(axis=1), 1.0, atol=1e-5)
    votes = np.array([[0, 8, 2, 0, 0, 0, 0, 0, 0, 0],  # happiness → happy
                      [5, 0, 0, 0, 5, 0, 0, 0, 0, 0],  # tie → none
                      [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face → none
                      [1, 0, 0, 0, 0, 0, 0, 0, 9, 0],  # unknown wins → none
                      [-1] * 10], np.int16)
    s = ferplus_shares(votes)
    assert s[0].argmax() == LABELS.index("happy") and np.isnan(s[2]).all() and np.isnan(s[4]).all()
    assert ferplus_majority(s, votes).tolist() == [LABELS.index("happy"), -1, -1, -1, -1]
    # FER+ mostly agrees with the original labels where it gives one
    maj = ferplus_majority(d.ferplus, d.votes)
    keep = maj >= 0
    assert 0.6 < np.mean(maj[keep] == d.label[keep]) < 0.95


def test_kaggle_csv_layout(tmp_path):
    d = fer()
    idx = [0, 1, int(np.flatnonzero(d.split == VAL)[0]), int(np.flatnonzero(d.split == TEST)[0])]
    usage = {TRAIN: "Training", VAL: "PublicTest", TEST: "PrivateTest"}
    path = tmp_path / "fer2013.csv"
    lines = ["emotion,pixels,Usage"] + [
        f"{d.label[i]},{' '.join(map(str, d.pixels[i].ravel()))},{usage[int(d.split[i])]}" for i in idx]
    path.write_text("\n".join(lines) + "\n")
    c = load_fer(path)
    np.testing.assert_array_equal(c.pixels, d.pixels[idx])
    np.testing.assert_array_equal(c.label, d.label[idx])
    np.testing.assert_array_equal(c.split, d.split[idx])
    path.write_text("emotion,pixels,Usage\n3,1 2 3,Training\n")
    with pytest.raises(FerError, match=r"fer2013.csv:2: expected 2304 pixels"):
        read_csv(path)
    path.write_text("a,b\n1,2\n")
    with pytest.raises(FerError, match="expected columns"):
        read_csv(path)


def test_folder_layout(tmp_path):
    import cv2

    d = fer()
    written = []
    for part, split in (("train", TRAIN), ("test", TEST)):
        for cls in range(7):
            for i in np.flatnonzero((d.split == split) & (d.label == cls))[:3]:
                name = FER_NAMES[cls].lower()  # Kaggle's folder names: angry ... surprise
                folder = tmp_path / part / name
                folder.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / f"im{i}.jpg"), d.pixels[i], [cv2.IMWRITE_JPEG_QUALITY, 100])
                written.append((part, cls))
    f = load_fer(tmp_path)
    assert len(f) == len(written) == 42
    assert np.sum(f.split == TEST) == 21 and np.sum(f.split != TEST) == 21
    assert sorted(np.bincount(f.label).tolist()) == [6] * 7
    assert f.pixels.shape[1:] == (48, 48)
    (tmp_path / "train" / "bored").mkdir()
    with pytest.raises(FerError, match="bored.*unknown label folder"):
        read_folders(tmp_path)


def test_missing_or_wrong_paths(tmp_path):
    with pytest.raises(FerError, match="train/<label>/ and test/<label>/"):
        load_fer(tmp_path)
    with pytest.raises(FerError, match="file not found"):
        load_fer(tmp_path / "nope.npz")
    (tmp_path / "x.npz").write_bytes(b"not an npz")
    with pytest.raises(FerError, match="not a FER-2013 npz"):
        load_fer(tmp_path / "x.npz")
