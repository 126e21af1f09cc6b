"""FID Inception-v3 in Flax: TF's `inception-2015-12-05` graph as ported by pytorch-fid.

This is the network behind published FID scores, not torchvision's Inception-v3: it
has 1008 classes, its average pools ignore padding (TF's SAME average pool) and the
last block max-pools where the others average-pool. Layers are named like pytorch-fid's
model (`Mixed_5b/branch1x1/conv`) so converted weights map one to one.

Weights: download pytorch-fid's port (its `FID_WEIGHTS_URL`)

    https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth

convert it once without torch (see gan_jax.metrics.convert_inception)

    python -m gan_jax.metrics.convert_inception \
        --pth pt_inception-2015-12-05-6726825d.pth --out fid_inception.npz

and load it:

    variables, sha256 = load_fid_inception("fid_inception.npz")
    features = jax.jit(fid_inception_apply)(variables, images_uint8)  # {'pool', 'logits'}

Inference only. BatchNorm uses the stored statistics, kept as Flax's usual
non-trainable `batch_stats` collection next to `params` (not folded into the
kernels, so the converted arrays stay comparable to the .pth).

Convolutions, the classifier and the resize run at `Precision.HIGHEST`: on GPUs and
TPUs the default float32 matmul precision (TF32/bf16 passes) would shift FID features.
"""

import os
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.metrics.convert_inception import (
    SHA256_KEY,
    FIDWeightsNotFoundError,
    missing_weights_message,
)

INPUT_SIZE = 299
NUM_CLASSES = 1008
# Names the preprocessing for results metadata: PyTorch's
# F.interpolate(x, (299, 299), mode="bilinear", align_corners=False), i.e. bilinear
# with half-pixel centres, clamped edges and no antialiasing, as pytorch-fid resizes.
RESIZE_METHOD = 'torch_bilinear_299'

_HIGHEST = jax.lax.Precision.HIGHEST


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else v


class BasicConv(nn.Module):
    """Conv without bias -> BatchNorm (eps 1e-3, stored statistics) -> ReLU.

    `padding` is torch-style: (rows, cols) added on both sides.
    """

    features: int
    kernel: int | tuple[int, int]
    stride: int = 1
    padding: int | tuple[int, int] = 0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.Conv(
            self.features,
            _pair(self.kernel),
            strides=self.stride,
            padding=[(p, p) for p in _pair(self.padding)],
            use_bias=False,
            precision=_HIGHEST,
            name='conv',
        )(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name='bn')(x)
        return nn.relu(x)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
    """3x3/1 average pool that, like TF's SAME pooling, does not count padded zeros."""
    return nn.avg_pool(x, (3, 3), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x: jax.Array, stride: int) -> jax.Array:
    """3x3 max pool: padded (-inf) by 1 at stride 1 to keep the grid, unpadded at stride 2."""
    pad = 1 if stride == 1 else 0
    return nn.max_pool(x, (3, 3), strides=(stride, stride), padding=((pad, pad), (pad, pad)))


