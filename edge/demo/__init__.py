"""``edge-cli demo``: a private broker, the daemon over demo media, and what a subscriber sees."""

from pathlib import Path

MEDIA_DIR = Path(__file__).resolve().parent / "media"
