"""Differentiable augmentations of discriminator inputs: DiffAugment and ADA.

Both act on NHWC float images in [-1, 1] (C = 1 or 3), real and fake alike, and
are differentiable with respect to the pixels (gathers and multiplies only), so
the generator is trained through them. Randomness is per example: every batch
function takes ``keys``, a typed PRNG key array of shape [B] (one key per example,
e.g. folded from its global batch index), so an example gets the same
augmentation on 1 or N devices.

DiffAugment: Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient
GAN Training", ops as in the authors' DiffAugment_pytorch.py.

ADA: Karras et al. 2020, "Training Generative Adversarial Networks with Limited
Data", the 'bgc' pipeline with the distributions of stylegan2-ada-pytorch's
training/augment.py. One deliberate difference: the official code resamples
through a 2x upsampling with a wavelet low-pass filter (anti-aliasing); we
resample once, with plain bilinear interpolation.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

# Float32 matmuls on accelerators may run in TF32/bf16 by default; composing the
# transforms and applying colour matrices at full precision keeps p = 0 exact.
_matmul = functools.partial(jnp.matmul, precision=jax.lax.Precision.HIGHEST)


def _fold(keys, data):
    """Per-example keys for one stage, independent of the other stages' draws."""
    return jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, data)


def _fraction(size, ratio):
    """ratio * size rounded half up, as the DiffAugment reference does."""
    return int(size * ratio + 0.5)


def _check_names(names, accepted, what):
    if isinstance(names, str):
        raise ValueError(f'{what}s must be a tuple of names, got the string {names!r}')
    for name in names:
        if name not in accepted:
            raise ValueError(f'Unknown {what} {name!r}; available: {", ".join(accepted)}')


# --- DiffAugment -----------------------------------------------------------------


def shift_brightness(images, delta):
    """Adds delta[b] to every pixel of image b."""
    return images + delta[:, None, None, None]


def scale_saturation(images, factor):
    """Scales each pixel's deviation from its channel mean by factor[b]."""
    mean = jnp.mean(images, axis=-1, keepdims=True)
    return (images - mean) * factor[:, None, None, None] + mean


def scale_contrast(images, factor):
    """Scales each image's deviation from its mean over all pixels and channels."""
    mean = jnp.mean(images, axis=(1, 2, 3), keepdims=True)
    return (images - mean) * factor[:, None, None, None] + mean


def translate(images, shifts):
    """Moves image b's content down by shifts[b, 0] and right by shifts[b, 1] pixels.

    Integer shifts, zero fill: out[i, j] = in[i - dy, j - dx] as a gather, so the
    gradient reaches every pixel that stays in the frame. (The reference reads
    in[i + dy, j + dx]; the draw is symmetric, so the distribution is the same.)
    """

    def one(image, shift):
        height, width = image.shape[:2]
        rows = jnp.arange(height) - shift[0]
        cols = jnp.arange(width) - shift[1]
        inside = ((rows >= 0) & (rows < height))[:, None] & ((cols >= 0) & (cols < width))[None, :]
        moved = image[jnp.clip(rows, 0, height - 1)[:, None], jnp.clip(cols, 0, width - 1)[None, :]]
        return jnp.where(inside[..., None], moved, 0.0)

    return jax.vmap(one)(images, shifts)


def cutout(images, centres, ratio=0.5):
    """Zeroes a (ratio H) x (ratio W) rectangle of image b around centres[b] = (row, col).

    The rectangle covers rows [row - h // 2, row - h // 2 + h), clipped at the borders,
    and likewise columns; applied as a mask multiply.
    """
    height, width = images.shape[1:3]
    size = jnp.array([_fraction(height, ratio), _fraction(width, ratio)])
    start = centres - size // 2
    rows = jnp.arange(height)[None, :] - start[:, :1]
    cols = jnp.arange(width)[None, :] - start[:, 1:]
    cut = ((rows >= 0) & (rows < size[0]))[:, :, None] & ((cols >= 0) & (cols < size[1]))[
        :, None, :
    ]
    return images * (1.0 - cut[..., None].astype(images.dtype))


def _rand_color(images, keys):
    """Brightness U(-0.5, 0.5), then saturation U(0, 2), then contrast U(0.5, 1.5)."""
    draws = jax.vmap(lambda key: jax.random.uniform(key, (3,)))(keys)
    images = shift_brightness(images, draws[:, 0] - 0.5)
    images = scale_saturation(images, draws[:, 1] * 2.0)
    return scale_contrast(images, draws[:, 2] + 0.5)


def _uniform_ints(keys, high):
    """Per example, integers uniform in [0, high) per entry of high (an int array).

    floor(U[0, 1) * high); the uniforms' 2^-23 grid makes the bias negligible.
    """
    draws = jax.vmap(lambda key: jax.random.uniform(key, high.shape))(keys)
    return jnp.floor(draws * high).astype(jnp.int32)


