"""Reading image files as 8-bit greyscale or RGB, whatever mode they are stored in, and their statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# single-channel modes with more than 8 bits per pixel: 16-bit (PNG, TIFF), 32-bit int, 32-bit float
HIGH_BIT_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def open_image(path: Path) -> Image.Image:
    """The image at ``path`` as mode ``L`` (greyscale) or ``RGB``, 8 bits per channel, fully loaded.

    Every mode is converted deliberately, never by Pillow's defaults (which clip a 16-bit image to
    the values 0 and 255):

    - ``L`` and ``RGB`` stay as they are; ``1`` becomes ``L`` (0 and 255); ``LA`` becomes ``L``;
      ``RGBA``, ``P``, ``PA``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` ... become ``RGB`` (alpha is
      dropped, as MML loads every image as RGB).
    - 16-bit, 32-bit integer and float images (``I;16*``, ``I``, ``F``) become ``L`` by a linear
      stretch of the image's own minimum to 0 and maximum to 255 (NaN counts as the minimum; a
      constant image becomes 0). Why the image's range and not the type's (0..65535): medical
      16-bit files mostly use 10-14 bits, so dividing by 257 would leave a 12-bit X-ray 16 grey
      levels; the stretch keeps 256 levels for every image. The price: absolute intensities are not
      comparable across images any more (as with per-image windowing). For calibrated intensities
      (CT in Hounsfield units), window them to 8 bit yourself before importing.
    - 16-bit RGB files are opened by Pillow as 8-bit ``RGB`` (the high byte of each channel).

    Raises ``OSError`` (``PIL.UnidentifiedImageError`` included) for files that are not readable images.
    """
    with Image.open(path) as img:
        img.load()
        if img.mode in ("L", "RGB"):
            return img.copy()
        if img.mode in HIGH_BIT_DEPTH_MODES:
            return _stretch_to_8bit(np.asarray(img, dtype=np.float64))
        if img.mode in ("1", "LA", "La"):
            return img.convert("L")
        return img.convert("RGB")


def _stretch_to_8bit(values: np.ndarray) -> Image.Image:
    """``values`` (2D) linearly mapped from their finite min..max to 0..255, as an ``L`` image."""
    finite = np.isfinite(values)
    if not finite.any():
        return Image.fromarray(np.zeros(values.shape, np.uint8))
    low, high = values[finite].min(), values[finite].max()
    scaled = np.where(finite, values, low) - low
    if high > low:
        scaled *= 255.0 / (high - low)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def read_rgb(path: Path) -> np.ndarray:
    """The image at ``path`` as a writable ``H x W x 3`` uint8 array (see :func:`open_image`; grey becomes RGB,
    as MML loads every image as RGB)."""
    return np.array(open_image(path).convert("RGB"))


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
