"""Classification metrics on label indices: accuracy, UAR, macro-F1, per class."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """Rows: true class; columns: predicted class; a prediction of -1 (no guess) is dropped
    from the columns but still counts as a miss in recall."""
    cm = np.zeros((n, n), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        if p >= 0:
            cm[t, p] += 1
    return cm


def summary(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    n = len(labels)
    cm = confusion(y_true, y_pred, n)
    support = np.bincount(y_true, minlength=n)
    tp = np.diag(cm).astype(float)
    predicted = cm.sum(axis=0).astype(float)
    recall = np.divide(tp, support, out=np.zeros(n), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros(n), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n),
                   where=(precision + recall) > 0)
    present = support > 0
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else 0.0,
        "uar": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "no_guess": int(np.sum(y_pred < 0)),
        "per_class": {
            labels[i]: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i in range(n)
        },
        "confusion": cm.tolist(),
        "labels": list(labels),
    }


def restricted_argmax(probs: np.ndarray, allowed: Sequence[int]) -> np.ndarray:
    """Argmax over a subset of classes (e.g. EmoDB's 6 of the 8 labels)."""
    allowed = np.asarray(allowed)
    return allowed[np.argmax(probs[:, allowed], axis=1)]
