"""What a generator is fed and what it returns: latents, labels, image conversions, grids.

Randomness is keyed by an example's index in the global batch (``fold_in(key, i)``),
so the same seed gives the same latents and labels on 1 or N devices and hosts.
"""

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np


def images_to_float(images):
    """uint8 [0, 255] -> float32 [-1, 1]; done on device to send 4x fewer bytes."""
    return images.astype(jnp.float32) / 127.5 - 1.0


def images_to_uint8(images):
    """float [-1, 1] -> uint8 (clipped, rounded), the inverse of images_to_float.

    Generated images go through it before feature extraction and before being
    saved, so metrics see what a saved PNG shows.
    """
    return jnp.clip(jnp.round((images + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


def inputs_to_float(data):
    """A batch as the models see it: uint8 images to [-1, 1]; float data (2-D points) as is."""
    return images_to_float(data) if data.dtype == jnp.uint8 else data


def check_truncation(truncation):
    """``truncation`` as a float (or None); a ValueError unless None or a finite number > 0."""
    if truncation is None:
        return None
    if not (
        isinstance(truncation, numbers.Real)
        and not isinstance(truncation, bool)
        and 0 < truncation < math.inf
    ):
        raise ValueError(
            f'truncation={truncation!r}: expected a threshold > 0 (BigGAN uses 0.04 to 2), '
            'or None for no truncation.'
        )
    return float(truncation)


# model.z_distribution -> (key, shape) -> latents.
LATENTS = {
    'normal': jax.random.normal,  # N(0, I).
    'uniform': lambda key, shape: jax.random.uniform(key, shape, minval=-1.0, maxval=1.0),
}


def sample_latents(key, global_indices, z_dim, *, distribution='normal', truncation=None):
    """One latent per example from ``distribution`` (a name in ``LATENTS``), keyed by its
    global index; an unknown name fails.

    ``truncation`` t (normal latents only): BigGAN's truncation trick. Entries with
    |z| > t are drawn again (from keys ``fold_in(example key, round)``) until none is,
    so each entry is a standard normal truncated to [-t, t] and the entries already
    inside keep their untruncated values.
    """
    if distribution not in LATENTS:
        raise ValueError(f'model.z_distribution={distribution!r} is not one of {sorted(LATENTS)}.')
    truncation = check_truncation(truncation)
    if truncation is not None and distribution != 'normal':
        raise ValueError(
            f'truncation={truncation} needs normal latents; model.z_distribution={distribution!r}.'
        )
    draw = LATENTS[distribution]

    def one(i):
        example_key = jax.random.fold_in(key, i)
        z = draw(example_key, (z_dim,))
        if truncation is None:
            return z

        def redraw(carry):
            round_, z = carry
            fresh = jax.random.normal(jax.random.fold_in(example_key, round_), (z_dim,))
            return round_ + 1, jnp.where(jnp.abs(z) > truncation, fresh, z)

        outside = lambda carry: jnp.any(jnp.abs(carry[1]) > truncation)  # noqa: E731
        return jax.lax.while_loop(outside, redraw, (jnp.int32(1), z))[1]

    return jax.vmap(one)(global_indices)


def slerp(z0, z1, t):
    """Spherical interpolation of latents [..., D] at fractions ``t`` [T] -> [T, ..., D].

    ``(sin((1 - t) w) z0 + sin(t w) z1) / sin w``, w the angle between z0 and z1
    (Shoemake 1985; White 2016 for GAN latents): between latents of equal norm it
    keeps that norm, where a straight line would pass near the origin, a region a
    Gaussian latent almost never visits. lerp where the two are (anti)parallel.
    """
    z0, z1 = jnp.asarray(z0, jnp.float32), jnp.asarray(z1, jnp.float32)
    t = jnp.asarray(t, jnp.float32).reshape((-1,) + (1,) * z0.ndim)
    cos = jnp.sum(z0 * z1, axis=-1, keepdims=True) / (
        jnp.linalg.norm(z0, axis=-1, keepdims=True) * jnp.linalg.norm(z1, axis=-1, keepdims=True)
    )
    omega = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
    sin = jnp.sin(omega)
    degenerate = sin < 1e-6
    safe_sin = jnp.where(degenerate, 1.0, sin)
    spherical = (jnp.sin((1 - t) * omega) * z0 + jnp.sin(t * omega) * z1) / safe_sin
    return jnp.where(degenerate, lerp(z0, z1, t.reshape(-1)), spherical)


def lerp(x0, x1, t):
    """Linear interpolation of [..., D] arrays at fractions ``t`` [T] -> [T, ..., D]."""
    x0, x1 = jnp.asarray(x0, jnp.float32), jnp.asarray(x1, jnp.float32)
    t = jnp.asarray(t, jnp.float32).reshape((-1,) + (1,) * x0.ndim)
    return (1 - t) * x0 + t * x1


def sample_labels(key, global_indices, num_classes):
    """Uniform class labels for fakes, keyed like the latents; None when unconditional."""
    if num_classes is None:
        return None
    return jax.vmap(lambda i: jax.random.randint(jax.random.fold_in(key, i), (), 0, num_classes))(
        global_indices
    )


def class_rows(classes, per_class):
    """Labels of a class grid: each class of ``classes`` repeated ``per_class`` times (a row)."""
    return np.repeat(np.asarray(classes, np.int32), per_class)


def grid_layout(num_samples, num_classes):
    """(labels or None, columns) of a sample grid.

    Conditional runs get one row per class, at least ``isqrt(num_samples) // 2``
    samples each: all classes when they fit, else that many rows of classes spread
    evenly over the range (1,000 classes in 64 samples: 16 rows of 4). Others get
    a square grid (None, None).
    """
    if num_classes is None:
        return None, None
    per_class = max(num_samples // num_classes, math.isqrt(num_samples) // 2, 1)
    rows = min(num_classes, num_samples // per_class)
    classes = np.round(np.linspace(0, num_classes - 1, rows)).astype(np.int32)
    return class_rows(classes, per_class), per_class
