"""Evaluation: generate, extract features, compute metrics, and record the protocol.

Used by the training loop every ``eval.every_steps`` and standalone by the
top-level ``evaluate.py`` (which writes ``RUN/eval_<step>.json``). Generation
and feature extraction run in one sharded program over all devices; images are
quantised to uint8 before feature extraction, real and generated alike.
Reference statistics are cached under a key built from everything that changes
them. The EMA generator runs with its own standing statistics (standing.py). Each
result carries its protocol; ``protocol_key`` hashes it, so that only comparable
values are ranked (the best checkpoint). ``modes`` counts the modes
of the mode-collapse benchmarks (2-D ring and grid, Stacked MNIST) and needs no
feature extractor, so the 2-D mixtures, which have no images, can be evaluated.
"""

import dataclasses
import hashlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax import data as data_lib
from gan_jax import parallel, standing
from gan_jax.data.mixtures import MIXTURES
from gan_jax.metrics import classifiers, fid, inception_score, kid, modes, prdc
from gan_jax.metrics import extractors as extractors_lib
from gan_jax.models.stylegan2 import with_truncation_psi
from gan_jax.sampling import check_truncation, images_to_uint8, sample_latents

AXIS = parallel.DATA_AXIS
# Need images and eval.extractor; intra_fid also a class-conditional G.
IMAGE_METRICS = ('fid', 'kid', 'is', 'prdc', 'intra_fid')
METRICS = (*IMAGE_METRICS, 'modes')
MODE_SOURCES = (*MIXTURES, 'stacked_mnist')  # The data.source values that define modes.
# Metric name -> whether larger is better (for keeping the best checkpoint).
BEST_DIRECTION = {
    'FID': False,
    'intra_FID': False,
    'KID': False,
    'IS': True,
    'precision': True,
    'recall': True,
    'density': True,
    'coverage': True,
    'modes': True,
    'high_quality': True,
    'kl': False,
}
# Metric name -> the eval.metrics entry that computes it.
_FAMILY = {
    'FID': 'fid',
    'intra_FID': 'intra_fid',
    'KID': 'kid',
    'IS': 'is',
    'precision': 'prdc',
    'recall': 'prdc',
    'density': 'prdc',
    'coverage': 'prdc',
    'modes': 'modes',
    'high_quality': 'modes',
    'kl': 'modes',
}
# Statistic of gan_jax.metrics.modes -> metric name (before its data label, '-ring', ...).
_MODE_NAMES = {
    'modes_covered': 'modes',
    'high_quality_fraction': 'high_quality',
    'reverse_kl': 'kl',
    'kl_to_uniform': 'kl',
}
# A 2-D sample is high quality within 3 std of its nearest mode, and one such sample
# captures that mode (VEEGAN, PacGAN).
MODES_MAX_STD = 3.0
MODES_MIN_COUNT = 1
STACKED_MNIST_CLASSIFIER = 'lenet_mnist'
STACKED_MNIST_LABEL = '-StackedMNIST'
PRDC_K = {'pr_k': 3, 'dc_k': 5}
IS_SPLITS = 10
# The per-class covariances of intra_fid (reference and generated, float64) held at once may
# take at most this many bytes; more classes (1,000 ImageNet classes of Inception's 2048
# features take 64 MB each, 64 GB in all) are evaluated in passes over groups of classes.
INTRA_FID_MAX_BYTES = 4 * 2**30
DEFAULT_CACHE = os.path.join('~', '.cache', 'gan_jax', 'reference_stats')


def parse_metrics(spec):
    """'fid,kid' -> ('fid', 'kid'); an unknown name fails, listing the known ones."""
    names = tuple(m.strip().lower() for m in spec.split(',') if m.strip())
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(
            f'eval.metrics={spec!r}: unknown {unknown}; choose from '
            f'{", ".join(METRICS)} (comma-separated).'
        )
    return names


