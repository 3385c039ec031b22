"""Weight averaging (SWA) shared by the speech and face training: running mean of
weights, then BatchNorm statistics re-estimated for the averaged weights."""

from __future__ import annotations

import numpy as np


class WeightAverage:
    """Stochastic weight averaging: the running mean of the weights it is given."""

    def __init__(self) -> None:
        self.mean: list[np.ndarray] | None = None
        self.count = 0

    def add(self, weights: list[np.ndarray]) -> None:
        self.count += 1
        if self.mean is None:
            self.mean = [np.array(w, np.float64) for w in weights]
        else:
            for m, w in zip(self.mean, weights):
                m += (w - m) / self.count

    def weights(self) -> list[np.ndarray]:
        return [m.astype(np.float32) for m in self.mean]


def refresh_batchnorm(model, x: np.ndarray, batch: int = 256, momentum: float = 0.9) -> None:
    """Re-estimate BatchNorm statistics for averaged weights: forward passes in training
    mode over ``x`` (the moving averages follow the batches; no weight changes). The
    layers' momentum is lowered meanwhile so the old statistics are forgotten."""
    bns = [layer for layer in model.layers if hasattr(layer, "moving_mean")]
    saved = [layer.momentum for layer in bns]
    for layer in bns:
        layer.momentum = momentum
    try:
        for _ in range(2):
            for i in range(0, len(x) - batch + 1, batch):
                model(x[i : i + batch], training=True)
    finally:
        for layer, m in zip(bns, saved):
            layer.momentum = m
