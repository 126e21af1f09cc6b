"""MNIST's original IDX .gz files, read without TFDS (the shared offline data holds them)."""

import gzip
import pathlib

import numpy as np

from gan_jax.data.source import ArraySource

IDX_UINT8 = 0x08
# The published file names; train first, then t10k (the test set).
MNIST_IDX_FILES = tuple(
    f'{split}-{kind}.gz'
    for split in ('train', 't10k')
    for kind in ('images-idx3-ubyte', 'labels-idx1-ubyte')
)


def read_idx(path: pathlib.Path) -> np.ndarray:
    """Reads a gzipped IDX file of unsigned bytes (the MNIST format) as a uint8 array.

    Header: two zero bytes, a type byte (0x08 = uint8), the number of dimensions, then each
    dimension as a big-endian int32.
    """
    data = gzip.decompress(pathlib.Path(path).read_bytes())
    if len(data) < 4 or data[:2] != b'\x00\x00' or data[2] != IDX_UINT8:
        raise ValueError(
            f'{path} is not a uint8 IDX file: bad magic number {data[:4].hex()} '
            f'(expected 0000{IDX_UINT8:02x}nn).'
        )
    offset = 4 + 4 * data[3]
    if len(data) < offset:
        raise ValueError(f'{path}: truncated IDX header.')
    shape = tuple(int(d) for d in np.frombuffer(data, '>i4', count=data[3], offset=4))
    if len(data) - offset != np.prod(shape):
        raise ValueError(
            f'{path}: header says shape {shape} but the file holds {len(data) - offset} values.'
        )
    return np.frombuffer(data, np.uint8, offset=offset).reshape(shape)


def load_mnist_idx(folder: pathlib.Path) -> ArraySource:
    """MNIST's train then test images (70,000) from the four IDX files in `folder`, as stored.

    Both splits, in this order, because that is the digit pool Stacked MNIST draws from (see
    stacked_mnist.py). Fashion-MNIST has the same files and loads the same way.
    """
    folder = pathlib.Path(folder)
    missing = [name for name in MNIST_IDX_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f'{folder} lacks the MNIST IDX files {missing}; expected all of '
            f'{list(MNIST_IDX_FILES)}.'
        )
    images, labels = [], []
    for split in ('train', 't10k'):
        images.append(read_idx(folder / f'{split}-images-idx3-ubyte.gz'))
        labels.append(read_idx(folder / f'{split}-labels-idx1-ubyte.gz'))
        if images[-1].ndim != 3 or labels[-1].shape != images[-1].shape[:1]:
            raise ValueError(
                f'{folder}: {split} images of shape {images[-1].shape} and labels of '
                f'shape {labels[-1].shape} are not (N, H, W) with one label each.'
            )
    images, labels = np.concatenate(images)[..., None], np.concatenate(labels)
    return ArraySource(
        images,
        labels,
        name=f'idx:{folder}',
        resolution=images.shape[1],
        channels=1,
        num_classes=int(labels.max()) + 1,
    )
