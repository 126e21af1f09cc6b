"""Feature extractors behind the metrics, one interface for all of them.

An extractor maps uint8 NHWC images to ``{'features', 'logits'}``. Its name, weight
hash and resize method go into the protocol of every number computed from it, and
its ``label`` goes into the metric's name: plain ``FID`` only for the FID
Inception network, ``FID-LeNet-MNIST`` and the like for gan_jax's own classifiers.
"""

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gan_jax.metrics import classifiers

INCEPTION = 'inception'
_CLASSIFIER_LABELS = {
    'lenet_mnist': '-LeNet-MNIST',
    'lenet_fashion_mnist': '-LeNet-FashionMNIST',
    'cnn_cifar10': '-CNN-CIFAR10',
}
EXTRACTORS = (INCEPTION, *_CLASSIFIER_LABELS)
# Where the converted FID Inception weights are looked for when the config names none.
DEFAULT_INCEPTION_WEIGHTS = os.path.join('~', '.cache', 'gan_jax', 'fid_inception.npz')


@dataclasses.dataclass(frozen=True)
class Extractor:
    name: str
    label: str  # Appended to metric names: '' for Inception, '-LeNet-MNIST', ...
    weights_sha256: str
    resize: str
    variables: Any  # Passed to ``apply`` as an argument, so large weights are not
    # baked into the compiled program as constants.
    apply: Callable  # (variables, uint8 images) -> {'features': [N, d], 'logits': [N, K]}
    # What ``logits`` are (the Inception Score's input), for the protocol.
    logits: str = 'the classifier head, with its bias'
    accepts: str = ''  # The images it reads, for error messages.

    def check_input(self, image_shape):
        """The feature dimension for images of ``image_shape`` (H, W, C); an extractor that
        cannot read them fails here, naming itself, the shape and what it accepts."""
        images = jax.ShapeDtypeStruct((1, *image_shape), jnp.uint8)
        try:
            out = jax.eval_shape(self.apply, self.variables, images)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f'eval.extractor={self.name!r} cannot read the data: images of shape '
                f'{tuple(image_shape)}; it accepts {self.accepts}. Choose another '
                f'eval.extractor ({", ".join(EXTRACTORS)}) or eval.every_steps=0.'
            ) from e
        return out['features'].shape[-1]


def _inception(weights_path):
    from gan_jax.metrics import inception  # Imported only when used.

    path = os.path.expanduser(
        weights_path or os.environ.get('GAN_JAX_INCEPTION_WEIGHTS') or DEFAULT_INCEPTION_WEIGHTS
    )
    try:
        weights = inception.load_fid_inception(path)
    except FileNotFoundError as e:
        raise type(e)(
            f'{e}\nor point eval.inception_weights (or $GAN_JAX_INCEPTION_WEIGHTS) '
            f'at the converted file; --config.eval.every_steps=0 trains without '
            f'evaluation.'
        ) from None

    def apply(variables, images):
        out = inception.fid_inception_apply(variables, images)
        return {'features': out['pool'], 'logits': out['logits_unbiased']}

    return Extractor(
        INCEPTION,
        '',
        weights.sha256,
        inception.RESIZE_METHOD,
        weights.variables,
        apply,
        logits="pool3 @ W without the bias (OpenAI's Inception Score code)",
        accepts='uint8 RGB images of any size, [H, W, 3] (resized to 299x299)',
    )


def _classifier(name):
    apply_fn, info = classifiers.load_classifier(name)
    height, width, channels = info['input_shape']
    return Extractor(
        name,
        _CLASSIFIER_LABELS[name],
        info['sha256'],
        info['resize'],
        {},
        lambda variables, images: apply_fn(images),
        accepts=f'uint8 images of shape ({height}, {width}, {channels}) only (no resizing)',
    )


def get_extractor(name, *, inception_weights=None):
    """Loads extractor ``name``; fails at once, saying how to get missing weights."""
    if name == INCEPTION:
        return _inception(inception_weights)
    if name in _CLASSIFIER_LABELS:
        return _classifier(name)
    raise ValueError(f'eval.extractor={name!r} is not one of {", ".join(EXTRACTORS)}.')
