"""Compact Keras models built from int8-friendly ops (Conv2D, BN, ReLU, pooling, Dense)."""

from __future__ import annotations


def speech_cnn(frames: int, ceps: int, n_classes: int, widths=(24, 48, 96, 128), dropout=0.3,
               bn_momentum: float = 0.9):
    """A small 2-D CNN over (time, cepstrum). ~160k parameters with the default widths.

    BatchNorm momentum 0.9 (not Keras' 0.99): with ~50 steps an epoch the slower moving
    averages lag the weights and skew inference-mode predictions towards a few classes.
    """
    import keras
    from keras import layers

    inp = keras.Input((frames, ceps), name="mfcc")
    x = layers.Reshape((frames, ceps, 1))(inp)
    for i, w in enumerate(widths):
        x = layers.Conv2D(w, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
        if i >= 1:
            x = layers.Dropout(0.1 * i, name=f"drop{i}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="drop_head")(x)
    out = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="speech_cnn")


def face_cnn(size: int = 48, n_classes: int = 7, widths=(64, 128, 256, 384), blocks=(1, 2, 2, 1),
             stem=(32,), dropout: float = 0.3, bn_momentum: float = 0.97):
    """A compact residual CNN of depthwise-separable blocks for 48×48 grayscale faces.

    Stem: ``stem`` 3×3 convolutions at full resolution.  Then one stage per width: a
    stride-2 entry (max-pool, 1×1 projection on the shortcut) followed by ``blocks``
    residual pairs of (depthwise 3×3 → pointwise 1×1 → BN → ReLU).  Only Conv2D,
    DepthwiseConv2D, BatchNormalization (folded at conversion), ReLU, Add, MaxPool,
    GlobalAveragePooling and Dense: all int8 builtins on ARM.
    """
    import keras
    from keras import layers

    def bn(name, last=False):
        # The last BN of each residual branch starts at zero ("zero-init residual"): every
        # block starts as the identity, so the deep stack trains from the first step.
        return layers.BatchNormalization(momentum=bn_momentum, name=name,
                                         gamma_initializer="zeros" if last else "ones")

    def sep(x, w, name, last=False):
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
        x = bn(f"{name}_dwbn")(x)
        x = layers.ReLU(name=f"{name}_dwrelu")(x)
        x = layers.Conv2D(w, 1, use_bias=False, name=f"{name}_pw")(x)
        return bn(f"{name}_pwbn", last)(x)

    inp = keras.Input((size, size, 1), name="face")
    x = inp
    for i, w in enumerate(stem):
        x = layers.Conv2D(w, 3, padding="same", use_bias=False, name=f"stem{i}")(x)
        x = bn(f"stem{i}_bn")(x)
        x = layers.ReLU(name=f"stem{i}_relu")(x)
    for s, (w, n) in enumerate(zip(widths, blocks)):
        short = layers.Conv2D(w, 1, strides=2, use_bias=False, name=f"s{s}_proj")(x)
        short = bn(f"s{s}_projbn")(short)
        y = sep(x, w, f"s{s}_e0")
        y = layers.ReLU(name=f"s{s}_e0relu")(y)
        y = sep(y, w, f"s{s}_e1", last=True)
        y = layers.MaxPooling2D(3, strides=2, padding="same", name=f"s{s}_pool")(y)
        x = layers.Add(name=f"s{s}_add")([short, y])
        x = layers.ReLU(name=f"s{s}_relu")(x)
        for b in range(n - 1):
            y = sep(x, w, f"s{s}_b{b}a")
            y = layers.ReLU(name=f"s{s}_b{b}arelu")(y)
            y = sep(y, w, f"s{s}_b{b}b", last=True)
            x = layers.Add(name=f"s{s}_b{b}add")([x, y])
            x = layers.ReLU(name=f"s{s}_b{b}relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="drop_head")(x)
    out = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="face_cnn")


def speech_tcn(frames: int, ceps: int, n_classes: int, widths=(64, 96, 128, 128), kernel: int = 5,
               dropout: float = 0.3, bn_momentum: float = 0.9, separable: bool = False):
    """A temporal CNN: 1-D convolutions over time with the cepstral coefficients as channels.

    Cepstral coefficients are not a spatial axis (neighbours are not alike), so unlike a
    2-D CNN this treats each coefficient as its own channel. The input BatchNorm learns a
    per-coefficient standardisation (folded into the int8 model). Mean and max pooling
    over time feed the classifier. ~190k parameters with the default widths.

    ``separable``: every convolution after the first is time-channel separable (a depthwise
    convolution over time, then a pointwise one across channels), as in the small speech
    networks QuartzNet and MatchboxNet: about a fifth of the weights per layer, so wider
    layers fit the same int8 size.
    """
    import keras
    from keras import layers

    inp = keras.Input((frames, ceps), name="mfcc")
    x = layers.BatchNormalization(momentum=bn_momentum, name="in_bn")(inp)
    for i, w in enumerate(widths):
        if separable and i > 0:
            x = layers.SeparableConv1D(w, kernel, padding="same", use_bias=False, name=f"conv{i}")(x)
        else:
            x = layers.Conv1D(w, kernel, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if i < len(widths) - 1:
            x = layers.MaxPooling1D(2, name=f"pool{i}")(x)
        x = layers.Dropout(0.1 * min(i, 2), name=f"drop{i}")(x)
    x = layers.Concatenate(name="pool_cat")(
        [layers.GlobalAveragePooling1D(name="gap")(x), layers.GlobalMaxPooling1D(name="gmp")(x)]
    )
    x = layers.Dropout(dropout, name="drop_head")(x)
    out = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="speech_tcn")


def with_speaker_adversary(model, n_speakers: int, feature_layer: str = "pool_cat",
                           hidden: int = 64):
    """A training-only twin of ``model`` with a second head that names the speaker from the
    pooled features through a gradient-reversal layer (domain-adversarial training, Ganin
    & Lempitsky 2015): the head learns to tell the training speakers apart while the
    shared layers are pushed, with the reversal's strength, towards features that it
    cannot.  ``model`` itself (what is saved and converted) is unchanged: the head and the
    reversal exist only in the returned ``(trainer, reversal)``; set the strength with
    ``reversal.strength.assign(value)``."""
    import keras
    from keras import layers, ops

    class GradientReversal(layers.Layer):
        """Identity forward; gradient multiplied by −strength backward."""

        def build(self, input_shape):
            self.strength = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                            name="strength")

        def call(self, x):
            # forward: x·(1+s) − x·s = x; backward: only −x·s carries a gradient
            return ops.stop_gradient(x * (1.0 + self.strength)) - x * self.strength

    reversal = GradientReversal(name="grad_reverse")
    h = reversal(model.get_layer(feature_layer).output)
    h = layers.Dense(hidden, activation="relu", name="spk_hidden")(h)
    spk = layers.Dense(n_speakers, activation="softmax", name="speaker")(h)
    return keras.Model(model.input, [model.output, spk], name=f"{model.name}_adv"), reversal


def speech_model(arch: str, frames: int, ceps: int, n_classes: int, widths):
    """The speech network ``--arch`` names (training.speech), ``widths`` its layers."""
    build = {"tcn": speech_tcn, "tcn-sep": lambda *a, **k: speech_tcn(*a, separable=True, **k),
             "cnn2d": speech_cnn}[arch]
    return build(frames, ceps, n_classes, widths=tuple(widths))
