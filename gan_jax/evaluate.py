"""Evaluation: generate, extract features, compute metrics, and record the protocol.

Used by the training loop every ``eval.every_steps`` and standalone:

    python -m gan_jax.evaluate --workdir RUN [--step N|best|latest]
                               [--metrics fid,kid,is,prdc] [--num_samples N]

which writes ``RUN/eval_<step>.json``. Generation and feature extraction run in
one sharded program over all devices; images are quantised to uint8 before
feature extraction, real and generated alike. Reference statistics are cached
under a key built from everything that changes them.
"""

import dataclasses
import hashlib
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax import parallel
from gan_jax import step as step_lib
from gan_jax.metrics import extractors as extractors_lib
from gan_jax.metrics import fid, inception_score, kid, prdc

AXIS = parallel.DATA_AXIS
METRICS = ('fid', 'kid', 'is', 'prdc')
# Metric name -> whether larger is better (for keeping the best checkpoint).
BEST_DIRECTION = {'FID': False, 'KID': False, 'IS': True, 'precision': True, 'recall': True,
                  'density': True, 'coverage': True}
# Metric name -> the eval.metrics entry that computes it.
_FAMILY = {'FID': 'fid', 'KID': 'kid', 'IS': 'is', 'precision': 'prdc', 'recall': 'prdc',
           'density': 'prdc', 'coverage': 'prdc'}
PRDC_K = {'pr_k': 3, 'dc_k': 5}
IS_SPLITS = 10
DEFAULT_CACHE = os.path.join('~', '.cache', 'gan_jax', 'reference_stats')


def parse_metrics(spec):
    """'fid,kid' -> ('fid', 'kid'); an unknown name fails, listing the known ones."""
    names = tuple(m.strip().lower() for m in spec.split(',') if m.strip())
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(f'eval.metrics={spec!r}: unknown {unknown}; choose from '
                         f'{", ".join(METRICS)} (comma-separated).')
    return names


@dataclasses.dataclass
class Features:
    """What the metrics need: moments of all features, and the first rows kept whole."""
    mean: np.ndarray
    cov: np.ndarray
    count: int
    features: np.ndarray
    logits: np.ndarray


def _collect(batches, keep):
    """Streams (features, logits) host batches into float64 moments; keeps ``keep`` rows."""
    moments, kept_f, kept_l, n_kept = None, [], [], 0
    for features, logits in batches:
        features = np.asarray(features, np.float64)
        if moments is None:
            moments = fid.MomentAccumulator(features.shape[1])
        moments.update(features)
        if n_kept < keep:
            kept_f.append(features[:keep - n_kept])
            kept_l.append(np.asarray(logits[:keep - n_kept], np.float64))
            n_kept += len(kept_f[-1])
    return Features(*moments.result(), moments.count, np.concatenate(kept_f),
                    np.concatenate(kept_l))


