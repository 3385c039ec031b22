"""Keras → full-integer int8 TFLite conversion, parity checks and manifests."""
