"""What the start-up check of a folder dataset costs, against decoding every image.

    python benchmarks/folder_check.py [--path FOLDER | --n 50000 --size 32 --format png]

Without ``--path``, writes ``--n`` random RGB images of ``--size`` pixels to a
temporary folder first (random pixels: the largest files of that size). Times
listing the files (``gan_jax.data.folder.image_files``), ``folder.unreadable`` on
each (what ``FolderSource`` runs before training: PIL's ``verify``) and a full decode. The
second pass over the files reads them from the page cache; run it after dropping
the cache to see a cold disk.
"""

import argparse
import pathlib
import tempfile
import time

import numpy as np
from PIL import Image

from gan_jax.data import folder


def _write_images(root, n, size, fmt):
    base = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    for i in range(n):
        Image.fromarray(np.roll(base, i, axis=0)).save(root / f'{i:06d}.{fmt}')


def _decode(path):
    with Image.open(path) as image:
        image.load()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--path')
    parser.add_argument('--n', type=int, default=50_000)
    parser.add_argument('--size', type=int, default=32)
    parser.add_argument('--format', default='png', choices=['png', 'jpg'])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = pathlib.Path(args.path or scratch)
        if not args.path:
            _write_images(root, args.n, args.size, args.format)
        start = time.perf_counter()
        files = folder.image_files(root)
        print(f'{len(files)} files under {root}: listing {time.perf_counter() - start:.2f} s')
        for name, fn in (('start-up check', folder.unreadable), ('full decode', _decode)):
            start = time.perf_counter()
            for path in files:
                fn(path)
            print(f'{name}: {time.perf_counter() - start:.2f} s')


if __name__ == '__main__':
    main()