class Evaluator:
    """Computes the configured metrics of a generator against its training data."""

    def __init__(self, config, generator, source, mesh, num_classes=None):
        """``num_classes``: a conditional G's classes, drawn in turn (balanced); else None."""
        ec = config.eval
        self.config, self.source, self.mesh = config, source, mesh
        self.metrics = parse_metrics(ec.metrics)
        if ec.best_metric is not None and _FAMILY.get(ec.best_metric) not in self.metrics:
            raise ValueError(f'eval.best_metric={ec.best_metric!r} must be one of '
                             f'{", ".join(BEST_DIRECTION)} and computed by eval.metrics='
                             f'{ec.metrics!r}.')
        if ec.batch_size % jax.device_count():
            raise ValueError(f'eval.batch_size={ec.batch_size} is not divisible by the '
                             f'number of devices ({jax.device_count()}).')
        self.extractor = extractors_lib.get_extractor(
            ec.extractor, inception_weights=ec.inception_weights)
        self._extractor_vars = jax.device_put(self.extractor.variables,
                                              parallel.replicated(mesh))
        self._split = NamedSharding(mesh, P(AXIS))
        local = ec.batch_size // jax.device_count()
        z_key = jax.random.PRNGKey(ec.seed)
        extract = self.extractor.apply

        def generate_and_extract(g_variables, extractor_vars, start):
            indices = start + jax.lax.axis_index(AXIS) * local + jnp.arange(local)
            z = step_lib.sample_latents(z_key, indices, config.model.z_dim)
            labels = None if num_classes is None else indices % num_classes
            images = generator.apply(g_variables, z, labels, train=False)
            out = extract(extractor_vars, step_lib.images_to_uint8(images))
            return out['features'], out['logits']

        self._generated = jax.jit(jax.shard_map(
            generate_and_extract, mesh=mesh, in_specs=(P(), P(), P()), out_specs=P(AXIS)))
        self._real = jax.jit(jax.shard_map(
            lambda v, images: tuple(extract(v, images)[k] for k in ('features', 'logits')),
            mesh=mesh, in_specs=(P(), P(AXIS)), out_specs=P(AXIS)))
        self._reference = None

    # ---- Reference statistics -------------------------------------------------
    def _reference_protocol(self):
        ec, dc = self.config.eval, self.config.data
        n = len(self.source) if ec.reference_num is None else min(ec.reference_num,
                                                                  len(self.source))
        return {
            'dataset': self.source.name,
            'split': ec.reference_split if dc.source == 'tfds' else 'all',
            'resolution': dc.resolution,
            'num_images': n,
            'images': 'first num_images in dataset order, uint8',
            'extractor': self.extractor.name,
            'extractor_sha256': self.extractor.weights_sha256,
            'resize': self.extractor.resize,
        }

    def _real_batches(self, n):
        """Feature batches of source images 0..n-1, each process loading its rows."""
        batch = self.config.eval.batch_size
        rows = batch // jax.process_count()
        first_row = jax.process_index() * rows
        for start in range(0, n, batch):
            indices = [min(start + first_row + r, n - 1) for r in range(rows)]
            local = np.stack([self.source[i]['image'] for i in indices])
            images = jax.make_array_from_process_local_data(self._split, local)
            features, logits = self._real(self._extractor_vars, images)
            take = min(batch, n - start)
            yield (multihost_utils.process_allgather(features, tiled=True)[:take],
                   multihost_utils.process_allgather(logits, tiled=True)[:take])

    def reference(self):
        """Reference moments and kept features, from the cache when it holds them."""
        if self._reference is not None:
            return self._reference
        protocol = self._reference_protocol()
        keep = self.config.eval.num_samples
        key = hashlib.sha256(json.dumps({**protocol, 'keep': keep}, sort_keys=True)
                             .encode()).hexdigest()[:24]
        cache_dir = os.path.expanduser(self.config.eval.cache_dir or DEFAULT_CACHE)
        path = os.path.join(cache_dir, f'{key}.npz')
        if os.path.exists(path):
            with np.load(path) as cached:
                features = Features(cached['mean'], cached['cov'], int(cached['count']),
                                    cached['features'], cached['logits'])
            self._reference = (features, protocol)
            return self._reference
        features = _collect(self._real_batches(protocol['num_images']), keep)
        if jax.process_index() == 0:
            os.makedirs(cache_dir, exist_ok=True)
            tmp = path + f'.tmp{os.getpid()}.npz'
            np.savez(tmp, mean=features.mean, cov=features.cov, count=features.count,
                     features=features.features, logits=features.logits,
                     protocol=json.dumps(protocol))
            os.replace(tmp, path)  # Atomic: a half-written cache is never read.
        self._reference = (features, protocol)
        return self._reference

    # ---- Generated samples ----------------------------------------------------
    def _generated_batches(self, g_variables, n):
        batch = self.config.eval.batch_size
        for start in range(0, n, batch):
            features, logits = self._generated(g_variables, self._extractor_vars,
                                               jnp.int32(start))
            take = min(batch, n - start)
            yield (multihost_utils.process_allgather(features, tiled=True)[:take],
                   multihost_utils.process_allgather(logits, tiled=True)[:take])

    def evaluate(self, state, step):
        """All configured metrics for ``state`` and the protocol that produced them."""
        ec = self.config.eval
        use_ema = ec.use_ema and state.ema_params is not None
        params = state.ema_params if use_ema else state.g_params
        g_variables = {'params': params, 'batch_stats': state.g_batch_stats}
        real, ref_protocol = self.reference()
        fake = _collect(self._generated_batches(g_variables, ec.num_samples), ec.num_samples)
        label = self.extractor.label
        values = {}
        if 'fid' in self.metrics:
            values['FID' + label] = fid.frechet_distance(fake.mean, fake.cov,
                                                         real.mean, real.cov)
        if 'kid' in self.metrics:
            mean, std = kid.kernel_inception_distance(
                real.features, fake.features, num_subsets=ec.kid_subsets,
                subset_size=ec.kid_subset_size, seed=ec.seed)
            values['KID' + label], values['KID' + label + '_std'] = mean, std
        if 'is' in self.metrics:
            mean, std = inception_score.inception_score(fake.logits, splits=IS_SPLITS)
            values['IS' + label], values['IS' + label + '_std'] = mean, std
        if 'prdc' in self.metrics:
            n = min(len(real.features), len(fake.features))
            for name, value in prdc.prdc(real.features[:n], fake.features[:n],
                                         **PRDC_K).items():
                values[name + label] = value
        protocol = {
            'step': int(step), 'ema': bool(use_ema), 'num_generated': ec.num_samples,
            'seed': ec.seed, 'quantised': 'uint8', 'reference': ref_protocol,
            'num_reference': real.count,
            'kid': {'subsets': ec.kid_subsets, 'subset_size': min(
                ec.kid_subset_size, len(real.features), len(fake.features))},
            'is_splits': IS_SPLITS, 'prdc': {**PRDC_K, 'num_each': min(
                len(real.features), ec.num_samples)},
        }
        return {'metrics': {k: float(v) for k, v in values.items()}, 'protocol': protocol}

    def best_key(self):
        """The metric name (with its extractor label) that ranks checkpoints, or None."""
        best = self.config.eval.best_metric
        return None if best is None else best + self.extractor.label


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


