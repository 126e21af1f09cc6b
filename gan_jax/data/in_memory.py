"""Datasets that fit in memory as one array: sklearn's digits and .npz files."""

import pathlib

import numpy as np
import sklearn.datasets

from gan_jax.data.image_ops import center_crop_resize
from gan_jax.data.source import ArraySource

NPZ_FORMAT = (
    'uint8 `x` of shape (N, H, W) or (N, H, W, C) with C 1 or 3, '
    'and optionally integer `y` of shape (N,)'
)


def load_digits(*, resolution: int, channels: int | None) -> ArraySource:
    """scikit-learn's bundled 8x8 digits (1797 images, 10 classes): a dataset that is always there.

    The images are tiny, so they are resized once here rather than on every read.
    """
    digits = sklearn.datasets.load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None]
    images = np.stack([center_crop_resize(image, resolution) for image in images])
    return ArraySource(
        images,
        digits.target,
        name='digits',
        resolution=resolution,
        channels=channels or 1,
        num_classes=10,
    )


def load_npz(path: pathlib.Path, *, resolution: int, channels: int | None) -> ArraySource:
    """Images from an .npz file (see NPZ_FORMAT); cropped and resized on read if needed."""
    with np.load(path) as data:
        if 'x' not in data.files:
            raise ValueError(
                f'{path} has no array `x` (it has {data.files}); expected {NPZ_FORMAT}.'
            )
        images = data['x']
        labels = data['y'] if 'y' in data.files else None
    if (
        images.dtype != np.uint8
        or images.ndim not in (3, 4)
        or len(images) == 0
        or (images.ndim == 4 and images.shape[-1] not in (1, 3))
    ):
        raise ValueError(
            f'{path}: `x` is {images.dtype} of shape {images.shape}; expected {NPZ_FORMAT}.'
        )
    if images.ndim == 3:
        images = images[..., None]
    if labels is None:
        labels, num_classes = np.zeros(len(images), np.int32), None
    elif not np.issubdtype(labels.dtype, np.integer) or labels.shape != (len(images),):
        raise ValueError(
            f'{path}: `y` is {labels.dtype} of shape {labels.shape}; expected {NPZ_FORMAT}.'
        )
    else:
        num_classes = int(labels.max()) + 1
    return ArraySource(
        images,
        labels,
        name=f'npz:{path}',
        resolution=resolution,
        channels=channels or images.shape[-1],
        num_classes=num_classes,
    )
