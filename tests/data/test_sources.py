import socket

import pytest

from gan_jax.data import SOURCES, DatasetUnavailableError, SourceInfo, get_source, source_info


def test_unknown_source_lists_known_ones(data_config):
    with pytest.raises(ValueError) as error:
        get_source(data_config(source='imagenet_folder'), resolution=8)
    assert "'imagenet_folder'" in str(error.value)
    assert all(name in str(error.value) for name in SOURCES)


def test_bad_channels(data_config):
    with pytest.raises(ValueError, match='channels'):
        get_source(data_config(channels=4), resolution=8)


@pytest.mark.parametrize('read', [get_source, source_info])
def test_skip_corrupt_applies_to_folders_only(data_config, read):
    with pytest.raises(ValueError, match="data.skip_corrupt=True applies to data.source='folder'"):
        read(data_config(skip_corrupt=True), resolution=8)


@pytest.mark.parametrize('read', [get_source, source_info])
def test_epoch_order_needs_the_host_stream(data_config, read):
    config = data_config(source='ring', on_device=True, reshuffle_each_epoch=False)
    with pytest.raises(ValueError, match='data.reshuffle_each_epoch=False .* data.on_device=True'):
        read(config, resolution=8)


@pytest.mark.parametrize('source', ['npz', 'folder'])
def test_path_must_be_set(data_config, source):
    with pytest.raises(FileNotFoundError, match=f"data.source='{source}' needs data.path"):
        get_source(data_config(source=source), resolution=8)


def test_unprepared_tfds_dataset_without_download(data_config, tmp_path):
    config = data_config(source='tfds', tfds_name='mnist', tfds_data_dir=str(tmp_path))
    with pytest.raises(DatasetUnavailableError) as error:
        get_source(config, resolution=28)
    message = str(error.value)
    assert "'mnist'" in message and str(tmp_path) in message and 'offline' in message
    assert 'python -m gan_jax.data.prepare_tfds --name mnist' in message


def test_unreachable_download_fails_fast(data_config, tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise socket.gaierror(-2, 'Name or service not known')

    monkeypatch.setattr(socket, 'getaddrinfo', offline)
    config = data_config(
        source='tfds', tfds_name='mnist', tfds_data_dir=str(tmp_path), download=True
    )
    with pytest.raises(DatasetUnavailableError, match='cannot resolve download host'):
        get_source(config, resolution=28)


def _offline(monkeypatch):
    """Any download would first resolve its host: make that fail, so none can happen."""

    def offline(*args, **kwargs):
        raise socket.gaierror(-2, 'Name or service not known')

    monkeypatch.setattr(socket, 'getaddrinfo', offline)


@pytest.mark.parametrize('channels, resolution', [(None, 32), (1, 64)])
def test_info_of_an_unprepared_tfds_dataset_comes_from_its_metadata(
    data_config, tmp_path, monkeypatch, channels, resolution
):
    _offline(monkeypatch)
    config = data_config(
        source='tfds',
        tfds_name='cifar10',
        tfds_data_dir=str(tmp_path),
        download=True,
        channels=channels,
    )
    # CIFAR-10: RGB, 10 classes; the size is unknown until it is prepared.
    assert source_info(config, resolution=resolution) == SourceInfo(
        'tfds:cifar10/train', (resolution, resolution, channels or 3), 10, None
    )
    assert list(tmp_path.iterdir()) == []  # Nothing downloaded or prepared.


def test_info_of_stacked_mnist_over_unprepared_tfds_digits(data_config, tmp_path, monkeypatch):
    _offline(monkeypatch)
    config = data_config(source='stacked_mnist', tfds_data_dir=str(tmp_path), download=True)
    assert source_info(config, resolution=32) == SourceInfo(
        'stacked_mnist:tfds:mnist/train+test', (32, 32, 3), 1000, 128_000
    )
    with pytest.raises(ValueError, match='data.channels must be None or 3, got 1'):
        source_info(data_config(source='stacked_mnist', channels=1), resolution=32)


def test_info_of_a_prepared_tfds_dataset_has_its_size(data_config, prepared_tfds_mnist):
    config = data_config(source='tfds', tfds_name='mnist', tfds_data_dir=prepared_tfds_mnist)
    assert source_info(config, resolution=28) == SourceInfo(
        'tfds:mnist/train', (28, 28, 1), 10, 60_000
    )


def test_info_of_a_local_source_is_read_from_it(data_config):
    # scikit-learn's digits: 1797 grey images of 10 classes.
    assert source_info(data_config(), resolution=8) == SourceInfo('digits', (8, 8, 1), 10, 1797)
    with pytest.raises(ValueError, match='channels'):
        source_info(data_config(source='tfds', tfds_name='cifar10', channels=4), resolution=8)