def _check_metrics_fit_data(spec, metrics, best, data_source):
    """Fails before anything is compiled when the data cannot give a requested metric."""
    if data_source in MIXTURES:
        for name in metrics:
            if name in IMAGE_METRICS:
                raise ValueError(
                    f'eval.metrics={spec!r}: {name} needs images; data.source='
                    f'"{data_source}" gives 2-D points; use eval.metrics="modes".'
                )
    if 'modes' in metrics and data_source not in MODE_SOURCES:
        raise ValueError(
            f'eval.metrics={spec!r}: modes is defined only for data.source '
            f'{", ".join(MODE_SOURCES)} (the mode-collapse benchmarks), not '
            f'data.source="{data_source}".'
        )
    if best is not None and _FAMILY.get(best) not in metrics:
        raise ValueError(
            f'eval.best_metric={best!r} must be one of '
            f'{", ".join(BEST_DIRECTION)} and computed by eval.metrics={spec!r}.'
        )
    if best == 'high_quality' and data_source not in MIXTURES:
        raise ValueError(
            f"eval.best_metric='high_quality' exists for the 2-D mixtures only; "
            f'data.source="{data_source}" has modes and kl.'
        )
    if best == 'kl' and data_source in MIXTURES:
        # NaN compares false with everything, so a first NaN would be the best forever.
        raise ValueError(
            f"eval.best_metric='kl': the reverse KL of data.source="
            f'"{data_source}" is NaN while no sample is high quality (early in '
            f'training), so it cannot rank checkpoints; use modes or high_quality.'
        )


