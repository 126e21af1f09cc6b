"""Classification Accuracy Score and augmentation: the data split, the subset files, the mix,
the epoch choice, the labelled samples, the command on a tiny run."""

import json
import subprocess
import sys
import types

import jax
import numpy as np
import pytest

from gan_jax import synthetic, train
from gan_jax.metrics import train_classifier as tc
from tests import helpers
from tests.helpers import write_idx
from tests.invert_and_dump import tiny_generator


@pytest.fixture
def mnist_folder(tmp_path):
    """MNIST-format files: train image i is filled with i % 250, test images with 250 + j."""
    folder = tmp_path / 'mnist'
    folder.mkdir()
    train = np.repeat(np.arange(100) % 250, 16).astype(np.uint8).reshape(100, 4, 4)
    test = np.repeat(250 + np.arange(5), 16).astype(np.uint8).reshape(5, 4, 4)
    for prefix, images in (('train', train), ('t10k', test)):
        write_idx(folder / f'{prefix}-images-idx3-ubyte.gz', images)
        write_idx(
            folder / f'{prefix}-labels-idx1-ubyte.gz',
            (np.arange(len(images)) % 10).astype(np.uint8),
        )
    return tmp_path


def test_split_holds_validation_out_of_the_train_split_and_never_uses_test(mnist_folder):
    split = synthetic.split_real('mnist', mnist_folder, num_validation=20, seed=3, num_train=50)
    train_ids = set(split.train[0][:, 0, 0, 0])
    validation_ids = set(split.validation[0][:, 0, 0, 0])
    assert len(train_ids) == 50 and len(validation_ids) == 20
    assert not train_ids & validation_ids
    assert max(train_ids | validation_ids) < 250  # No test image (values 250..254) in either.
    np.testing.assert_array_equal(split.test[0][:, 0, 0, 0], 250 + np.arange(5))
    np.testing.assert_array_equal(sorted(validation_ids), sorted(split.validation_indices))
    with pytest.raises(ValueError, match='num_validation=100'):
        synthetic.split_real('mnist', mnist_folder, num_validation=100)
    with pytest.raises(ValueError, match='num_train=81: expected 1 to 80'):
        synthetic.split_real('mnist', mnist_folder, num_validation=20, num_train=81)


def npz_data(path):
    return types.SimpleNamespace(source='npz', path=str(path), tfds_name=None)


def test_subset_file_round_trip(mnist_folder, tmp_path):
    path = tmp_path / 'subset.bin'  # Written under exactly this name.
    synthetic.write_subset(path, 'mnist', mnist_folder, num_train=30, num_validation=20, seed=3)
    with np.load(path) as data:
        x, y, indices = data['x'], data['y'], data['indices']
    # Train image i is filled with i and labelled i % 10 (the fixture).
    np.testing.assert_array_equal(x[:, 0, 0, 0], indices)
    np.testing.assert_array_equal(y, indices % 10)
    # The subset is the 30 images after the 20 validation ones of the seed-3 permutation.
    np.testing.assert_array_equal(indices, np.random.default_rng(3).permutation(100)[20:50])
    split = synthetic.split_real('mnist', mnist_folder, num_validation=20, seed=3)
    real = synthetic.generator_training_set(npz_data(path), 'mnist', mnist_folder, split)
    np.testing.assert_array_equal(real.images, x)
    np.testing.assert_array_equal(real.labels, y)
    assert not set(real.images[:, 0, 0, 0]) & set(split.validation_indices)


