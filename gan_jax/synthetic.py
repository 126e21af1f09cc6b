"""Synthetic training data: the Classification Accuracy Score (Ravuri & Vinyals 2019) and
augmentation of real training data with a generator's samples.

CAS: a classifier is trained only on labelled samples of a class-conditional generator and
tested on the real test set; beside it the same classifier, same settings and seeds, trained on
real training images. Augmentation: the same classifier on the real images the generator was
trained on (the whole train split or a subset written by ``write_subset``), on those plus
samples, and on samples only, every condition for the same number of updates. The epoch kept
is the one with the best accuracy on held-out real validation images, which ``split_real``
takes from the train split: the test split is read only to score the kept epoch. The
classifier and its settings are gan_jax.metrics.train_classifier's.
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
    train_indices: np.ndarray  # Into the train split.


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
        if not 0 < num_train <= len(rest):
            raise ValueError(
                f'num_train={num_train}: expected 1 to {len(rest)} ({dataset} has '
                f'{len(images)} training images, {num_validation} held out for validation).'
            )
        rest = rest[:num_train]
    return RealSplit(
        train=(images[rest], labels[rest]),
        validation=(images[validation], labels[validation]),
        test=tc.load_dataset(dataset, 'test', data_dir),
        validation_indices=validation,
        train_indices=rest,
    )


def write_subset(path, dataset, data_dir, num_train, num_validation=10_000, seed=0):
    """Writes ``split_real(...).train`` as an .npz for a run to train on (``data.source=npz``,
    ``data.path``): uint8 ``x``, labels ``y`` and ``indices`` into the train split, which
    ``generator_training_set`` checks against the validation images. Returns the split."""
    split = split_real(dataset, data_dir, num_validation, seed, num_train)
    with open(path, 'wb') as f:  # np.savez(path) would append .npz to another name.
        np.savez(f, x=split.train[0], y=split.train[1], indices=split.train_indices)
    return split


@dataclasses.dataclass(frozen=True)
class GeneratorData:
    """The real images a run's generator was trained on, as a classifier's training set."""

    images: np.ndarray
    labels: np.ndarray
    description: str


def generator_training_set(data_config, dataset, data_dir, split):
    """The real training images of augmentation: exactly those the run's generator saw.

    A run on an .npz with ``indices`` (``write_subset``) gives those train-split images; the
    file must hold exactly them, and none may be one of ``split``'s validation images. A run on
    the whole train split (TFDS's ``dataset``, or an .npz equal to the train split) gives
    ``split.train``, the train split less the validation images (which G did see). Anything
    else is an error: which real images G saw would be unknown.
    """
    whole = f'the whole {dataset} train split, validation images included'
    if data_config.source == 'tfds' and data_config.tfds_name == dataset:
        return GeneratorData(*split.train, f'{whole} (TFDS)')
    if data_config.source != 'npz':
        raise ValueError(
            f'The run trained on data.source={data_config.source!r}: augmentation needs a run '
            f"trained on {dataset}'s train split (data.source='tfds') or on a subset .npz "
            'written by gan_jax.synthetic.write_subset (python synthetic_data.py --mode subset).'
        )
    path = data_config.path
    images, labels = tc.load_dataset(dataset, 'train', data_dir)
    with np.load(path) as data:
        x = data['x']
        y = data['y'] if 'y' in data.files else None
        indices = data['indices'] if 'indices' in data.files else None
    if x.ndim == 3:
        x = x[..., None]
    if indices is None:
        if np.array_equal(x, images) and np.array_equal(y, labels):
            return GeneratorData(*split.train, f'{whole} ({path})')
        raise ValueError(
            f"{path} (the run's data.path) has no `indices` and is not the whole {dataset} "
            'train split, so which real images the generator saw is unknown; write the subset '
            'with gan_jax.synthetic.write_subset (python synthetic_data.py --mode subset) and '
            'train the generator on it.'
        )
    if (
        indices.ndim != 1
        or not np.issubdtype(indices.dtype, np.integer)
        or len(np.unique(indices)) != len(indices)
        or indices.min(initial=0) < 0
        or indices.max(initial=0) >= len(images)
    ):
        raise ValueError(
            f'{path}: `indices` must be distinct integers in [0, {len(images)}) (the {dataset} '
            f'train split), got {indices.dtype} of shape {indices.shape}.'
        )
    overlap = np.intersect1d(indices, split.validation_indices)
    if len(overlap):
        raise ValueError(
            f'{path}: {len(overlap)} of its images (train-split indices {overlap[:5].tolist()}'
            f'...) are validation images of this split (num_validation='
            f'{len(split.validation_indices)}); write the subset with the same num_validation '
            'and seed.'
        )
    if not (np.array_equal(x, images[indices]) and np.array_equal(y, labels[indices])):
        raise ValueError(
            f'{path}: `x` and `y` are not the {dataset} train-split images and labels at its '
            '`indices`.'
        )
    return GeneratorData(
        images[indices], labels[indices], f'{len(indices)} {dataset} train images ({path})'
    )


def mix(real, synthetic, real_fraction):
    """Real and synthetic (images, labels) in one set, the real ones repeated (at least once)
    so that they are about ``real_fraction`` of it. Returns (images, labels, repeats)."""
    if not 0 < real_fraction < 1:
        raise ValueError(f'real_fraction={real_fraction}: expected a number in (0, 1).')
    wanted = real_fraction / (1 - real_fraction) * len(synthetic[0]) / len(real[0])
    repeats = max(1, round(wanted))
    images = np.concatenate([np.tile(real[0], (repeats, 1, 1, 1)), synthetic[0]])
    labels = np.concatenate([np.tile(real[1], repeats), synthetic[1]])
    return images, labels, repeats


def augmentation(real, synthetic, real_fraction, name, epochs):
    """The training sets of augmentation, real (a GeneratorData), real+synthetic (``mix``) and
    synthetic, and their one schedule: each trains for ``epochs`` epochs of one pass over
    real+synthetic. Returns (sources, steps_per_epoch, protocol entries)."""
    *mixed, repeats = mix((real.images, real.labels), synthetic, real_fraction)
    steps_per_epoch = len(mixed[0]) // tc.TRAINING[name]['batch_size']
    sources = {'real': (real.images, real.labels), 'real+synthetic': mixed, 'synthetic': synthetic}
    return (
        sources,
        steps_per_epoch,
        {
            'generator_training_data': real.description,
            'real_repeats_in_mix': repeats,
            'real_fraction_of_mix': repeats * len(real.images) / len(mixed[0]),
            'steps_per_epoch': steps_per_epoch,
            'schedule': (
                f'every training set: {epochs} epochs of {steps_per_epoch} steps (one pass over '
                'real+synthetic), batches from one pass over its own data after the other'
            ),
        },
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


def generate_from_run(run, num, seed=0):
    """``generate_labelled`` with the generator, weights and latent settings of a run
    loaded by ``runs.load_run``."""
    return generate_labelled(
        run.setup.generator,
        run.variables,
        run.config.model.z_dim,
        run.setup.num_classes,
        num,
        seed=seed,
        z_distribution=run.config.model.z_distribution,
    )


def confusion_matrix(labels, predictions, num_classes):
    """Counts [true class, predicted class] over the images."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def per_class_accuracy(confusion):
    """Per true class, the share of its images predicted as it (NaN for a class with none)."""
    with np.errstate(invalid='ignore'):
        return np.diag(confusion) / confusion.sum(axis=1)


def train_and_score(name, train, validation, test, epochs, seed, steps_per_epoch=None):
    """Trains ``name`` on ``train``; keeps the epoch best on ``validation``; scores it on test.

    Returns {'validation_per_epoch', 'best_epoch' (1-based), 'validation', 'test',
    'test_per_class' (accuracy per true class), 'test_confusion' ([true][predicted] counts)}.
    """
    best, best_variables, per_epoch = -1.0, None, []
    for epoch, variables, _ in tc.fit(name, *train, epochs, seed, steps_per_epoch):
        value = tc.accuracy(tc.apply_fn(name, variables), *validation)
        per_epoch.append(value)
        if value > best:
            best, best_epoch, best_variables = value, epoch + 1, variables
    images, labels = test
    predictions = tc.predict(tc.apply_fn(name, best_variables), images)
    confusion = confusion_matrix(
        labels, predictions, classifiers.get_spec(name).build().num_classes
    )
    return {
        'validation_per_epoch': per_epoch,
        'best_epoch': best_epoch,
        'validation': best,
        'test': float(np.mean(predictions == labels)),
        'test_per_class': per_class_accuracy(confusion).tolist(),
        'test_confusion': confusion.tolist(),
    }


def score(name, sources, split, epochs, seeds, steps_per_epoch=None, log=print):
    """``train_and_score`` on each of ``sources`` ({name: (images, labels)}) for every seed;
    per source the summary of test and validation accuracy, the per-class test accuracy
    (median over seeds), the best epochs, and per seed."""
    results = {}
    for source, data in sources.items():
        per_seed = [
            train_and_score(name, data, split.validation, split.test, epochs, seed, steps_per_epoch)
            for seed in seeds
        ]
        results[source] = {
            'test': summary([r['test'] for r in per_seed]),
            'validation': summary([r['validation'] for r in per_seed]),
            'test_per_class_median': np.median(
                [r['test_per_class'] for r in per_seed], axis=0
            ).tolist(),
            'best_epochs': [r['best_epoch'] for r in per_seed],
            'per_seed': per_seed,
        }
        log(source, results[source]['test'])
    return results


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


def protocol(dataset, num_real, num_validation, num_synthetic, epochs, seeds):
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
        'num_real_train': num_real,
        'num_validation': num_validation,
        'validation': 'held out of the train split; picks the epoch; never the test set',
        'test_set': tc.TEST_SETS[dataset],
    }
