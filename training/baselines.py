"""Classical baselines on pooled MFCC statistics, on the same split as the CNN."""

from __future__ import annotations

import numpy as np

from edge.audio import features as F
from edge.audio.vad import VadParams
from training.metrics import summary


def pooled_stats(x: np.ndarray, p: F.FeatureParams, vad: VadParams) -> np.ndarray:
    """Mean and std of each coefficient (and of its delta) over the clip's sounding frames."""
    f = F.mfcc(x, p)
    lv = F.frame_levels_db(f, p)
    keep = lv > vad.threshold_db
    if keep.sum() < 5:
        keep[:] = True
    f = f[keep]
    d = np.diff(f, axis=0) if len(f) > 1 else np.zeros_like(f)
    return np.concatenate([f.mean(0), f.std(0), d.mean(0), d.std(0)])


def run_baselines(train_x, train_y, test_sets: dict, labels, seed: int = 0) -> dict:
    """Fit LR / RF / SVM on train features; score each named test set {name: (X, y, allowed)}."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    models = {
        "logistic_regression": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, C=0.1, class_weight="balanced")
        ),
        "random_forest": RandomForestClassifier(
            n_estimators=300, class_weight="balanced", random_state=seed, n_jobs=-1
        ),
        "svm_rbf": make_pipeline(
            StandardScaler(), SVC(C=3.0, class_weight="balanced", random_state=seed)
        ),
    }
    out = {}
    for name, model in models.items():
        model.fit(train_x, train_y)
        out[name] = {}
        for set_name, (x, y, allowed) in test_sets.items():
            proba = np.full((len(x), len(labels)), -np.inf)
            scores = (model.predict_proba(x) if hasattr(model, "predict_proba")
                      else model.decision_function(x))  # SVC: one-vs-rest scores
            proba[:, model.classes_] = scores
            cols = np.asarray(allowed if allowed is not None else range(len(labels)))
            pred = cols[np.argmax(proba[:, cols], axis=1)]
            m = summary(y, pred, labels)
            out[name][set_name] = {k: m[k] for k in ("accuracy", "uar", "macro_f1", "n")}
    return out