def _rand_translation(images, keys, ratio=0.125):
    """Integer shifts uniform in [-s, s] per axis, s = ratio * size."""
    height, width = images.shape[1:3]
    limit = np.array([_fraction(height, ratio), _fraction(width, ratio)])
    return translate(images, _uniform_ints(keys, 2 * limit + 1) - limit)


def _rand_cutout(images, keys, ratio=0.5):
    """Centres uniform over the image, with the reference's range for even sizes."""
    height, width = images.shape[1:3]
    size = np.array([_fraction(height, ratio), _fraction(width, ratio)])
    centres = _uniform_ints(keys, np.array([height, width]) + 1 - size % 2)
    return cutout(images, centres, ratio)


def _rand_flip(images, keys):
    """Horizontal flip with probability 1/2.

    Not one of DiffAugment's ops: bCR's transformation (Zhao et al. 2021) is a
    flip plus a translation, and this registry is where it finds both.
    """
    flip = jax.vmap(lambda key: jax.random.bernoulli(key))(keys)
    return jnp.where(flip[:, None, None, None], images[:, :, ::-1], images)


DIFFAUGMENT_OPS = {
    'color': _rand_color,
    'translation': _rand_translation,
    'cutout': _rand_cutout,
    'flip': _rand_flip,
}


def check_policy(policy):
    """Raises ValueError for a policy that is not a tuple of DIFFAUGMENT_OPS names."""
    _check_names(policy, tuple(DIFFAUGMENT_OPS), 'DiffAugment op')


def diffaugment(images, keys, policy):
    """Applies the ops named in policy, in order; () is the identity."""
    check_policy(policy)
    return _diffaugment(images, keys, tuple(policy))


def _diffaugment(images, keys, policy):
    for position, name in enumerate(policy):
        images = DIFFAUGMENT_OPS[name](images, _fold(keys, position))
    return images


# --- ADA -------------------------------------------------------------------------
#
# Geometric transforms are composed as one inverse map G_inv (output pixel -> input
# point, in pixels, x right, y down, origin at the image centre) by right-multiplying
# the inverse of each transform in the order they act, as the official code does.
# Colour transforms are composed as one 4x4 matrix by left-multiplying.


def _translate2d(tx, ty):
    return jnp.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def _scale2d(sx, sy):
    return jnp.array([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]])


def _rotate2d(cos, sin):
    return jnp.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])


# Each builder maps one stage's draws, u (2 x U[0, 1)) and z (2 x N(0, 1)), to the
# inverse of its transform, as the official code derives them from torch.rand/randn.


def _xflip(u, z, size):
    del z, size
    return _scale2d(1.0 - 2.0 * jnp.floor(u[0] * 2.0), 1.0)  # Its own inverse.


def _rotate90(u, z, size):
    """Exact quarter turns: a pixel copy, like the flip."""
    del z, size
    turns = jnp.floor(u[0] * 4.0).astype(jnp.int32)
    return _rotate2d(
        jnp.array([1.0, 0.0, -1.0, 0.0])[turns], jnp.array([0.0, 1.0, 0.0, -1.0])[turns]
    )


def _int_translation(u, z, size):
    """Uniform in [-0.125, 0.125] of the size, rounded to whole pixels."""
    del z
    shift = jnp.round((u * 2.0 - 1.0) * 0.125 * size)
    return _translate2d(-shift[0], -shift[1])


def _iso_scale(u, z, size):
    del u, size
    scale = jnp.exp2(0.2 * z[0])
    return _scale2d(1.0 / scale, 1.0 / scale)


def _rotation(u, z, size):
    del z, size
    theta = (u[0] * 2.0 - 1.0) * np.pi
    return _rotate2d(jnp.cos(theta), jnp.sin(theta))


def _aniso_scale(u, z, size):
    del u, size
    scale = jnp.exp2(0.2 * z[0])
    return _scale2d(1.0 / scale, scale)


def _frac_translation(u, z, size):
    del u
    shift = 0.125 * z * size
    return _translate2d(-shift[0], -shift[1])


# The luma axis (1, 1, 1)/sqrt(3) of the official code, in homogeneous RGB.
_LUMA = np.array([1.0, 1.0, 1.0, 0.0]) / np.sqrt(3.0)
_LUMA_OUTER = np.outer(_LUMA, _LUMA).astype(np.float32)
_LUMA_CROSS = (
    np.array([[0, -1, 1, 0], [1, 0, -1, 0], [-1, 1, 0, 0], [0, 0, 0, 0]]) / np.sqrt(3.0)
).astype(np.float32)  # v x (.) for v the luma axis.
_RGB_IDENTITY = np.diag([1.0, 1.0, 1.0, 0.0]).astype(np.float32)
_HOMOGENEOUS = np.diag([0.0, 0.0, 0.0, 1.0]).astype(np.float32)


