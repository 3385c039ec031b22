"""TensorFlow's CPU thread pools, set once per process."""

from __future__ import annotations

import logging

log = logging.getLogger("training.threads")


def set_threads(n: int) -> None:
    """Use ``n`` threads for TensorFlow's inter- and intra-op pools.

    TensorFlow fixes its pools when it first runs an op; a later call in the same process
    (a second training in one process, as ``training.kfold`` or a test suite does) keeps
    the pools it has and says so, instead of failing.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_inter_op_parallelism_threads(n)
        tf.config.threading.set_intra_op_parallelism_threads(n)
    except RuntimeError as e:  # "cannot be modified after initialization"
        log.warning("thread pools already set in this process (%s); --threads %d not applied",
                    e, n)
