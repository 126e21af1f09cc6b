"""Image geometry shared by every source, so a dataset looks the same however it is stored."""

import numpy as np
from PIL import Image


def center_crop_resize(image: np.ndarray, resolution: int) -> np.ndarray:
    """Center-crops a uint8 (H, W, C) image to a square, then resizes it to `resolution`.

    Cropping (not padding or stretching) keeps the aspect ratio of faces and objects. The resize
    uses PIL's antialiased Lanczos filter, deterministic; an image that already fits is returned
    unchanged.
    """
    height, width, channels = image.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    image = image[top : top + side, left : left + side]
    if side == resolution:
        return image
    pil = Image.fromarray(np.ascontiguousarray(image[..., 0] if channels == 1 else image))
    pil = pil.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(pil).reshape(resolution, resolution, channels)


def convert_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Converts a uint8 (H, W, 1|3) image to `channels` (1 or 3); grey uses PIL's luma weights."""
    if image.shape[-1] == channels:
        return image
    if channels == 3:
        return np.repeat(image, 3, axis=-1)
    return np.asarray(Image.fromarray(image).convert('L'))[..., None]
