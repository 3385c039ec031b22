"""Compact Keras models built from int8-friendly ops (Conv2D, BN, ReLU, pooling, Dense)."""

from __future__ import annotations


def speech_cnn(frames: int, ceps: int, n_classes: int, widths=(24, 48, 96, 128), dropout=0.3):
    """A small 2-D CNN over (time, cepstrum). ~160k parameters with the default widths."""
    import keras
    from keras import layers

    inp = keras.Input((frames, ceps), name="mfcc")
    x = layers.Reshape((frames, ceps, 1))(inp)
    for i, w in enumerate(widths):
        x = layers.Conv2D(w, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
        if i >= 1:
            x = layers.Dropout(0.1 * i, name=f"drop{i}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="drop_head")(x)
    out = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="speech_cnn")
