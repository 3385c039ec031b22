"""MoodEdge: on-device emotion recognition fused into arousal/valence, published over MQTT."""

__version__ = "0.1.0"