def test_generator_training_set_refuses_unknown_or_leaking_subsets(mnist_folder, tmp_path):
    split = synthetic.split_real('mnist', mnist_folder, num_validation=20, seed=3)
    images, labels = tc.load_dataset('mnist', 'train', mnist_folder)

    def check(match, **arrays):
        np.savez(tmp_path / 'data.npz', **arrays)
        with pytest.raises(ValueError, match=match):
            synthetic.generator_training_set(
                npz_data(tmp_path / 'data.npz'), 'mnist', mnist_folder, split
            )

    check('has no `indices` and is not the whole mnist', x=images[:50], y=labels[:50])
    leaking = split.validation_indices[:2].tolist() + split.train_indices[:8].tolist()
    check('2 of its images', x=images[leaking], y=labels[leaking], indices=leaking)
    rest = split.train_indices[:8]
    check('not the mnist train-split images', x=images[rest][::-1], y=labels[rest], indices=rest)
    check('distinct integers', x=images[rest], y=labels[rest], indices=np.r_[rest[:7], 100])
    with pytest.raises(ValueError, match="data.source='digits'"):
        synthetic.generator_training_set(
            types.SimpleNamespace(source='digits'), 'mnist', mnist_folder, split
        )
    # The whole train split, as an .npz without indices or from TFDS: all but validation.
    np.savez(tmp_path / 'all.npz', x=images[..., 0], y=labels)  # (N, H, W) is allowed.
    for data in (
        npz_data(tmp_path / 'all.npz'),
        types.SimpleNamespace(source='tfds', tfds_name='mnist'),
    ):
        real = synthetic.generator_training_set(data, 'mnist', mnist_folder, split)
        assert sorted(real.images[:, 0, 0, 0]) == sorted(split.train_indices)
        assert 'whole mnist train split' in real.description


def test_mix_repeats_the_real_images_to_the_fraction():
    real = (np.zeros((10, 2, 2, 1), np.uint8), np.arange(10))
    fake = (np.ones((30, 2, 2, 1), np.uint8), np.arange(30) % 10)
    images, labels, repeats = synthetic.mix(real, fake, 0.5)
    assert repeats == 3 and len(images) == 60 and (images == 0).all(axis=(1, 2, 3)).sum() == 30
    np.testing.assert_array_equal(labels[:30], np.tile(np.arange(10), 3))
    np.testing.assert_array_equal(labels[30:], fake[1])
    assert synthetic.mix(real, fake, 0.1)[2] == 1  # Never fewer than all real images once.
    with pytest.raises(ValueError, match='real_fraction=1'):
        synthetic.mix(real, fake, 1)


def test_augmentation_trains_every_set_for_one_pass_over_the_mix():
    real = synthetic.GeneratorData(np.zeros((300, 2, 2, 1), np.uint8), np.zeros(300), 'r')
    fake = (np.ones((1000, 2, 2, 1), np.uint8), np.zeros(1000))
    sources, steps, extra = synthetic.augmentation(real, fake, 0.5, 'lenet_mnist', 5)
    assert list(sources) == ['real', 'real+synthetic', 'synthetic']
    assert len(sources['real+synthetic'][0]) == 3 * 300 + 1000 and steps == 1900 // 128
    assert extra['real_repeats_in_mix'] == 3 and extra['real_fraction_of_mix'] == 900 / 1900


def test_the_epoch_is_chosen_on_validation_and_test_is_read_once(monkeypatch):
    validation = (np.zeros((1,)), np.zeros((1,)))
    test = (np.ones((1,)), np.ones((1,), np.int64))
    validation_by_epoch = [0.5, 0.9, 0.7]
    calls = []

    def fit(name, images, labels, epochs, seed, steps_per_epoch):
        for epoch in range(epochs):
            yield epoch, {'epoch': epoch}, 0.0

    def accuracy(fn, images, labels):
        epoch = fn(None)
        calls.append(('test' if images is test[0] else 'validation', epoch))
        return validation_by_epoch[epoch]

    def predict(fn, images):  # Test images only: predicts class 1 (the label) after epoch 1.
        epoch = fn(None)
        calls.append(('test' if images is test[0] else 'validation', epoch))
        return np.full(len(images), int(epoch == 1))

    monkeypatch.setattr(tc, 'fit', fit)
    monkeypatch.setattr(tc, 'apply_fn', lambda name, variables: lambda x: variables['epoch'])
    monkeypatch.setattr(tc, 'accuracy', accuracy)
    monkeypatch.setattr(tc, 'predict', predict)
    result = synthetic.train_and_score('lenet_mnist', (None, None), validation, test, 3, 0)
    assert result['best_epoch'] == 2 and result['validation'] == 0.9 and result['test'] == 1.0
    assert [c for c in calls if c[0] == 'test'] == [('test', 1)]


def test_per_class_accuracy_and_confusion_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    predictions = np.array([0, 1, 0, 1, 1, 2, 0, 2, 1])
    confusion = synthetic.confusion_matrix(labels, predictions, 4)
    np.testing.assert_array_equal(
        confusion, [[2, 1, 0, 0], [0, 2, 0, 0], [1, 1, 2, 0], [0, 0, 0, 0]]
    )
    np.testing.assert_allclose(synthetic.per_class_accuracy(confusion), [2 / 3, 1.0, 0.5, np.nan])