def _brightness(u, z):
    del u
    return jnp.eye(4).at[:3, 3].set(0.2 * z[0])


def _contrast(u, z):
    del u
    scale = jnp.exp2(0.5 * z[0])
    return jnp.diag(jnp.array([scale, scale, scale, 1.0]))


def _luma_flip(u, z):
    """Householder reflection of luma, applied to half of the selected images."""
    del z
    return jnp.eye(4) - 2.0 * _LUMA_OUTER * jnp.floor(u[0] * 2.0)


def _hue_rotation(u, z):
    """Rotation about the luma axis (Rodrigues) by an angle uniform in [-pi, pi)."""
    del z
    theta = (u[0] * 2.0 - 1.0) * np.pi
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    return cos * _RGB_IDENTITY + sin * _LUMA_CROSS + (1.0 - cos) * _LUMA_OUTER + _HOMOGENEOUS


def _saturation(u, z):
    """Scales the chroma (the part orthogonal to the luma axis)."""
    del u
    scale = jnp.exp2(z[0])
    return _LUMA_OUTER + (_RGB_IDENTITY - _LUMA_OUTER) * scale + _HOMOGENEOUS


# The official order. Rotation appears twice, before and after anisotropic scaling.
_GEOMETRIC = (
    ('xflip', _xflip),
    ('rotate90', _rotate90),
    ('xint', _int_translation),
    ('scale', _iso_scale),
    ('rotate', _rotation),
    ('aniso', _aniso_scale),
    ('rotate', _rotation),
    ('xfrac', _frac_translation),
)
_COLOR = (
    ('brightness', _brightness),
    ('contrast', _contrast),
    ('lumaflip', _luma_flip),
    ('hue', _hue_rotation),
    ('saturation', _saturation),
)
_STAGES = _GEOMETRIC + _COLOR
_RGB_ONLY = ('hue', 'saturation')

# Blit + geometric + colour.
ADA_BGC = (
    'xflip',
    'rotate90',
    'xint',
    'scale',
    'rotate',
    'aniso',
    'xfrac',
    'brightness',
    'contrast',
    'lumaflip',
    'hue',
    'saturation',
)


def _standard_normal(u):
    """N(0, 1) from U[0, 1) by the inverse CDF, as jax.random.normal does.

    jax's uniforms are multiples of 2^-23; shifting them to the midpoints keeps
    2u - 1 inside (-1, 1), where erf_inv is finite, and the result symmetric.
    """
    return np.sqrt(2.0) * jax.lax.erf_inv(2.0 * u - 1.0 + 2.0**-23)


def _probability(name, p):
    """p for every op but the rotations: 1 - sqrt(1 - p) each, so P(pre or post) = p."""
    if name == 'rotate':
        return 1.0 - jnp.sqrt(jnp.clip(1.0 - p, 0.0, 1.0))
    return p


def _draw_matrices(key, p, enabled, size):
    """One example's (G_inv, C); stage i fires where enabled[i] and its gate allows.

    All draws come from one uniform table with a row per stage, drawn in full
    whatever is enabled, so stage i's draws do not depend on the other ops (and one
    draw compiles far faster than one per stage).
    """
    table = jax.random.uniform(key, (len(_STAGES), 5))
    g_inv, color = jnp.eye(3), jnp.eye(4)
    for index, (name, build) in enumerate(_STAGES):
        gate, u, z = table[index, 0], table[index, 1:3], _standard_normal(table[index, 3:])
        fires = enabled[index] & (gate < _probability(name, p))
        if index < len(_GEOMETRIC):
            g_inv = _matmul(g_inv, jnp.where(fires, build(u, z, size), jnp.eye(3)))
        else:
            color = _matmul(jnp.where(fires, build(u, z), jnp.eye(4)), color)
    return g_inv, color


def _batch_matrices(keys, p, enabled, size):
    """Traced p and enabled: one compilation per batch size, whatever the ops."""
    return jax.vmap(_draw_matrices, in_axes=(0, None, None, None))(keys, p, enabled, size)


def ada_matrices(keys, p, height, width, channels=3, ops=ADA_BGC):
    """Per-example geometric G_inv [B, 3, 3] and colour C [B, 4, 4] for the named ops.

    Each op fires independently per example with probability p (a traced scalar);
    the identity, exactly, where it does not. Distributions as the official
    AugmentPipe with the 'bgc' probability multipliers 1: x-flip and luma flip pick
    flip/no-flip at random (so half the selected images change), quarter turns
    0..3, integer translation U(-0.125, 0.125) of the size rounded, scalings
    2^N(0, 0.2^2), rotations U(-pi, pi), fractional translation N(0, 0.125^2) of
    the size, brightness N(0, 0.2^2), contrast 2^N(0, 0.5^2), hue U(-pi, pi),
    saturation 2^N(0, 1). Grey images (channels 1) skip hue and saturation, as the
    official code does.
    """
    _check_names(ops, ADA_BGC, 'ADA op')
    enabled = np.array(
        [name in ops and not (channels == 1 and name in _RGB_ONLY) for name, _ in _STAGES]
    )
    size = np.array([width, height], np.float32)
    return _batch_matrices(keys, jnp.asarray(p, jnp.float32), enabled, size)


