"""Classification Accuracy Score: the data split, the epoch choice, the labelled samples."""

import numpy as np
import pytest

from gan_jax import synthetic
from gan_jax.metrics import train_classifier as tc
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


def test_the_epoch_is_chosen_on_validation_and_test_is_read_once(monkeypatch):
    validation = (np.zeros((1,)), np.zeros((1,)))
    test = (np.ones((1,)), np.ones((1,)))
    validation_by_epoch = [0.5, 0.9, 0.7]
    test_by_epoch = [0.1, 0.2, 0.3]
    calls = []

    def fit(name, images, labels, epochs, seed):
        for epoch in range(epochs):
            yield epoch, {'epoch': epoch}, 0.0

    def accuracy(fn, images, labels):
        epoch = fn(None)
        calls.append(('test' if images is test[0] else 'validation', epoch))
        return (test_by_epoch if images is test[0] else validation_by_epoch)[epoch]

    monkeypatch.setattr(tc, 'fit', fit)
    monkeypatch.setattr(tc, 'apply_fn', lambda name, variables: lambda x: variables['epoch'])
    monkeypatch.setattr(tc, 'accuracy', accuracy)
    result = synthetic.train_and_score('lenet_mnist', (None, None), validation, test, 3, 0)
    assert result['best_epoch'] == 2 and result['test'] == 0.2 and result['validation'] == 0.9
    assert [c for c in calls if c[0] == 'test'] == [('test', 1)]


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


def test_summary_reports_median_and_minimum():
    s = synthetic.summary([0.9, 0.95, 0.8])
    assert s['median'] == 0.9 and s['min'] == 0.8