def test_predict_pads_the_last_batch_and_keeps_every_image():
    images = np.arange(7, dtype=np.uint8).reshape(7, 1, 1, 1)
    # Logits favour class (pixel value mod 3): a stand-in classifier with a known answer.
    apply_fn = lambda x: {'logits': jax.nn.one_hot(x[:, 0, 0, 0] % 3, 3)}  # noqa: E731
    np.testing.assert_array_equal(tc.predict(apply_fn, images, batch_size=3), np.arange(7) % 3)
    assert tc.accuracy(apply_fn, images, np.zeros(7, np.int64), batch_size=3) == 3 / 7


@pytest.mark.slow
def test_generated_data_is_labelled_with_balanced_classes():
    generator, variables, num_classes = tiny_generator(True)
    images, labels = synthetic.generate_labelled(
        generator, variables, 4, num_classes, 23, batch_size=10
    )
    assert images.shape == (23, 28, 28, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.arange(23) % 10)
    # Latents keyed by the sample's index: the batch size changes nothing.
    again, _ = synthetic.generate_labelled(generator, variables, 4, num_classes, 23, batch_size=5)
    np.testing.assert_array_equal(images, again)
    with pytest.raises(ValueError, match='class-conditional'):
        synthetic.generate_labelled(generator, variables, 4, None, 3)


@pytest.fixture
def random_mnist(tmp_path):
    """MNIST-format files of random 28x28 digits: 400 train images, 50 test images."""
    folder = tmp_path / 'data' / 'mnist'
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (('train', 400), ('t10k', 50)):
        write_idx(
            folder / f'{prefix}-images-idx3-ubyte.gz', rng.integers(0, 256, (n, 28, 28), np.uint8)
        )
        write_idx(folder / f'{prefix}-labels-idx1-ubyte.gz', (np.arange(n) % 10).astype(np.uint8))
    return tmp_path / 'data'


@pytest.mark.heavy  # Minutes: a GAN run and six classifier trainings, each compiled anew.
@pytest.mark.slow
def test_augment_command_on_a_tiny_run_of_a_subset(random_mnist, tmp_path):
    def command(*args):
        result = subprocess.run(
            [sys.executable, f'{helpers.REPO}/synthetic_data.py', '--dataset=mnist', *args],
            env={**helpers.python_env(), 'GAN_JAX_SHARED_DATA': str(random_mnist)},
            capture_output=True,
            text=True,
            timeout=600,
            cwd=helpers.REPO,
        )
        assert result.returncode == 0, result.stderr[-3000:]

    subset = tmp_path / 'mnist_train_200.npz'
    command('--mode=subset', '--num_real_train=200', '--num_validation=100', f'--out={subset}')
    run = tmp_path / 'run'
    config = helpers.tiny_config(
        **{
            'model.conditioning': 'projection',
            'train.steps': 1,
            'data.source': 'npz',
            'data.path': str(subset),
        }
    )
    train.train(config, str(run))
    command(
        f'--workdir={run}',
        '--mode=augment',
        '--num_synthetic=300',
        '--num_validation=100',
        '--epochs=2',
        '--seeds=0,1',
        f'--out={tmp_path / "augment"}',
    )
    record = json.loads((tmp_path / 'augment' / 'augment.json').read_text())
    protocol = record['protocol']
    assert protocol['mode'] == 'augment' and protocol['num_real_train'] == 200
    # 200 real images twice (400 of 700, about half) and 300 samples: 700 // 128 = 5 steps.
    assert protocol['real_repeats_in_mix'] == 2 and protocol['steps_per_epoch'] == 5
    assert set(record['results']) == {'real', 'real+synthetic', 'synthetic'}
    for result in record['results'].values():
        assert (
            len(result['per_seed']) == 2 and len(result['per_seed'][0]['validation_per_epoch']) == 2
        )
        assert 0 <= result['test']['min'] <= result['test']['mean'] <= result['test']['max'] <= 1
    assert '| real+synthetic |' in (tmp_path / 'augment' / 'augment.md').read_text()


def test_summary_reports_median_and_minimum():
    s = synthetic.summary([0.9, 0.95, 0.8])
    assert s['median'] == 0.9 and s['min'] == 0.8
