"""TFDS datasets, read by random access from array_record files (no TensorFlow at read time)."""

import socket
import urllib.parse

import numpy as np

from gan_jax.data.source import ImageSource, SourceInfo


class DatasetUnavailableError(RuntimeError):
    """A TFDS dataset is not prepared and could not be downloaded."""


class TfdsSource(ImageSource):
    """One split of a prepared TFDS dataset with an "image" feature and optionally a "label"."""

    def __init__(self, builder, *, split: str, resolution: int, channels: int | None):
        super().__init__(**_attributes(builder, split, resolution, channels))
        self._data = builder.as_data_source(split=split)

    def __len__(self) -> int:
        return len(self._data)

    def read(self, index: int) -> tuple[np.ndarray, int]:
        example = self._data[index]
        return example['image'], example.get('label', 0)


def _attributes(builder, split, resolution, channels):
    """ImageSource's attributes from the builder's metadata (known before it is prepared)."""
    features = builder.info.features
    label = features['label'] if 'label' in features else None
    return dict(
        name=f'tfds:{builder.name}/{split}',
        resolution=resolution,
        channels=channels or features['image'].shape[-1],
        num_classes=getattr(label, 'num_classes', None),
    )


def _builder(name, data_dir):
    # Imported here: TFDS is slow to import and only the TFDS sources need it.
    import tensorflow_datasets as tfds

    return tfds.builder(name, data_dir=data_dir, file_format='array_record')


def tfds_info(
    name: str, *, split: str, data_dir: str | None, resolution: int, channels: int | None
) -> SourceInfo:
    """`name`'s shape and classes from TFDS's metadata; nothing is read or downloaded.

    The size is known only once the dataset is prepared (None before).
    """
    builder = _builder(name, data_dir)
    attributes = _attributes(builder, split, resolution, channels)
    size = len(builder.as_data_source(split=split)) if builder.is_prepared() else None
    return SourceInfo(
        attributes['name'],
        (resolution, resolution, attributes['channels']),
        attributes['num_classes'],
        size,
    )


def load_tfds(
    name: str,
    *,
    split: str,
    data_dir: str | None,
    download: bool,
    resolution: int,
    channels: int | None,
) -> TfdsSource:
    """Opens `name`, preparing it first if allowed; raises DatasetUnavailableError otherwise."""
    builder = _builder(name, data_dir)
    if not builder.is_prepared():
        reason = _download_and_prepare(builder) if download else 'download=False'
        if not builder.is_prepared():
            raise DatasetUnavailableError(
                f'TFDS dataset {name!r} is not prepared in data_dir {builder.data_dir_root} and '
                f'cannot be downloaded offline ({reason}). Prepare it from its original files:\n'
                f'  python -m gan_jax.data.prepare_tfds --name {name} '
                f'--source_dir DIR_WITH_ORIGINAL_FILES --data_dir {builder.data_dir_root}'
            )
    return TfdsSource(builder, split=split, resolution=resolution, channels=channels)


def _download_and_prepare(builder) -> str:
    """Downloads and prepares the dataset; returns why that failed, or "" if it did not."""
    # Offline, TFDS retries each download for minutes before failing; a name lookup fails at once.
    for url in builder.url_infos or {}:
        host = urllib.parse.urlparse(url).hostname
        try:
            socket.getaddrinfo(host, 443)
        except OSError as error:
            return f'cannot resolve download host {host}: {error}'
    try:
        builder.download_and_prepare(file_format='array_record')
    except Exception as error:  # Offline, quota, checksum: any failure means the same here.
        return f'download failed: {error!r}'
    return ''
