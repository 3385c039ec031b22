"""Keras → full-integer int8 TFLite, calibrated on representative inputs."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np

log = logging.getLogger(__name__)


def to_int8_tflite(model, representative: Iterable[np.ndarray]) -> bytes:
    """Quantise every tensor (inputs and outputs too) to int8.

    ``representative`` yields single float inputs (1, ...) drawn from training data.
    """
    import tensorflow as tf

    reps = [np.asarray(r, np.float32) for r in representative]

    def gen():
        for r in reps:
            yield [r]

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = gen
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        return conv.convert()


def keras_predict(model, batch: int = 256):
    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(np.asarray(x, np.float32), batch_size=batch, verbose=0))

    return predict
