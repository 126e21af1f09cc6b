"""The random-access image source that every dataset is turned into."""

import abc
from typing import NamedTuple

import numpy as np

from gan_jax.data.image_ops import center_crop_resize, convert_channels


class SourceInfo(NamedTuple):
    """What a dry run reports of a dataset: all a run's models need, without its examples."""

    name: str
    image_shape: tuple[int, ...]
    num_classes: int | None
    size: int | None  # Number of examples; None where only the metadata was read.


class ImageSource(abc.ABC):
    """A grain random-access source: `source[i]` is {"image": uint8 (R, R, C), "label": int32}.

    Subclasses only read example i at whatever size it is stored; cropping, resizing and
    channel conversion happen here, in grain's reader threads, identically for every dataset.
    `label` is 0 when the dataset has no labels (then `num_classes` is None).
    """

    def __init__(self, *, name: str, resolution: int, channels: int, num_classes: int | None):
        self.name = name
        self.image_shape = (resolution, resolution, channels)
        self.num_classes = num_classes

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def read(self, index: int) -> tuple[np.ndarray, int]:
        """Returns example `index` as stored: a uint8 (H, W, 1|3) image and its integer label."""

    def label(self, index: int) -> int:
        """The label of example `index` (subclasses that store labels apart skip the image)."""
        return int(self.read(index)[1])

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        image, label = self.read(index)
        image = convert_channels(image, self.image_shape[2])
        return {'image': center_crop_resize(image, self.image_shape[0]), 'label': np.int32(label)}

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The whole source as {'image': [N, ...], 'label': int32 [N]}, each row equal to
        ``self[i]`` (``data.on_device``)."""
        examples = [self[i] for i in range(len(self))]
        return {
            'image': np.stack([e['image'] for e in examples]),
            'label': np.asarray([e['label'] for e in examples], np.int32),
        }

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(name={self.name!r}, size={len(self)}, '
            f'image_shape={self.image_shape}, num_classes={self.num_classes})'
        )


class ArraySource(ImageSource):
    """Images held in memory as one uint8 (N, H, W, C) array, with (N,) integer labels."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        name: str,
        resolution: int,
        channels: int,
        num_classes: int | None,
    ):
        super().__init__(
            name=name, resolution=resolution, channels=channels, num_classes=num_classes
        )
        self._images = images
        self._labels = labels

    def __len__(self) -> int:
        return len(self._images)

    def read(self, index: int) -> tuple[np.ndarray, int]:
        return self._images[index], self._labels[index]

    def label(self, index: int) -> int:
        return int(self._labels[index])
