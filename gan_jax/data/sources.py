"""Turns the `data` config into an ImageSource."""

import pathlib

from gan_jax.data.folder import FolderSource
from gan_jax.data.in_memory import load_digits, load_npz
from gan_jax.data.source import ImageSource
from gan_jax.data.tfds_source import load_tfds

SOURCES = ("digits", "tfds", "folder", "npz")


def get_source(data_config, *, resolution: int, split: str = "train") -> ImageSource:
    """Builds the source named by `data_config.source` at `resolution` x `resolution`.

    `split` only applies to `tfds`; digits, folders and .npz files are a single split.
    """
    source, channels = data_config.source, data_config.channels
    if channels not in (None, 1, 3):
        raise ValueError(f"data.channels must be None, 1 or 3, got {channels!r}.")
    if source == "digits":
        return load_digits(resolution=resolution, channels=channels)
    if source == "tfds":
        return load_tfds(data_config.name, split=split, data_dir=data_config.tfds_data_dir,
                         download=data_config.download, resolution=resolution, channels=channels)
    if source == "folder":
        return FolderSource(_existing_path(data_config.path, source, pathlib.Path.is_dir),
                            resolution=resolution, channels=channels)
    if source == "npz":
        return load_npz(_existing_path(data_config.path, source, pathlib.Path.is_file),
                        resolution=resolution, channels=channels)
    raise ValueError(f"Unknown data source {source!r}; expected one of {', '.join(SOURCES)}.")


def _existing_path(path: str | None, source: str, exists) -> pathlib.Path:
    """`path` as a Path, or FileNotFoundError naming it when it is unset or not there."""
    if path is None or not exists(pathlib.Path(path)):
        raise FileNotFoundError(
            f"data.source={source!r} needs data.path to be an existing "
            f"{'folder' if source == 'folder' else '.npz file'}, got {path!r}.")
    return pathlib.Path(path)