def _reflect(index, size):
    """numpy's 'reflect' padding (mirror about the edge pixels), at any distance."""
    if size == 1:
        return jnp.zeros_like(index)
    period = 2 * (size - 1)
    index = jnp.mod(index, period)
    return jnp.where(index < size, index, period - index)


def resample(images, g_inv):
    """Bilinear resampling of images [B, H, W, C] through inverse maps g_inv [B, 3, 3].

    Output pixel (x, y), in centred coordinates, samples the input at g_inv @ (x, y, 1).
    Outside the frame the input is mirrored (numpy's 'reflect') at any distance; the
    official code mirrors at most one image size out and samples zeros beyond, which
    only the far corners of strongly shrunk or rotated images reach.
    """

    def one(image, g):
        height, width = image.shape[:2]
        cy, cx = (height - 1) / 2, (width - 1) / 2
        y, x = jnp.meshgrid(jnp.arange(height) - cy, jnp.arange(width) - cx, indexing='ij')
        # Elementwise, not a matmul, for the same reason as _matmul.
        src_x = g[0, 0] * x + g[0, 1] * y + g[0, 2] + cx
        src_y = g[1, 0] * x + g[1, 1] * y + g[1, 2] + cy
        x0, y0 = jnp.floor(src_x), jnp.floor(src_y)
        wx, wy = (src_x - x0)[..., None], (src_y - y0)[..., None]
        x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)

        def at(rows, cols):
            return image[_reflect(rows, height), _reflect(cols, width)]

        top = at(y0, x0) * (1.0 - wx) + at(y0, x0 + 1) * wx
        bottom = at(y0 + 1, x0) * (1.0 - wx) + at(y0 + 1, x0 + 1) * wx
        return top * (1.0 - wy) + bottom * wy

    return jax.vmap(one)(images, g_inv)


def apply_color_matrix(images, color):
    """Applies colour matrices color [B, 4, 4] (homogeneous RGB) to images [B, H, W, C].

    RGB: C[:3, :3] @ rgb + C[:3, 3]. Grey, as the official code: the mean of the
    three output rows, i.e. gain sum(C[:3, :3]) / 3 and offset mean(C[:3, 3]).
    """
    channels = images.shape[-1]
    if channels == 3:
        linear = jnp.einsum(
            'bij,bhwj->bhwi', color[:, :3, :3], images, precision=jax.lax.Precision.HIGHEST
        )
        return linear + color[:, None, None, :3, 3]
    if channels == 1:
        gain = jnp.sum(color[:, :3, :3], axis=(1, 2)) / 3.0
        offset = jnp.mean(color[:, :3, 3], axis=1)
        return images * gain[:, None, None, None] + offset[:, None, None, None]
    raise ValueError(f'ADA colour transforms need 1 or 3 channels, got {channels}')


def ada_augment(images, keys, p, *, ops=ADA_BGC):
    """The ADA pipeline: one geometric resampling, then one colour transform.

    p is the augmentation probability, a traced float32 scalar (it lives in the
    train state); nothing branches on it in Python. On grey images luma flip
    negates, and hue and saturation are skipped.
    """
    g_inv, color = ada_matrices(keys, p, *images.shape[1:], ops=ops)
    if any(name in ops for name, _ in _GEOMETRIC):
        images = resample(images, g_inv)
    if any(name in ops for name, _ in _COLOR):
        images = apply_color_matrix(images, color)
    return images


def ada_update_p(p, sign_sum, count, *, batch_images, target=0.6, speed_kimg=500.0):
    """The ADA heuristic: p steps by batch_images / (speed_kimg * 1000) to steer r_t to target.

    r_t = sign_sum / count is the mean of sign(D(real)) over the count > 0 real
    logits accumulated since the last adjustment, and batch_images the real images
    seen since then (batch size x interval). r_t above target means D is
    overfitting, so p rises; below, p falls; at target it stays. Official defaults:
    target 0.6, an adjustment every 4 steps, speed 500 kimg (p can cross [0, 1] in
    500k images). Clipped to [0, 1]; the official code only clips at 0, which lets
    p overshoot 1 and then lag on the way down.
    """
    r_t = sign_sum / count
    step = batch_images / (speed_kimg * 1000.0)
    return jnp.clip(p + jnp.sign(r_t - target) * step, 0.0, 1.0)
