"""A folder of image files, optionally one subfolder per class."""

import pathlib

import numpy as np
from PIL import Image

from gan_jax.data.source import ImageSource

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')


class FolderSource(ImageSource):
    """All images under `root` (recursively, sorted), decoded on read: a big folder costs no memory.

    If every image lies inside a subfolder, the label is the index of its immediate subfolder in
    sorted order and num_classes counts those subfolders; otherwise labels are 0.
    """

    def __init__(self, root: pathlib.Path, *, resolution: int, channels: int | None):
        files = sorted(
            p for p in root.rglob('*') if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )
        if not files:
            raise FileNotFoundError(f'No images ({", ".join(IMAGE_EXTENSIONS)}) under {root}.')
        classes = [f.relative_to(root).parts[0] for f in files]
        if all(len(f.relative_to(root).parts) > 1 for f in files):
            names = sorted(set(classes))
            labels, num_classes = [names.index(c) for c in classes], len(names)
        else:
            labels, num_classes = [0] * len(files), None
        super().__init__(
            name=f'folder:{root}',
            resolution=resolution,
            channels=1 if channels == 1 else 3,
            num_classes=num_classes,
        )
        self._files = files
        self._labels = labels

    def __len__(self) -> int:
        return len(self._files)

    def label(self, index: int) -> int:
        return self._labels[index]

    def read(self, index: int) -> tuple[np.ndarray, int]:
        with Image.open(self._files[index]) as image:
            pixels = np.asarray(image.convert('L' if self.image_shape[2] == 1 else 'RGB'))
        return pixels.reshape(*pixels.shape[:2], -1), self._labels[index]
