"""The committed domain classifiers: checksums, input contract, accuracy on the real test sets."""

import gzip
import json
import shutil

import jax
import numpy as np
import pytest

from gan_jax.metrics import classifiers
from gan_jax.metrics.train_classifier import accuracy, load_dataset, read_idx

NAMES = list(classifiers.SPECS)
# The accuracy each classifier must reach; None: reproduce the manifest's number.
TARGETS = {'lenet_mnist': 0.99, 'lenet_fashion_mnist': 0.90, 'cnn_cifar10': None}


@pytest.fixture(scope='module', params=NAMES)
def loaded(request):
    return request.param, *classifiers.load_classifier(request.param)


def test_weights_match_manifest(loaded):
    name, _, info = loaded
    path = classifiers.WEIGHTS_DIR / info['file']
    assert classifiers.sha256(path) == info['sha256']
    assert path.stat().st_size < 1_000_000
    assert info['resize'] == 'none' and info['dataset'] == classifiers.SPECS[name].dataset
    assert {'architecture', 'train_command', 'epochs', 'test_accuracy', 'test_set', 'date'} <= set(
        info
    )


def test_outputs_have_documented_shapes(loaded):
    name, apply_fn, info = loaded
    images = np.zeros((3, *info['input_shape']), np.uint8)
    outputs = jax.jit(apply_fn)(images)
    assert outputs['features'].shape == (3, info['features_dim'])
    assert outputs['logits'].shape == (3, 10)
    assert info['features_dim'] == classifiers.SPECS[name].architecture['features_dim']


def test_real_test_accuracy(loaded, shared_data_dir):
    name, apply_fn, info = loaded
    dataset = classifiers.SPECS[name].dataset
    if not (shared_data_dir / dataset).is_dir():
        pytest.skip(f'real {dataset} not found in {shared_data_dir} (set GAN_JAX_SHARED_DATA)')
    images, labels = load_dataset(dataset, 'test', shared_data_dir)
    measured = accuracy(apply_fn, images, labels)
    target = TARGETS[name] or info['test_accuracy'] - 0.005
    assert measured >= target, f'{name}: {measured:.4f} < {target:.4f} on {info["test_set"]}'


def test_wrong_input_is_a_clear_error():
    apply_fn, _ = classifiers.load_classifier('lenet_mnist')
    with pytest.raises(ValueError, match=r'\[N, 28, 28, 1\] \(no resizing\).*\(2, 32, 32, 1\)'):
        apply_fn(np.zeros((2, 32, 32, 1), np.uint8))
    with pytest.raises(ValueError, match='uint8'):
        apply_fn(np.zeros((2, 28, 28, 1), np.float32))


def test_unknown_name_is_rejected():
    with pytest.raises(ValueError, match='lenet_mnist'):
        classifiers.load_classifier('inception')


def test_tampered_or_missing_weights_name_the_file_and_the_fix(tmp_path):
    weights_dir = tmp_path / 'weights'
    shutil.copytree(classifiers.WEIGHTS_DIR, weights_dir)
    path = weights_dir / 'lenet_mnist.msgpack'
    path.write_bytes(path.read_bytes()[:-1] + b'\x00')
    retrain = r'train_classifier --name lenet_mnist'
    with pytest.raises(ValueError, match=rf'lenet_mnist\.msgpack does not match.*{retrain}'):
        classifiers.load_classifier('lenet_mnist', weights_dir)
    path.unlink()
    with pytest.raises(FileNotFoundError, match=rf'lenet_mnist\.msgpack.*is missing.*{retrain}'):
        classifiers.load_classifier('lenet_mnist', weights_dir)


def test_weights_of_another_architecture_are_refused(tmp_path):
    weights_dir = tmp_path / 'weights'
    shutil.copytree(classifiers.WEIGHTS_DIR, weights_dir)
    manifest = json.loads((weights_dir / classifiers.MANIFEST).read_text())
    manifest['lenet_mnist']['architecture']['features_dim'] = 64
    (weights_dir / classifiers.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match='trained for architecture.*--name lenet_mnist'):
        classifiers.load_classifier('lenet_mnist', weights_dir)


def _write_idx(path, header: bytes, values: bytes):
    path.write_bytes(gzip.compress(header + values))
    return path


def test_idx_reader(tmp_path):
    header = bytes([0, 0, 0x08, 2]) + (2).to_bytes(4, 'big') + (3).to_bytes(4, 'big')
    array = read_idx(_write_idx(tmp_path / 'ok.gz', header, bytes(range(6))))
    np.testing.assert_array_equal(array, np.arange(6, dtype=np.uint8).reshape(2, 3))


@pytest.mark.parametrize(
    'header, values, match',
    [
        (bytes([0, 0, 0x0D, 1]) + (4).to_bytes(4, 'big'), bytes(16), 'magic number 00000d01'),
        (bytes([8, 3, 0x08, 1]) + (4).to_bytes(4, 'big'), bytes(4), 'magic number 08030801'),
        (bytes([0, 0, 0x08, 1]) + (5).to_bytes(4, 'big'), bytes(4), r'shape \(5,\).*4 values'),
    ],
)
def test_idx_reader_rejects_bad_files(tmp_path, header, values, match):
    with pytest.raises(ValueError, match=match):
        read_idx(_write_idx(tmp_path / 'bad.gz', header, values))
