"""Turns the `data` config into an ImageSource (or a MixtureSource of 2-D points)."""

import pathlib

from gan_jax.data.folder import FolderSource
from gan_jax.data.idx import load_mnist_idx
from gan_jax.data.in_memory import load_digits, load_npz
from gan_jax.data.mixtures import MIXTURES, MixtureSource
from gan_jax.data.source import ImageSource, SourceInfo
from gan_jax.data.stacked_mnist import StackedMnistSource, stacked_mnist_info
from gan_jax.data.tfds_source import load_tfds, tfds_info

SOURCES = ('digits', 'tfds', 'folder', 'npz', *MIXTURES, 'stacked_mnist')


def get_source(
    data_config, *, resolution: int, split: str = 'train'
) -> ImageSource | MixtureSource:
    """Builds the source named by `data_config.source` at `resolution` x `resolution`.

    `split` only applies to `tfds`; the other sources are a single split. The mixtures (ring,
    grid) are 2-D points, so resolution does not apply to them. Stacked MNIST draws its digits
    from MNIST train+test: the four original IDX files in the folder `data.path` if it is set,
    else TFDS's `mnist` (`data.tfds_data_dir`, `data.download`). These three synthetic sets are
    drawn with seed 0, the same set for every run; the run seed only orders them.
    """
    source, channels = data_config.source, _checked_channels(data_config)
    if source == 'digits':
        return load_digits(resolution=resolution, channels=channels)
    if source == 'tfds':
        return load_tfds(
            data_config.tfds_name,
            split=split,
            data_dir=data_config.tfds_data_dir,
            download=data_config.download,
            resolution=resolution,
            channels=channels,
        )
    if source == 'folder':
        return FolderSource(
            _existing_path(data_config.path, source, pathlib.Path.is_dir),
            resolution=resolution,
            channels=channels,
            skip_corrupt=data_config.skip_corrupt,
        )
    if source == 'npz':
        return load_npz(
            _existing_path(data_config.path, source, pathlib.Path.is_file),
            resolution=resolution,
            channels=channels,
        )
    if source in MIXTURES:
        if channels is not None:
            raise ValueError(
                f'data.source={source!r} is 2-D points; data.channels must be None, '
                f'got {channels!r}.'
            )
        return MixtureSource(MIXTURES[source])
    if source == 'stacked_mnist':
        return _stacked_mnist(data_config, resolution)
    raise ValueError(f'Unknown data source {source!r}; expected one of {", ".join(SOURCES)}.')


def source_info(data_config, *, resolution: int) -> SourceInfo:
    """What a dry run reports of `data_config`'s dataset, without reading or downloading what
    is not at hand: TFDS datasets (also Stacked MNIST's default digits) from TFDS's metadata,
    prepared or not; the other sources are opened as `get_source` opens them (built in, or the
    user's own files).
    """
    channels = _checked_channels(data_config)
    if data_config.source == 'tfds':
        return tfds_info(
            data_config.tfds_name,
            split='train',
            data_dir=data_config.tfds_data_dir,
            resolution=resolution,
            channels=channels,
        )
    if data_config.source == 'stacked_mnist' and data_config.path is None:
        _check_stacked_mnist_channels(channels)
        digits = tfds_info(
            'mnist',
            split='train+test',
            data_dir=data_config.tfds_data_dir,
            resolution=28,
            channels=None,
        )
        return stacked_mnist_info(digits.name, resolution)
    source = get_source(data_config, resolution=resolution)
    return SourceInfo(source.name, source.image_shape, source.num_classes, len(source))


def _checked_channels(data_config) -> int | None:
    """data.channels, after the checks of the settings every source reads."""
    channels = data_config.channels
    if channels not in (None, 1, 3):
        raise ValueError(f'data.channels must be None, 1 or 3, got {channels!r}.')
    if data_config.on_device and not data_config.reshuffle_each_epoch:
        raise ValueError(
            "data.reshuffle_each_epoch=False orders the host stream's epochs, but "
            'data.on_device=True draws every example with replacement (no epochs); '
            'set one of them back.'
        )
    if data_config.skip_corrupt and data_config.source != 'folder':
        raise ValueError(
            f"data.skip_corrupt=True applies to data.source='folder' (image files that may not "
            f'decode), not {data_config.source!r}; set it to False.'
        )
    return channels


def _check_stacked_mnist_channels(channels):
    if channels == 1:
        raise ValueError(
            "data.source='stacked_mnist' is one digit per RGB channel; "
            'data.channels must be None or 3, got 1.'
        )


def _existing_path(path: str | None, source: str, exists) -> pathlib.Path:
    """`path` as a Path, or FileNotFoundError naming it when it is unset or not there."""
    if path is None or not exists(pathlib.Path(path)):
        raise FileNotFoundError(
            f'data.source={source!r} needs data.path to be an existing '
            f'{".npz file" if source == "npz" else "folder"}, got {path!r}.'
        )
    return pathlib.Path(path)


def _stacked_mnist(data_config, resolution: int) -> StackedMnistSource:
    """Stacked MNIST over the IDX files in data.path, or over TFDS's mnist if it is None."""
    _check_stacked_mnist_channels(data_config.channels)
    if data_config.path is None:
        digits = load_tfds(
            'mnist',
            split='train+test',
            data_dir=data_config.tfds_data_dir,
            download=data_config.download,
            resolution=28,
            channels=None,
        )
    else:
        digits = load_mnist_idx(
            _existing_path(data_config.path, 'stacked_mnist', pathlib.Path.is_dir)
        )
    return StackedMnistSource(digits, resolution=resolution)
