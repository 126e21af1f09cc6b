"""Stacked MNIST: three independent MNIST digits as the R, G, B channels (1000 modes).

The benchmark of Metz et al. (2017), VEEGAN and PacGAN. Built as PacGAN's VEEGAN experiment
builds it (github.com/fjxmlzn/PacGAN, stacked_MNIST_experiments/VEEGAN_experiment: config.py
num_training_sample = 128000, model.py load_mnist): a fixed set of 128,000 examples, each channel
j an MNIST digit drawn uniformly with replacement from the 70,000 train and test digits, at
MNIST's 28x28.

Where this differs: PacGAN draws the digit indices from numpy's global RNG (and resamples the
set once more per packed slot); here they come from np.random.default_rng(seed), so the set is
fixed for a seed and packing is left to the model. Only the IDX files keep PacGAN's pool order
(train then test, as published); TFDS stores MNIST shuffled, so the same seed stacks other (equally
distributed) digits. Other resolutions are resized (Lanczos, like every source) rather than
zero-padded as some later papers pad to 32.
"""

import numpy as np

from gan_jax.data.image_ops import center_crop_resize
from gan_jax.data.source import ImageSource, SourceInfo

STACKED_MNIST_SIZE = 128_000
NUM_CLASSES = 1000  # Modes: one per triple of digits.
# Mode of an example: 100 * digit(R) + 10 * digit(G) + digit(B), as gan_jax.metrics.modes.
DIGIT_WEIGHTS = np.array([100, 10, 1])


def _name(digits_name: str) -> str:
    return f'stacked_mnist:{digits_name}'


def stacked_mnist_info(digits_name: str, resolution: int) -> SourceInfo:
    """StackedMnistSource's name, shape, classes and size, without its digits."""
    return SourceInfo(
        _name(digits_name), (resolution, resolution, 3), NUM_CLASSES, STACKED_MNIST_SIZE
    )


class StackedMnistSource(ImageSource):
    """Example i stacks digits `digit_indices[i]` of `digits`; label 100 d_R + 10 d_G + d_B.

    `digits` is any grey 10-class source (MNIST train+test from TFDS or the IDX files); its own
    resolution is ignored, since digits are read as stored and the stack is resized here.
    """

    def __init__(
        self, digits: ImageSource, *, resolution: int, size: int = STACKED_MNIST_SIZE, seed: int = 0
    ):
        if digits.num_classes != 10 or digits.image_shape[2] != 1:
            raise ValueError(
                f'Stacked MNIST needs a grey source of 10 digit classes, got {digits}.'
            )
        super().__init__(
            name=_name(digits.name), resolution=resolution, channels=3, num_classes=NUM_CLASSES
        )
        self.digits = digits
        self.digit_indices = np.random.default_rng(seed).integers(0, len(digits), size=(size, 3))

    def __len__(self) -> int:
        return len(self.digit_indices)

    def read(self, index: int) -> tuple[np.ndarray, int]:
        images, labels = zip(*(self.digits.read(j) for j in self.digit_indices[index]))
        return np.concatenate(images, axis=-1), int(DIGIT_WEIGHTS @ np.asarray(labels))

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The whole set as ``ImageSource.as_arrays``, reading each digit once (not once per
        channel of every example that stacks it)."""
        used = np.unique(self.digit_indices)
        digits, labels = zip(*(self.digits.read(j) for j in used))
        digits, labels = np.stack(digits), np.asarray(labels)
        rows = np.searchsorted(used, self.digit_indices)  # (N, 3) rows of `digits`.
        images = np.concatenate([digits[rows[:, channel]] for channel in range(3)], axis=-1)
        if images.shape[1:] != self.image_shape:
            images = np.stack([center_crop_resize(image, self.image_shape[0]) for image in images])
        return {'image': images, 'label': (labels[rows] @ DIGIT_WEIGHTS).astype(np.int32)}
