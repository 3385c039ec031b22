"""Draw the face box and label on an image (``edge-cli predict --annotate``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.vision.faces import import_cv2


def annotate(image: np.ndarray, result) -> np.ndarray:
    """A BGR copy of ``image`` with ``result.box`` and its label (or "no face") drawn."""
    cv2 = import_cv2()
    img = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    img = np.ascontiguousarray(img[:, :, :3]).copy()
    h, w = img.shape[:2]
    scale = max(0.4, min(w, h) / 480)
    thick = max(1, int(round(2 * scale)))
    if result.box is None or result.label is None:
        cv2.putText(img, "no face", (8, int(24 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale,
                    (0, 0, 255), thick, cv2.LINE_AA)
        return img
    x, y, bw, bh = result.box
    cv2.rectangle(img, (x, y), (x + bw - 1, y + bh - 1), (0, 200, 0), thick)
    text = f"{result.label} {result.probabilities[result.label]:.2f}"
    cv2.putText(img, text, (x, max(int(18 * scale), y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale,
                (0, 200, 0), thick, cv2.LINE_AA)
    return img


def write_annotated(image: np.ndarray, result, path: Path) -> Path:
    cv2 = import_cv2()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), annotate(image, result)):
        raise OSError(f"{path}: could not write the annotated image")
    return path
