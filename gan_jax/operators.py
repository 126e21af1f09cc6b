"""Measurement operators for data repair: what a damaged image ``y`` is of the clean ``x``.

Images are float NHWC in [0, 1] (the scale compressed-sensing papers report errors on). An
``Operator`` holds its arrays in ``params`` and two pure functions of ``(params, x)``:
``forward`` (x -> y) and ``adjoint`` (y -> x, the transpose of the linear map; every operator
here is linear). ``per_example`` says whether ``params`` has a leading image axis (a mask per
image) or is shared by all images (one measurement matrix), so a sharded program can split the
former with the images and replicate the latter. Measurement noise is added by ``measure``.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from PIL import Image


class Operator(NamedTuple):
    name: str
    forward: Callable  # (params, x [N, H, W, C]) -> y [N, ...]
    adjoint: Callable  # (params, y [N, ...]) -> x [N, H, W, C]
    params: Any  # Arrays; with a leading image axis when per_example.
    per_example: bool


def _check_shape(image_shape):
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(f'image_shape={image_shape}: expected (height, width, channels).')


# Masks: 1 where the pixel is known, 0 where it is missing; shape (H, W, C) per image.


def center_mask(image_shape, fraction=0.5):
    """The centre block of ``fraction`` of the side missing (inpainting's usual test)."""
    _check_shape(image_shape)
    if not 0 < fraction < 1:
        raise ValueError(f'fraction={fraction}: expected a number in (0, 1).')
    height, width, channels = image_shape
    mask = np.ones(image_shape, np.float32)
    bh, bw = round(height * fraction), round(width * fraction)
    top, left = (height - bh) // 2, (width - bw) // 2
    mask[top : top + bh, left : left + bw] = 0
    return mask


def random_pixel_mask(image_shape, missing_fraction, rng):
    """Each pixel (all its channels) missing with probability ``missing_fraction``."""
    _check_shape(image_shape)
    if not 0 <= missing_fraction < 1:
        raise ValueError(f'missing_fraction={missing_fraction}: expected a number in [0, 1).')
    keep = rng.random(image_shape[:2]) >= missing_fraction
    return np.broadcast_to(keep[..., None], image_shape).astype(np.float32)


def random_boxes_mask(image_shape, num_boxes, box_size, rng):
    """``num_boxes`` squares of side ``box_size`` missing at uniform positions."""
    _check_shape(image_shape)
    height, width, _ = image_shape
    if num_boxes < 1 or not 1 <= box_size <= min(height, width):
        raise ValueError(
            f'num_boxes={num_boxes}, box_size={box_size}: expected at least one box of a '
            f'side from 1 to {min(height, width)}.'
        )
    mask = np.ones(image_shape, np.float32)
    for _ in range(num_boxes):
        top = rng.integers(0, height - box_size + 1)
        left = rng.integers(0, width - box_size + 1)
        mask[top : top + box_size, left : left + box_size] = 0
    return mask


def mask_from_image(path, image_shape):
    """A user's mask image (any format PIL reads): dark pixels (< 128) are missing.

    It is resized (nearest) to the images' height and width.
    """
    _check_shape(image_shape)
    height, width, _ = image_shape
    with Image.open(path) as image:
        gray = np.asarray(image.convert('L').resize((width, height), Image.NEAREST))
    keep = gray >= 128
    if keep.all():
        raise ValueError(f'Mask image {path}: no pixel is dark (< 128), so nothing is missing.')
    return np.broadcast_to(keep[..., None], image_shape).astype(np.float32)


def inpaint(masks):
    """y = mask * x, the missing pixels zeroed; ``masks`` [N, H, W, C] (one per image).

    A diagonal 0/1 map: its own adjoint.
    """
    masks = jnp.asarray(masks, jnp.float32)
    if masks.ndim != 4:
        raise ValueError(f'masks of shape {masks.shape}: expected [N, H, W, C].')

    def apply(params, x):
        return params * x

    return Operator('inpaint', apply, apply, masks, per_example=True)


def identity():
    """y = x (denoising: the noise is the damage)."""

    def apply(params, x):
        del params
        return x

    return Operator('denoise', apply, apply, {}, per_example=False)


def downsample(factor):
    """y = average of each ``factor`` x ``factor`` block (super-resolution)."""
    if factor < 2:
        raise ValueError(f'factor={factor}: expected an integer >= 2.')

    def forward(params, x):
        del params
        n, h, w, c = x.shape
        if h % factor or w % factor:
            raise ValueError(f'Images {h}x{w} are not divisible by factor={factor}.')
        return x.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))

    def adjoint(params, y):
        del params
        up = jnp.repeat(jnp.repeat(y, factor, axis=1), factor, axis=2)
        return up / factor**2

    return Operator(f'downsample_x{factor}', forward, adjoint, {}, per_example=False)


def gaussian_matrix(num_pixels, num_measurements, rng):
    """A [num_pixels, m] with i.i.d. N(0, 1/m) entries (Bora et al. 2017), float32."""
    if num_measurements < 1:
        raise ValueError(f'num_measurements={num_measurements}: expected >= 1.')
    scale = 1.0 / np.sqrt(num_measurements)
    return (rng.standard_normal((num_pixels, num_measurements)) * scale).astype(np.float32)


def gaussian(matrix, image_shape):
    """y = x_flat @ A, A [H*W*C, m] shared by all images (compressed sensing)."""
    _check_shape(image_shape)
    matrix = jnp.asarray(matrix, jnp.float32)
    if matrix.ndim != 2 or matrix.shape[0] != np.prod(image_shape):
        raise ValueError(
            f'Measurement matrix of shape {matrix.shape}: expected [{np.prod(image_shape)}, m] '
            f'for images of shape {image_shape}.'
        )

    def forward(params, x):
        return x.reshape(x.shape[0], -1) @ params

    def adjoint(params, y):
        return (y @ params.T).reshape(y.shape[0], *image_shape)

    return Operator(f'gaussian_m{matrix.shape[1]}', forward, adjoint, matrix, per_example=False)


def measure(op, x, noise_std, rng):
    """(y, noise): ``op`` applied to x plus i.i.d. Gaussian noise of std ``noise_std``."""
    y = np.asarray(op.forward(op.params, jnp.asarray(x, jnp.float32)))
    noise = (rng.standard_normal(y.shape) * noise_std).astype(np.float32)
    return y + noise, noise