def _restore(workdir, which, init_state, mesh):
    """(state, step) of checkpoint ``which``: 'latest', 'best' or a step number."""
    from gan_jax import checkpoint as ckpt_lib
    folder = 'checkpoints_best' if which == 'best' else 'checkpoints'
    checkpointer = ckpt_lib.Checkpointer(os.path.join(workdir, folder), keep=None)
    steps = checkpointer.all_steps()
    step = steps[-1] if which in ('best', 'latest') and steps else (
        int(which) if which.isdigit() else None)
    if step is None or step not in steps:
        raise ValueError(f'--step={which!r}: {workdir}/{folder} holds checkpoints {steps}; '
                         f'use latest, best or one of those steps.')
    state = checkpointer.restore(step, ckpt_lib.abstract_state(init_state, mesh))
    checkpointer.close()
    return state, step


def main(argv):
    from absl import flags
    import ml_collections
    from gan_jax import train as train_lib
    del argv
    f = flags.FLAGS
    with open(os.path.join(f.workdir, 'config.json')) as file:
        config = ml_collections.ConfigDict(json.load(file)['config'])
    for key in ('metrics', 'num_samples', 'extractor'):
        if getattr(f, key) is not None:
            config.eval[key] = getattr(f, key)
    config.eval.use_ema = f.ema if f.ema is not None else config.eval.use_ema
    setup = train_lib.build(config)
    source, generator, init_state = setup.source, setup.generator, setup.init_state
    mesh = parallel.make_mesh()
    evaluator = Evaluator(config, generator, source, mesh, setup.num_classes)
    state, step = _restore(f.workdir, f.step, init_state, mesh)
    result = evaluator.evaluate(state, step)
    if jax.process_index() == 0:
        path = write_result(f.workdir, result)
        print(json.dumps(result, indent=2))
        print(f'Wrote {path}', file=sys.stderr)


if __name__ == '__main__':
    from absl import app, flags
    flags.DEFINE_string('workdir', None, 'Run folder written by launch.py.', required=True)
    flags.DEFINE_string('step', 'latest', 'latest, best, or a checkpoint step.')
    flags.DEFINE_string('metrics', None, 'Comma-separated subset of fid,kid,is,prdc '
                        '(default: the run\'s eval.metrics).')
    flags.DEFINE_integer('num_samples', None, 'Generated images (default: eval.num_samples).')
    flags.DEFINE_string('extractor', None, 'Feature extractor (default: eval.extractor).')
    flags.DEFINE_bool('ema', None, 'Use the EMA generator (default: eval.use_ema).')
    app.run(main)
