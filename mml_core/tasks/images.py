"""Reading image files as 8-bit greyscale or RGB, whatever mode they are stored in."""

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
