import socket

import pytest

from gan_jax.data import SOURCES, DatasetUnavailableError, get_source


def test_unknown_source_lists_known_ones(data_config):
    with pytest.raises(ValueError) as error:
        get_source(data_config(source='imagenet_folder'), resolution=8)
    assert "'imagenet_folder'" in str(error.value)
    assert all(name in str(error.value) for name in SOURCES)


def test_bad_channels(data_config):
    with pytest.raises(ValueError, match='channels'):
        get_source(data_config(channels=4), resolution=8)


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
