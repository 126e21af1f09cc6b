import pytest

from gan_jax.data.prepare_tfds import prepare_offline

MNIST_FILES = [
    't10k-images-idx3-ubyte.gz',
    't10k-labels-idx1-ubyte.gz',
    'train-images-idx3-ubyte.gz',
    'train-labels-idx1-ubyte.gz',
]


def test_missing_files_are_listed(tmp_path):
    (tmp_path / 'src').mkdir()
    (tmp_path / 'src' / MNIST_FILES[0]).write_bytes(b'')
    with pytest.raises(FileNotFoundError) as error:
        prepare_offline('mnist', tmp_path / 'src', tmp_path / 'tfds')
    assert str(MNIST_FILES[1:]) in str(error.value) and str(MNIST_FILES) in str(error.value)


def test_wrong_file_is_rejected_by_checksum(tmp_path):
    (tmp_path / 'src').mkdir()
    for name in MNIST_FILES:
        (tmp_path / 'src' / name).write_bytes(b'not mnist')
    with pytest.raises(ValueError, match='is not the original file TFDS expects: sha256'):
        prepare_offline('mnist', tmp_path / 'src', tmp_path / 'tfds')
