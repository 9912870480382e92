"""Read any image file as 8-bit RGB, converting every mode on purpose (MML loads every image as RGB).

- 8-bit modes (L, P, RGB, RGBA, LA, CMYK, YCbCr, 1): PIL's own conversion to RGB; alpha is dropped.
- High bit depth (16-bit grey ``I;16*``, 32-bit integer ``I``, float ``F``): scaled linearly from the
  image's own minimum and maximum to 0..255 before the RGB conversion. A fixed divisor (65535)
  would turn the common 10- to 12-bit medical images into a handful of dark grey values; the
  image's own range keeps as many of its levels as 8 bits hold. A constant image becomes black.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

HIGH_BIT_DEPTH_MODES = ("I", "F")


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as an 8-bit RGB image (see the module docstring for how each mode is converted)."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith(HIGH_BIT_DEPTH_MODES):
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        image = Image.fromarray(np.round(scaled).astype(np.uint8), mode="L")
    return image.convert("RGB")


def read_rgb(path: Path) -> np.ndarray:
    """The image at ``path`` as a ``H x W x 3`` uint8 array."""
    with Image.open(path) as image:
        return np.array(to_rgb(image))  # writable: torch.from_numpy shares its memory


class ImageStatistics:
    """Running per-channel mean and std (in [0, 1]) and the size range of RGB uint8 images, as MML's
    task files record them (``means``, ``stds``, ``sizes``)."""

    def __init__(self) -> None:
        self._sums = np.zeros(3)
        self._squares = np.zeros(3)
        self._pixels = 0
        self.heights: list[int] = []
        self.widths: list[int] = []

    def add(self, image: np.ndarray) -> None:
        pixels = image.reshape(-1, 3).astype(np.float64) / 255.0
        self._sums += pixels.sum(axis=0)
        self._squares += np.square(pixels).sum(axis=0)
        self._pixels += len(pixels)
        self.heights.append(image.shape[0])
        self.widths.append(image.shape[1])

    def means(self) -> list[float]:
        return (self._sums / max(self._pixels, 1)).tolist()

    def stds(self) -> list[float]:
        mean = self._sums / max(self._pixels, 1)
        return np.sqrt(np.maximum(self._squares / max(self._pixels, 1) - np.square(mean), 0.0)).tolist()

    def sizes(self) -> list[int]:
        """``[min_height, max_height, min_width, max_width]`` (MML's order)."""
        if not self.heights:
            return [0, 0, 0, 0]
        return [min(self.heights), max(self.heights), min(self.widths), max(self.widths)]
