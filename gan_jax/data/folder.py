"""A folder of image files, optionally one subfolder per class."""

import pathlib

import numpy as np
from absl import logging
from PIL import Image

from gan_jax.data.source import ImageSource

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')
NAMED_CORRUPT = 5  # Unreadable files named in an error or log line.


class CorruptImageError(ValueError):
    """An image file in the folder cannot be read."""


def unreadable(path: pathlib.Path) -> str | None:
    """Why PIL cannot read `path`'s header and chunks (PIL's `verify`), or None if it can.

    `verify` reads the whole file without decoding the pixels: it finds files that are not
    images and truncated PNGs, but not a JPEG truncated inside its pixel data.
    """
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, struct.error...
        return f'{type(error).__name__}: {error}'
    return None


def image_files(root: pathlib.Path) -> list[pathlib.Path]:
    """Every file under `root` (recursively) with an IMAGE_EXTENSIONS suffix, sorted."""
    return sorted(
        p for p in root.rglob('*') if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )


def _listing(problems: list[tuple[pathlib.Path, str]]) -> str:
    named = '\n'.join(f'  {path}: {why}' for path, why in problems[:NAMED_CORRUPT])
    more = len(problems) - NAMED_CORRUPT
    return named + (f'\n  ... and {more} more' if more > 0 else '')


class FolderSource(ImageSource):
    """All images under `root` (recursively, sorted), decoded on read: a big folder costs no memory.

    If every image lies inside a subfolder, the label is the index of its immediate subfolder in
    sorted order and num_classes counts those subfolders; otherwise labels are 0.

    Every file is checked with `unreadable` here, before training: an unreadable one raises
    CorruptImageError naming it, or with `skip_corrupt` is left out, with the count and the
    first few names logged (`skipped` lists them). A file that passes the check but cannot be
    decoded (a truncated JPEG) raises CorruptImageError naming it when it is read.
    """

    def __init__(
        self,
        root: pathlib.Path,
        *,
        resolution: int,
        channels: int | None,
        skip_corrupt: bool = False,
    ):
        files = image_files(root)
        if not files:
            raise FileNotFoundError(f'No images ({", ".join(IMAGE_EXTENSIONS)}) under {root}.')
        classes = [f.relative_to(root).parts[0] for f in files]
        if all(len(f.relative_to(root).parts) > 1 for f in files):
            names = sorted(set(classes))
            labels, num_classes = [names.index(c) for c in classes], len(names)
        else:
            labels, num_classes = [0] * len(files), None
        problems = [(f, why) for f in files if (why := unreadable(f)) is not None]
        if problems and not skip_corrupt:
            raise CorruptImageError(
                f'{len(problems)} of {len(files)} image files under {root} cannot be read:\n'
                f'{_listing(problems)}\n'
                'Remove or replace them, or set data.skip_corrupt=True to train without them.'
            )
        if problems:
            logging.warning(
                'Skipped %d of %d image files under %s that cannot be read '
                '(data.skip_corrupt=True):\n%s',
                len(problems),
                len(files),
                root,
                _listing(problems),
            )
        bad = {f for f, _ in problems}
        kept = [i for i, f in enumerate(files) if f not in bad]
        if not kept:
            raise CorruptImageError(
                f'None of the {len(files)} image files under {root} can be read, so '
                f'data.skip_corrupt=True leaves nothing to train on:\n{_listing(problems)}'
            )
        super().__init__(
            name=f'folder:{root}',
            resolution=resolution,
            channels=1 if channels == 1 else 3,
            num_classes=num_classes,
        )
        self._files = [files[i] for i in kept]
        self._labels = [labels[i] for i in kept]
        self.skipped = [f for f, _ in problems]

    def __len__(self) -> int:
        return len(self._files)

    def label(self, index: int) -> int:
        return self._labels[index]

    def read(self, index: int) -> tuple[np.ndarray, int]:
        path = self._files[index]
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert('L' if self.image_shape[2] == 1 else 'RGB'))
        except Exception as error:
            raise CorruptImageError(
                f'{path} cannot be decoded ({type(error).__name__}: {error}); its header passed '
                'the check at start-up. Remove or replace it.'
            ) from error
        return pixels.reshape(*pixels.shape[:2], -1), self._labels[index]
