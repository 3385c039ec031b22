"""training.music_kernel: the kernel model's Keras graph computes what it was fitted as,
and the adoption rule of docs/models/experiments.md is applied as written."""

from __future__ import annotations

import numpy as np
import pytest

from training.music_kernel import CAP, KernelLR, choose, kernel


def _data(n=240, d=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0)
    return x, y


def test_kernel_is_the_clipped_rbf():
    x, _ = _data(5, 3)
    c = x[:2] + 0.1
    g = 0.7
    want = np.exp(-np.minimum(g * ((x[:, None, :] - c[None]) ** 2).sum(-1), CAP))
    assert np.allclose(kernel(x, c, g), want)
    assert np.allclose(kernel(x, x, g).diagonal(), 1.0)


def test_keras_graph_equals_the_fitted_model():
    pytest.importorskip("keras")
    from training.music_kernel import build_keras

    x, y = _data()
    m = KernelLR(1.0, 1.0).fit(x[:160], x[:160], y[:160])
    assert np.mean(m.predict_proba(x[160:]).argmax(1) == y[160:]) > 0.6  # it learnt something
    pk = build_keras(m).predict(x[160:].astype(np.float32), verbose=0)
    assert np.allclose(pk, m.predict_proba(x[160:]), atol=1e-4)


def test_choose_applies_both_bars_and_ties():
    def r(cv, val, crops=0):
        return {"cv_acc": cv, "val_acc": val, "cfg": {"crops": crops}}

    # the best CV missing the val guard by one clip is not adopted (round 1's case)
    assert choose({"a": r(0.680, 37 / 63), "b": r(0.674, 0.62)}, 0.659, 0.619) is None
    assert choose({"a": r(0.680, 38 / 63), "b": r(0.674, 0.62)}, 0.659, 0.619) == "a"
    assert choose({"a": r(0.668, 0.70)}, 0.659, 0.619) is None  # under CV bar
    assert choose({"a": r(0.670, 0.60, 4), "b": r(0.670, 0.60, 0)}, 0.659, 0.619) == "b"
