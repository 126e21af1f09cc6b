"""What a generator is fed and what it returns: latents, labels, image conversions, grids.

Randomness is keyed by an example's index in the global batch (``fold_in(key, i)``),
so the same seed gives the same latents and labels on 1 or N devices and hosts.
"""

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


# model.z_distribution -> (key, shape) -> latents.
LATENTS = {
    'normal': jax.random.normal,  # N(0, I).
    'uniform': lambda key, shape: jax.random.uniform(key, shape, minval=-1.0, maxval=1.0),
}


def sample_latents(key, global_indices, z_dim, distribution='normal'):
    """One latent per example from ``distribution`` (a name in ``LATENTS``), keyed by its
    global index; an unknown name fails."""
    if distribution not in LATENTS:
        raise ValueError(f'model.z_distribution={distribution!r} is not one of {sorted(LATENTS)}.')
    draw = LATENTS[distribution]
    return jax.vmap(lambda i: draw(jax.random.fold_in(key, i), (z_dim,)))(global_indices)


def sample_labels(key, global_indices, num_classes):
    """Uniform class labels for fakes, keyed like the latents; None when unconditional."""
    if num_classes is None:
        return None
    return jax.vmap(lambda i: jax.random.randint(jax.random.fold_in(key, i), (), 0, num_classes))(
        global_indices
    )


def grid_layout(num_samples, num_classes):
    """(labels or None, columns) of a sample grid.

    Conditional runs get one row per class (the first ``num_samples`` classes at
    most), ``num_samples // rows`` samples each; others a square grid.
    """
    if num_classes is None:
        return None, None
    rows = min(num_classes, num_samples)
    per_class = num_samples // rows
    return np.repeat(np.arange(rows), per_class), per_class