def _check_g_batch_statistics(eval_config, pack, metrics):
    """Fails unless every evaluation batch that G normalises by its own statistics is one
    of the protocol's: whole packing slots per device, no padded last batch, no class
    subsets."""
    ec = eval_config
    if (ec.batch_size // jax.device_count()) % pack:
        raise ValueError(
            f'eval.g_batch_statistics=True normalises each packing slot of a batch: '
            f'eval.batch_size={ec.batch_size} over {jax.device_count()} device(s) must '
            f'give each device a multiple of train.pack={pack}.'
        )
    if ec.num_samples % ec.batch_size:
        raise ValueError(
            f'eval.g_batch_statistics=True: eval.num_samples={ec.num_samples} must be a '
            f'multiple of eval.batch_size={ec.batch_size} (a last, partial batch would be '
            'padded with repeated latents, which changes its statistics).'
        )
    if 'intra_fid' in metrics:
        raise ValueError(
            'eval.g_batch_statistics=True cannot evaluate intra_fid: its per-class passes '
            'would normalise batches of some classes only; drop intra_fid from eval.metrics.'
        )


def _intra_fid_class_groups(eval_config, num_classes, feature_dim):
    """The groups of classes whose moments are held at once (INTRA_FID_MAX_BYTES); fails
    before training when intra_fid cannot be computed."""
    spec = eval_config.metrics
    if num_classes is None:
        raise ValueError(
            f'eval.metrics={spec!r}: intra_fid needs a class-conditional generator '
            '(model.conditioning set, on a dataset with labels).'
        )
    per_class = eval_config.intra_fid_per_class
    if (
        eval_config.num_samples if per_class is None else per_class * num_classes
    ) < 2 * num_classes:
        raise ValueError(
            f'eval.metrics={spec!r}: intra_fid needs 2 generated samples per class at least: '
            f'eval.intra_fid_per_class={per_class}, eval.num_samples={eval_config.num_samples}, '
            f'{num_classes} classes.'
        )
    per_pass = max(1, INTRA_FID_MAX_BYTES // (2 * feature_dim**2 * 8))
    return [range(c, min(c + per_pass, num_classes)) for c in range(0, num_classes, per_pass)]


def _stacked_mnist_digits(classify, images):
    """Digits [N, 3] that the MNIST classifier reads in the R, G, B channels of uint8 images.

    Another resolution is brought back to the classifier's 28x28 by Lanczos, the filter the
    source used to resize the stacks (antialiased, on device), and quantised again.
    """
    n, height, width, _ = images.shape
    size, _, _ = classifiers.get_spec(STACKED_MNIST_CLASSIFIER).input_shape
    if (height, width) != (size, size):
        images = jax.image.resize(
            images.astype(jnp.float32), (n, size, size, 3), method='lanczos3', antialias=True
        )
        images = jnp.clip(jnp.round(images), 0, 255).astype(jnp.uint8)
    channels = jnp.moveaxis(images, -1, 1).reshape(3 * n, size, size, 1)
    return classify(channels)['logits'].argmax(axis=-1).reshape(n, 3)


@dataclasses.dataclass
class Features:
    """What the metrics need: moments of all features, and the first rows kept whole."""

    mean: np.ndarray
    cov: np.ndarray
    count: int
    features: np.ndarray
    logits: np.ndarray
    class_mean: np.ndarray | None = None  # [C, d], for intra_fid.
    class_cov: np.ndarray | None = None  # [C, d, d]


def _collect(batches, keep, classes=None):
    """Streams (features, logits, labels) host batches into float64 moments, per class too
    for the classes in the range ``classes``; keeps the first ``keep`` rows."""
    moments, kept_f, kept_l, n_kept = None, [], [], 0
    for features, logits, labels in batches:
        features = np.asarray(features, np.float64)
        if moments is None:
            moments = fid.MomentAccumulator(features.shape[1])
            per_class = classes and fid.ClassMomentAccumulator(features.shape[1], classes)
        moments.update(features)
        if classes:
            per_class.update(features, labels)
        if n_kept < keep:
            kept_f.append(features[: keep - n_kept])
            kept_l.append(np.asarray(logits[: keep - n_kept], np.float64))
            n_kept += len(kept_f[-1])
    return Features(
        *moments.result(),
        moments.count,
        np.concatenate(kept_f) if kept_f else None,
        np.concatenate(kept_l) if kept_l else None,
        *(per_class.result() if classes else (None, None)),
    )


def _save_atomically(path, **arrays):
    """np.savez to ``path`` through a temporary file: a half-written cache is never read."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + f'.tmp{os.getpid()}.npz'
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _reference_source(config, source):
    """The source of the reference images: the training source, or for TFDS the split
    ``eval.reference_split``; another split of a single-split source fails."""
    split, data_config = config.eval.reference_split, config.data
    if split == 'train':
        return source
    if data_config.source != 'tfds':
        raise ValueError(
            f'eval.reference_split={split!r}: data.source={data_config.source!r} has one '
            "split; use 'train' (the whole dataset) or a TFDS dataset."
        )
    return data_lib.get_source(data_config, resolution=data_config.resolution, split=split)


class Evaluator:
    """Computes the configured metrics of a generator against its training data."""

    def __init__(
        self,
        config,
        generator,
        source,
        mesh,
        num_classes=None,
        ema_statistics=None,
        truncation=None,
    ):
        """``num_classes``: a conditional G's classes, drawn in turn (balanced); else None.
        ``ema_statistics``: the run's ``standing.for_run``, if the caller has built it.
        ``truncation``: BigGAN's truncation threshold for the latents (None: none);
        ``eval.truncation_psi``: StyleGAN2's truncation of w (1: none)."""
        ec, data_source = config.eval, config.data.source
        self.config, self.mesh, self._num_classes = config, mesh, num_classes
        self.truncation = check_truncation(truncation)
        self.source = _reference_source(config, source)
        self.metrics = parse_metrics(ec.metrics)
        _check_metrics_fit_data(ec.metrics, self.metrics, ec.best_metric, data_source)
        if ec.batch_size % jax.device_count():
            raise ValueError(
                f'eval.batch_size={ec.batch_size} is not divisible by the '
                f'number of devices ({jax.device_count()}).'
            )
        if ec.g_batch_statistics:
            _check_g_batch_statistics(ec, config.train.pack, self.metrics)
        # The EMA generator's own statistics (standing.py), when it is the one evaluated.
        self._standing = None
        if ec.use_ema:
            self._standing = ema_statistics or standing.for_run(
                config, generator, mesh, num_classes
            )
        self._split = NamedSharding(mesh, P(AXIS))
        z_key = jax.random.PRNGKey(ec.seed)
        truncated = with_truncation_psi(generator, ec.truncation_psi)

        def generate(g_variables, indices):
            """The samples of this device's share of the global indices, latents keyed by
            index."""
            z = sample_latents(
                z_key,
                indices,
                config.model.z_dim,
                distribution=config.model.z_distribution,
                truncation=truncation,
            )
            labels = None if num_classes is None else indices % num_classes
            if ec.g_batch_statistics:  # The batch's statistics; the updated ones dropped.
                images, _ = truncated.apply(
                    g_variables, z, labels, train=True, mutable=['batch_stats']
                )
                return images
            return truncated.apply(g_variables, z, labels, train=False)

        def sharded(fn, *in_specs):
            return parallel.jit_sharded(fn, mesh, in_specs=in_specs, out_specs=P(AXIS))

        # Built only when needed: the 2-D data have no images to extract features from.
        self.extractor = None
        if any(name in IMAGE_METRICS for name in self.metrics):
            self.extractor = extractors_lib.get_extractor(
                ec.extractor, inception_weights=ec.inception_weights
            )
            # Before training: a shape the extractor cannot read fails now, not at the first
            # evaluation.
            self.feature_dim = self.extractor.check_input(self.source.image_shape)
            if 'intra_fid' in self.metrics:
                self._class_groups = _intra_fid_class_groups(ec, num_classes, self.feature_dim)
            self._extractor_vars = jax.device_put(
                self.extractor.variables, parallel.replicated(mesh)
            )
            extract = self.extractor.apply

            def generate_and_extract(g_variables, extractor_vars, indices):
                out = extract(extractor_vars, images_to_uint8(generate(g_variables, indices)))
                return out['features'], out['logits']

            self._generated = sharded(generate_and_extract, P(), P(), P(AXIS))
            self._real = sharded(
                lambda v, images: tuple(extract(v, images)[k] for k in ('features', 'logits')),
                P(),
                P(AXIS),
            )
        self._reference = None
        self._reference_labels = None  # Of reference_indices(all), read once for intra_fid.
        if 'modes' in self.metrics:
            self._init_modes(source, generate, sharded)

    def _init_modes(self, source, generate, sharded):
        """The program giving what the modes are read from, its statistics, label, protocol."""
        ec, data_source = self.config.eval, self.config.data.source
        if data_source in MIXTURES:
            mixture = source.mixture
            self._modes_label = f'-{mixture.name}'
            self._modes = sharded(generate, P(), P(AXIS))
            self._mode_stats = lambda points: modes.mixture_mode_stats(
                points,
                mixture.centers,
                mixture.std,
                max_std=MODES_MAX_STD,
                min_count=MODES_MIN_COUNT,
            )
            self._modes_protocol = {
                'dataset': data_source,
                'num_samples': ec.num_samples,
                'num_modes': len(mixture.centers),
                'std': mixture.std,
                'max_std': MODES_MAX_STD,
                'min_count': MODES_MIN_COUNT,
                'high_quality': 'nearest mode closer than max_std * std',
                'kl': 'KL(p || uniform), p the high-quality samples over their nearest modes',
            }
            return
        classify, info = classifiers.load_classifier(STACKED_MNIST_CLASSIFIER)
        size = info['input_shape'][0]
        self._modes_label = STACKED_MNIST_LABEL
        self._modes = sharded(
            lambda g_variables, indices: _stacked_mnist_digits(
                classify, images_to_uint8(generate(g_variables, indices))
            ),
            P(),
            P(AXIS),
        )
        self._mode_stats = modes.stacked_mnist_mode_stats
        self._modes_protocol = {
            'dataset': data_source,
            'num_samples': ec.num_samples,
            'num_modes': modes.STACKED_MNIST_MODES,
            'mode': '100 d_R + 10 d_G + d_B',
            'classifier': STACKED_MNIST_CLASSIFIER,
            'classifier_sha256': info['sha256'],
            'classifier_test_accuracy': info['test_accuracy'],
            'quantised': 'uint8',
            'resize': (
                'none' if self.config.data.resolution == size else f'lanczos3_antialias_{size}'
            ),
            'kl': 'KL(p || uniform), p the samples over the 1000 modes',
        }

    # ---- Reference statistics -------------------------------------------------
    def _reference_protocol(self):
        ec, dc = self.config.eval, self.config.data
        n = (
            len(self.source)
            if ec.reference_num is None
            else min(ec.reference_num, len(self.source))
        )
        return {
            'dataset': self.source.name,
            'split': ec.reference_split if dc.source == 'tfds' else 'all',
            'resolution': dc.resolution,
            'num_images': n,
            'images': 'num_images drawn without replacement, uint8',
            'subset_seed': ec.seed,
            'extractor': self.extractor.name,
            'extractor_sha256': self.extractor.weights_sha256,
            'resize': self.extractor.resize,
            'logits': self.extractor.logits,
        }

    def reference_indices(self, n):
        """The reference images: ``n`` of the source in a seeded random order (``eval.seed``),
        so a subset (``eval.reference_num``, the rows KID and PRDC keep) is not biased
        toward the source's first classes (a folder dataset is sorted by class)."""
        order = np.random.default_rng(self.config.eval.seed).permutation(len(self.source))
        return order[:n]

    def _process_rows(self, indices, start):
        """This process's rows of the batch of ``indices`` from ``start`` (the last batch
        padded with its last index), and how many of the batch's rows are real."""
        batch = self.config.eval.batch_size
        rows = batch // jax.process_count()
        padded = [indices[min(start + r, len(indices) - 1)] for r in range(batch)]
        first_row = jax.process_index() * rows
        return padded[first_row : first_row + rows], min(batch, len(indices) - start)

    def _real_batches(self, order):
        """Feature batches of the source's images ``order``, each process loading its rows."""
        for start in range(0, len(order), self.config.eval.batch_size):
            indices, take = self._process_rows(order, start)
            local = np.stack([self.source[i]['image'] for i in indices])
            images = jax.make_array_from_process_local_data(self._split, local)
            features, logits = self._real(self._extractor_vars, images)
            labels = [self.source.label(i) for i in order[start : start + take]]
            yield (
                multihost_utils.process_allgather(features, tiled=True)[:take],
                multihost_utils.process_allgather(logits, tiled=True)[:take],
                np.asarray(labels),
            )

    def reference(self):
        """Reference moments and kept features, from the cache when it holds them."""
        if self._reference is not None:
            return self._reference
        protocol = self._reference_protocol()
        keep = self.config.eval.num_samples
        # intra_fid's first group of classes rides on this pass; the cache holds its
        # per-class moments only when asked for.
        classes = self._class_groups[0] if 'intra_fid' in self.metrics else None
        per_class = {'per_class': [classes.start, classes.stop]} if classes else {}
        path = self._cache_path({**protocol, 'keep': keep, **per_class})
        if os.path.exists(path):
            with np.load(path) as cached:
                features = Features(
                    cached['mean'],
                    cached['cov'],
                    int(cached['count']),
                    cached['features'],
                    cached['logits'],
                    *((cached['class_mean'], cached['class_cov']) if per_class else ()),
                )
            self._reference = (features, protocol)
            return self._reference
        order = self.reference_indices(protocol['num_images'])
        features = _collect(self._real_batches(order), keep, classes)
        if jax.process_index() == 0:
            _save_atomically(
                path,
                mean=features.mean,
                cov=features.cov,
                count=features.count,
                features=features.features,
                logits=features.logits,
                protocol=json.dumps(protocol),
                **(
                    {'class_mean': features.class_mean, 'class_cov': features.class_cov}
                    if per_class
                    else {}
                ),
            )
        self._reference = (features, protocol)
        return self._reference

    def _cache_path(self, key_fields):
        key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:24]
        cache_dir = os.path.expanduser(self.config.eval.cache_dir or DEFAULT_CACHE)
        return os.path.join(cache_dir, f'{key}.npz')

    def _reference_class_moments(self, classes):
        """(means, covariances) of the reference images of ``classes`` (a range), from the
        cache when it holds them: intra_fid's groups after the first."""
        protocol = self._reference_protocol()
        path = self._cache_path({**protocol, 'class_moments': [classes.start, classes.stop]})
        if os.path.exists(path):
            with np.load(path) as cached:
                return cached['class_mean'], cached['class_cov']
        order = self.reference_indices(protocol['num_images'])
        if self._reference_labels is None:  # Once for all the groups (TFDS decodes to read one).
            self._reference_labels = np.array([self.source.label(i) for i in order])
        labels = self._reference_labels
        chosen = order[(labels >= classes.start) & (labels < classes.stop)]
        features = _collect(self._real_batches(chosen), 0, classes)
        if jax.process_index() == 0:
            _save_atomically(
                path,
                class_mean=features.class_mean,
                class_cov=features.class_cov,
                protocol=json.dumps(protocol),
            )
        return features.class_mean, features.class_cov

    # ---- Generated samples ----------------------------------------------------
    def _generated_batches(self, program, indices, *args):
        """(indices, host outputs) of ``program(*args, indices)`` batch by batch."""
        for start in range(0, len(indices), self.config.eval.batch_size):
            rows, take = self._process_rows(indices, start)
            shard = jax.make_array_from_process_local_data(self._split, np.asarray(rows, np.int32))
            out = multihost_utils.process_allgather(program(*args, shard), tiled=True)
            yield indices[start : start + take], jax.tree.map(lambda x: x[:take], out)

    def _generated_features(self, g_variables, indices, keep, classes):
        """Features of the generated samples ``indices``; sample i has class i % classes
        (generate), the label intra_fid reads."""
        batches = self._generated_batches(
            self._generated, indices, g_variables, self._extractor_vars
        )
        return _collect(
            (
                (features, logits, batch_indices % (self._num_classes or 1))
                for batch_indices, (features, logits) in batches
            ),
            keep,
            classes,
        )

    def _intra_fid_samples(self):
        """The number of samples intra_fid reads (sample i has class i % classes)."""
        per_class = self.config.eval.intra_fid_per_class
        return self.config.eval.num_samples if per_class is None else per_class * self._num_classes

    def _intra_fid_distances(self, g_variables, fake, real):
        """The Fréchet distance of each class, group by group of classes (their samples and
        reference images); the first group's moments come from the main pass (``fake``,
        ``real``) when it generated intra_fid's samples."""
        samples = np.arange(self._intra_fid_samples())
        labels = samples % self._num_classes
        distances = []
        for group, classes in enumerate(self._class_groups):
            if group == 0:
                real_moments = real.class_mean, real.class_cov
            else:
                real_moments = self._reference_class_moments(classes)
            if group == 0 and fake.class_mean is not None:
                fake_moments = fake.class_mean, fake.class_cov
            else:
                chosen = samples[(labels >= classes.start) & (labels < classes.stop)]
                fake_group = self._generated_features(g_variables, chosen, 0, classes)
                fake_moments = fake_group.class_mean, fake_group.class_cov
            distances.append(fid.intra_frechet_distances(*fake_moments, *real_moments))
        return np.concatenate(distances)

    def _image_metrics(self, g_variables):
        """(values, per-class values) of the feature-based metrics against the reference."""
        ec = self.config.eval
        real, _ = self.reference()
        intra = 'intra_fid' in self.metrics
        # The main pass gives intra_fid's first group when it generates intra_fid's samples.
        shared = intra and self._intra_fid_samples() == ec.num_samples
        fake = self._generated_features(
            g_variables,
            np.arange(ec.num_samples),
            ec.num_samples,
            self._class_groups[0] if shared else None,
        )
        label = self.extractor.label
        values, per_class = {}, {}
        if intra:
            distances = self._intra_fid_distances(g_variables, fake, real)
            values['intra_FID' + label] = distances.mean()
            per_class['intra_FID' + label] = [float(d) for d in distances]
        if 'fid' in self.metrics:
            values['FID' + label] = fid.frechet_distance(fake.mean, fake.cov, real.mean, real.cov)
        if 'kid' in self.metrics:
            mean, std = kid.kernel_inception_distance(
                real.features,
                fake.features,
                num_subsets=ec.kid_subsets,
                subset_size=ec.kid_subset_size,
                seed=ec.seed,
            )
            values['KID' + label], values['KID' + label + '_std'] = mean, std
        if 'is' in self.metrics:
            mean, std = inception_score.inception_score(fake.logits, splits=IS_SPLITS)
            values['IS' + label], values['IS' + label + '_std'] = mean, std
        if 'prdc' in self.metrics:
            n = min(len(real.features), len(fake.features))
            for name, value in prdc.prdc(real.features[:n], fake.features[:n], **PRDC_K).items():
                values[name + label] = value
        return values, per_class

    def _mode_metrics(self, g_variables):
        """Mode statistics of the generated points (mixtures) or per-channel digits."""
        indices = np.arange(self.config.eval.num_samples)
        outputs = np.concatenate(
            [out for _, out in self._generated_batches(self._modes, indices, g_variables)]
        )
        return {_MODE_NAMES[k] + self._modes_label: v for k, v in self._mode_stats(outputs).items()}

    def generator_variables(self, state):
        """The variables of the generator evaluated.

        G's own, or with ``eval.use_ema`` and an EMA in the run, the EMA weights with
        their own standing statistics (gan_jax/standing.py), never the live G's BatchNorm
        statistics and spectral-norm vectors.
        """
        if self._standing is None or state.ema_params is None:
            return {'params': state.g_params, 'batch_stats': state.g_batch_stats}
        stats = self._standing(state.ema_params, state.g_batch_stats)
        return {'params': state.ema_params, 'batch_stats': stats}

    def protocol(self):
        """Everything the numbers depend on besides the generator and the step; recorded
        with each result, and the key (``protocol_key``) the best checkpoint is kept under."""
        ec = self.config.eval
        protocol = {'ema': self._standing is not None, 'num_generated': ec.num_samples}
        protocol['seed'] = ec.seed
        if self._standing is not None:
            protocol['ema_statistics'] = self._standing.protocol
        if self.extractor is not None:
            reference = self._reference_protocol()
            kept = min(reference['num_images'], ec.num_samples)  # Rows for KID and PRDC.
            protocol.update(
                {
                    'quantised': 'uint8',
                    'reference': reference,
                    'num_reference': reference['num_images'],
                    'kid': {
                        'subsets': ec.kid_subsets,
                        'subset_size': min(ec.kid_subset_size, kept),
                    },
                    'is_splits': IS_SPLITS,
                    'prdc': {**PRDC_K, 'num_each': kept},
                }
            )
        if 'intra_fid' in self.metrics:
            protocol['intra_fid'] = {
                'classes': self._num_classes,
                'num_generated': int(self._intra_fid_samples()),
                'generated': 'sample i has class i % classes',
                'reference': 'the reference images of each class',
                'value': 'mean over classes of FID(generated of class c, reference of class c)',
            }
        if 'modes' in self.metrics:
            protocol['modes'] = self._modes_protocol
        if self.truncation is not None:
            protocol['truncation'] = self.truncation
        if ec.truncation_psi != 1:
            protocol['truncation_psi'] = ec.truncation_psi
        if ec.g_batch_statistics:
            protocol['g_batch_statistics'] = {'batch_size': ec.batch_size}
        return protocol

    def evaluate(self, state, step):
        """All configured metrics for ``state`` and the protocol that produced them."""
        g_variables = self.generator_variables(state)
        values, per_class = {}, {}
        if self.extractor is not None:
            values, per_class = self._image_metrics(g_variables)
        if 'modes' in self.metrics:
            values.update(self._mode_metrics(g_variables))
        result = {'metrics': {k: float(v) for k, v in values.items()}}
        if per_class:  # intra_fid's terms, class by class.
            result['per_class'] = per_class
        return {**result, 'protocol': {'step': int(step), **self.protocol()}}

    def best_key(self):
        """The metric name (with its extractor or data label) that ranks checkpoints, or None."""
        best = self.config.eval.best_metric
        if best is None:
            return None
        return best + (self._modes_label if _FAMILY[best] == 'modes' else self.extractor.label)


def protocol_key(protocol):
    """A short hash of a protocol: results under equal keys are comparable."""
    return hashlib.sha256(json.dumps(protocol, sort_keys=True).encode()).hexdigest()[:16]


def write_result(workdir, result):
    """Writes ``eval_<step>.json``, or ``eval_<step>-<k>.json`` when that exists already,
    so that no earlier result is overwritten."""
    stem = os.path.join(workdir, f'eval_{result["protocol"]["step"]}')
    path, k = stem + '.json', 1
    while os.path.exists(path):
        k += 1
        path = f'{stem}-{k}.json'
    with open(path, 'w') as f:
        json.dump(result, f, indent=2)
    return path