class InceptionA(nn.Module):
    """35x35 block (Mixed_5b-d): 1x1, 5x5, double 3x3 and pooled branches."""

    pool_features: int

    @nn.compact
    def __call__(self, x):
        b1 = BasicConv(64, 1, name='branch1x1')(x)
        b5 = BasicConv(48, 1, name='branch5x5_1')(x)
        b5 = BasicConv(64, 5, padding=2, name='branch5x5_2')(b5)
        b3 = BasicConv(64, 1, name='branch3x3dbl_1')(x)
        b3 = BasicConv(96, 3, padding=1, name='branch3x3dbl_2')(b3)
        b3 = BasicConv(96, 3, padding=1, name='branch3x3dbl_3')(b3)
        bp = BasicConv(self.pool_features, 1, name='branch_pool')(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 reduction (Mixed_6a)."""

    @nn.compact
    def __call__(self, x):
        b3 = BasicConv(384, 3, stride=2, name='branch3x3')(x)
        bd = BasicConv(64, 1, name='branch3x3dbl_1')(x)
        bd = BasicConv(96, 3, padding=1, name='branch3x3dbl_2')(bd)
        bd = BasicConv(96, 3, stride=2, name='branch3x3dbl_3')(bd)
        return jnp.concatenate([b3, bd, _max_pool_3x3(x, stride=2)], axis=-1)


class InceptionC(nn.Module):
    """17x17 block (Mixed_6b-e) with 7x7 convolutions factored into 1x7 and 7x1."""

    channels_7x7: int

    @nn.compact
    def __call__(self, x):
        c7 = self.channels_7x7
        b1 = BasicConv(192, 1, name='branch1x1')(x)
        b7 = BasicConv(c7, 1, name='branch7x7_1')(x)
        b7 = BasicConv(c7, (1, 7), padding=(0, 3), name='branch7x7_2')(b7)
        b7 = BasicConv(192, (7, 1), padding=(3, 0), name='branch7x7_3')(b7)
        bd = BasicConv(c7, 1, name='branch7x7dbl_1')(x)
        bd = BasicConv(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_2')(bd)
        bd = BasicConv(c7, (1, 7), padding=(0, 3), name='branch7x7dbl_3')(bd)
        bd = BasicConv(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_4')(bd)
        bd = BasicConv(192, (1, 7), padding=(0, 3), name='branch7x7dbl_5')(bd)
        bp = BasicConv(192, 1, name='branch_pool')(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 reduction (Mixed_7a)."""

    @nn.compact
    def __call__(self, x):
        b3 = BasicConv(192, 1, name='branch3x3_1')(x)
        b3 = BasicConv(320, 3, stride=2, name='branch3x3_2')(b3)
        b7 = BasicConv(192, 1, name='branch7x7x3_1')(x)
        b7 = BasicConv(192, (1, 7), padding=(0, 3), name='branch7x7x3_2')(b7)
        b7 = BasicConv(192, (7, 1), padding=(3, 0), name='branch7x7x3_3')(b7)
        b7 = BasicConv(192, 3, stride=2, name='branch7x7x3_4')(b7)
        return jnp.concatenate([b3, b7, _max_pool_3x3(x, stride=2)], axis=-1)


class InceptionE(nn.Module):
    """8x8 block (Mixed_7b, Mixed_7c) with split 1x3/3x1 branches.

    `pool` is 'avg' for Mixed_7b and 'max' for Mixed_7c: the TF graph max-pools in its
    last block (pytorch-fid's FIDInceptionE_2), unlike the Inception paper.
    """

    pool: str

    @nn.compact
    def __call__(self, x):
        b1 = BasicConv(320, 1, name='branch1x1')(x)
        b3 = BasicConv(384, 1, name='branch3x3_1')(x)
        b3 = jnp.concatenate(
            [
                BasicConv(384, (1, 3), padding=(0, 1), name='branch3x3_2a')(b3),
                BasicConv(384, (3, 1), padding=(1, 0), name='branch3x3_2b')(b3),
            ],
            axis=-1,
        )
        bd = BasicConv(448, 1, name='branch3x3dbl_1')(x)
        bd = BasicConv(384, 3, padding=1, name='branch3x3dbl_2')(bd)
        bd = jnp.concatenate(
            [
                BasicConv(384, (1, 3), padding=(0, 1), name='branch3x3dbl_3a')(bd),
                BasicConv(384, (3, 1), padding=(1, 0), name='branch3x3dbl_3b')(bd),
            ],
            axis=-1,
        )
        pooled = {'avg': _avg_pool_3x3, 'max': lambda v: _max_pool_3x3(v, stride=1)}[self.pool](x)
        bp = BasicConv(192, 1, name='branch_pool')(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
    """Images [N, 299, 299, 3] in [-1, 1] -> {'pool', 'logits', 'logits_unbiased'}.

    'pool' [N, 2048] are FID's features; 'logits' [N, 1008] = pool @ W + b, and
    'logits_unbiased' = pool @ W without the bias: what OpenAI's Inception Score
    code reads (the softmax of pool3 times the weight matrix) and torch-fidelity
    calls logits_unbiased, so the Inception Score is computed from those.
    """

    @nn.compact
    def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
        x = BasicConv(32, 3, stride=2, name='Conv2d_1a_3x3')(x)
        x = BasicConv(32, 3, name='Conv2d_2a_3x3')(x)
        x = BasicConv(64, 3, padding=1, name='Conv2d_2b_3x3')(x)
        x = _max_pool_3x3(x, stride=2)
        x = BasicConv(80, 1, name='Conv2d_3b_1x1')(x)
        x = BasicConv(192, 3, name='Conv2d_4a_3x3')(x)
        x = _max_pool_3x3(x, stride=2)
        x = InceptionA(32, name='Mixed_5b')(x)
        x = InceptionA(64, name='Mixed_5c')(x)
        x = InceptionA(64, name='Mixed_5d')(x)
        x = InceptionB(name='Mixed_6a')(x)
        x = InceptionC(128, name='Mixed_6b')(x)
        x = InceptionC(160, name='Mixed_6c')(x)
        x = InceptionC(160, name='Mixed_6d')(x)
        x = InceptionC(192, name='Mixed_6e')(x)
        x = InceptionD(name='Mixed_7a')(x)
        x = InceptionE('avg', name='Mixed_7b')(x)
        x = InceptionE('max', name='Mixed_7c')(x)
        pool = jnp.mean(x, axis=(1, 2))
        logits = nn.Dense(NUM_CLASSES, precision=_HIGHEST, name='fc')(pool)
        kernel = self.variables['params']['fc']['kernel']
        unbiased = jnp.dot(pool, kernel, precision=_HIGHEST)
        return {'pool': pool, 'logits': logits, 'logits_unbiased': unbiased}


def preprocess(images: jax.Array) -> jax.Array:
    """uint8 images [N, H, W, 3] -> float32 [N, 299, 299, 3] in [-1, 1], as pytorch-fid.

    Scales to [0, 1], resizes by RESIZE_METHOD and maps to [-1, 1]. jax.image.resize's
    linear kernel without antialiasing samples at the same half-pixel centres as
    PyTorch's align_corners=False and renormalises at the borders, which equals
    PyTorch's edge clamping; its default (antialias=True) would low-pass filter when
    downsampling, which PyTorch does not. A 299x299 input is not resampled at all.
    """
    if images.dtype != jnp.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise TypeError(f'expected uint8 images [N, H, W, 3], got {images.dtype} {images.shape}')
    x = images.astype(jnp.float32) / 255.0
    x = jax.image.resize(
        x, (x.shape[0], INPUT_SIZE, INPUT_SIZE, 3), method='linear', antialias=False
    )
    return 2.0 * x - 1.0


def fid_inception_apply(variables, images_uint8: jax.Array) -> dict[str, jax.Array]:
    """pytorch-fid's InceptionV3(resize_input=True, normalize_input=True) on uint8 NHWC images.

    Returns {'pool': [N, 2048], 'logits': [N, 1008], 'logits_unbiased': [N, 1008]};
    jittable.
    """
    return FIDInceptionV3().apply(variables, preprocess(images_uint8))


class FIDInceptionWeights(NamedTuple):
    """Converted weights: Flax `variables` and the SHA-256 of the .pth they came from."""

    variables: dict
    sha256: str


def load_fid_inception(path: str) -> FIDInceptionWeights:
    """Loads an .npz written by convert_inception; checks every variable's name and shape.

    Raises FIDWeightsNotFoundError (a FileNotFoundError) saying where to get the
    weights when `path` does not exist.
    """
    if not os.path.exists(path):
        raise FIDWeightsNotFoundError(missing_weights_message(path, 'npz'))
    with np.load(path) as npz:
        flat = {name: npz[name] for name in npz.files}
    sha256 = str(flat.pop(SHA256_KEY))
    expected = jax.eval_shape(
        FIDInceptionV3().init,
        jax.random.key(0),
        jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32),
    )
    expected = {
        '/'.join(k.key for k in keys): leaf.shape
        for keys, leaf in jax.tree_util.tree_leaves_with_path(expected)
    }
    got = {name: value.shape for name, value in flat.items()}
    if got != expected:
        missing = sorted(set(expected) - set(got))
        unexpected = sorted(set(got) - set(expected))
        wrong = sorted(n for n in set(got) & set(expected) if got[n] != expected[n])
        raise ValueError(
            f'{path} does not hold FID Inception variables: missing {missing[:5]}, '
            f'unexpected {unexpected[:5]}, wrong shape {wrong[:5]}'
        )
    variables: dict = {}
    for name, value in flat.items():
        *scopes, leaf = name.split('/')
        node = variables
        for scope in scopes:
            node = node.setdefault(scope, {})
        node[leaf] = jnp.asarray(value)
    return FIDInceptionWeights(variables, sha256)
