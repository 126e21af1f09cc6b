"""Synthetic training data: the Classification Accuracy Score (Ravuri & Vinyals 2019).

A classifier is trained only on labelled samples of a class-conditional generator and tested
on the real test set; beside it the same classifier, same settings and seeds, trained on real
training images. The epoch kept is the one with the best accuracy on held-out real validation
images, which ``split_real`` takes from the train split: the test split is read only to score
the kept epoch. The classifier and its settings are gan_jax.metrics.train_classifier's.
"""

import dataclasses

import jax
import numpy as np

from gan_jax import sampling
from gan_jax.metrics import classifiers
from gan_jax.metrics import train_classifier as tc

# Each dataset's classifier (gan_jax.metrics.classifiers) and training settings.
CLASSIFIERS = {
    'mnist': 'lenet_mnist',
    'fashion_mnist': 'lenet_fashion_mnist',
    'cifar10': 'cnn_cifar10',
}


@dataclasses.dataclass(frozen=True)
class RealSplit:
    """Real images (uint8) and labels: train and validation from the train split, and test."""

    train: tuple
    validation: tuple
    test: tuple
    validation_indices: np.ndarray  # Into the train split.


def split_real(dataset, data_dir, num_validation, seed=0, num_train=None):
    """Holds ``num_validation`` random train-split images out for validation; ``num_train``
    of the rest (all if None) for training. The test split is only the test split."""
    images, labels = tc.load_dataset(dataset, 'train', data_dir)
    if not 0 < num_validation < len(images):
        raise ValueError(
            f'num_validation={num_validation}: expected 1 to {len(images) - 1} '
            f'({dataset} has {len(images)} training images).'
        )
    order = np.random.default_rng(seed).permutation(len(images))
    validation, rest = order[:num_validation], order[num_validation:]
    if num_train is not None:
        rest = rest[:num_train]
    return RealSplit(
        train=(images[rest], labels[rest]),
        validation=(images[validation], labels[validation]),
        test=tc.load_dataset(dataset, 'test', data_dir),
        validation_indices=validation,
    )


def generate_labelled(
    generator, variables, z_dim, num_classes, num, seed=0, batch_size=500, z_distribution='normal'
):
    """``num`` uint8 samples and their labels, classes balanced (label i mod K), in batches.

    The latent of sample i is keyed by i (gan_jax.sampling), as the evaluator's.
    """
    if num_classes is None:
        raise ValueError('CAS needs a class-conditional generator (model.conditioning is None).')

    @jax.jit
    def generate(indices):
        z = sampling.sample_latents(
            jax.random.PRNGKey(seed), indices, z_dim, distribution=z_distribution
        )
        labels = indices % num_classes
        return sampling.images_to_uint8(generator.apply(variables, z, labels, train=False))

    images = []
    for start in range(0, num, batch_size):
        indices = np.arange(start, start + batch_size)  # One compiled shape; cut at the end.
        images.append(np.asarray(generate(indices)))
    labels = np.arange(num) % num_classes
    return np.concatenate(images)[:num], labels.astype(np.int64)


def train_and_score(name, train, validation, test, epochs, seed):
    """Trains ``name`` on ``train``; keeps the epoch best on ``validation``; scores it on test.

    Returns {'validation_per_epoch', 'best_epoch' (1-based), 'validation', 'test'}.
    """
    best, best_variables, per_epoch = -1.0, None, []
    for epoch, variables, _ in tc.fit(name, *train, epochs, seed):
        value = tc.accuracy(tc.apply_fn(name, variables), *validation)
        per_epoch.append(value)
        if value > best:
            best, best_epoch, best_variables = value, epoch + 1, variables
    return {
        'validation_per_epoch': per_epoch,
        'best_epoch': best_epoch,
        'validation': best,
        'test': tc.accuracy(tc.apply_fn(name, best_variables), *test),
    }


def summary(values):
    values = np.asarray(values, np.float64)
    return {
        'median': float(np.median(values)),
        'min': float(values.min()),
        'max': float(values.max()),
        'mean': float(values.mean()),
        'std': float(values.std()),
        'values': [float(v) for v in values],
    }


def protocol(dataset, split, num_synthetic, epochs, seeds):
    name = CLASSIFIERS[dataset]
    return {
        'classifier': name,
        'architecture': classifiers.get_spec(name).architecture,
        'training': tc.TRAINING[name],
        'epochs': epochs,
        'seeds': list(seeds),
        'augmentation': 'horizontal flips' if tc.TRAINING[name]['flip'] else 'none',
        'num_synthetic': num_synthetic,
        'synthetic_labels': 'balanced: sample i has class i mod K',
        'num_real_train': len(split.train[0]),
        'num_validation': len(split.validation[0]),
        'validation': 'held out of the train split; picks the epoch; never the test set',
        'test_set': tc.TEST_SETS[dataset],
    }
