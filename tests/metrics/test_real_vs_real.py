"""Real-vs-real sanity figures for FID-LeNet on the real MNIST files (skipped without them)."""

import jax
import numpy as np
import pytest

from gan_jax.metrics import classifiers, fid
from gan_jax.metrics.train_classifier import load_dataset


def _moments(apply_fn, images, batch_size=1000):
    acc = fid.MomentAccumulator(128)
    apply_fn = jax.jit(apply_fn)
    for start in range(0, len(images), batch_size):
        acc.update(np.asarray(apply_fn(images[start : start + batch_size])['features']))
    return acc.result()


@pytest.mark.slow
def test_fid_lenet_mnist_test_vs_train_is_small_and_other_data_is_far(shared_data_dir):
    if not (shared_data_dir / 'mnist').is_dir():
        pytest.skip(f'real MNIST not found in {shared_data_dir}')
    lenet, _ = classifiers.load_classifier('lenet_mnist')
    train_images, _ = load_dataset('mnist', 'train', shared_data_dir)
    test_images, _ = load_dataset('mnist', 'test', shared_data_dir)
    fashion_images, _ = load_dataset('fashion_mnist', 'test', shared_data_dir)
    train_stats = _moments(lenet, train_images)
    real_vs_real = fid.frechet_distance(*_moments(lenet, test_images), *train_stats)
    other = fid.frechet_distance(*_moments(lenet, fashion_images), *train_stats)
    print(
        f'FID-LeNet-MNIST: MNIST test vs train {real_vs_real:.4f}; '
        f'Fashion-MNIST test vs MNIST train {other:.1f}'
    )
    # Two samples of one distribution: near zero (10k vs 60k images, sampling noise
    # only); another dataset: orders of magnitude larger.
    assert 0 < real_vs_real < 0.05 * other
