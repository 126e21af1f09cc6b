"""Using a trained generator: sharded sampling in batches, exports, interpolations, class grids.

``Sampler`` runs G in inference mode as one ``jax.jit(jax.shard_map(...))`` program over
the mesh's data axis. Sample ``i`` of ``seed`` has the latent
``sampling.sample_latents(PRNGKey(seed), [i])`` and, for a conditional G, the label
``classes[i % len(classes)]`` (all classes in turn by default): the latents and labels
the evaluator draws with ``eval.seed = seed``, whatever the batch size or device count.
"""

import functools
import os

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from PIL import Image

from gan_jax import logging as log_lib
from gan_jax import parallel, sampling


def default_classes(num_classes, classes=None):
    """The classes labels cycle through: ``classes`` checked against G's, or all of them."""
    if num_classes is None:
        if classes is not None:
            raise ValueError(f'classes={classes!r}: this generator is unconditional.')
        return None
    if classes is None:
        return np.arange(num_classes, dtype=np.int32)
    classes = np.asarray(classes, np.int32).reshape(-1)
    bad = [int(c) for c in classes if not 0 <= c < num_classes]
    if bad or not len(classes):
        raise ValueError(
            f'classes={list(map(int, classes))}: this generator has classes 0..{num_classes - 1}.'
        )
    return classes


class Sampler:
    """``generator`` in inference mode over ``mesh``, ``batch_size`` samples per call.

    Images come back as uint8 [N, H, W, C] (quantised as a saved PNG and the
    evaluator see them), 2-D points as float32 [N, 2].
    """

    def __init__(self, generator, z_dim, num_classes, mesh, batch_size, z_distribution='normal'):
        if batch_size % mesh.size:
            raise ValueError(
                f'batch_size={batch_size} is not divisible by the number of devices ({mesh.size}).'
            )
        self.z_dim, self.num_classes, self.batch_size = z_dim, num_classes, batch_size
        self._split = NamedSharding(mesh, P(parallel.DATA_AXIS))
        self._replicated = parallel.replicated(mesh)

        def generate(variables, z, labels):
            out = generator.apply(
                variables, z, None if num_classes is None else labels, train=False
            )
            return sampling.images_to_uint8(out) if out.ndim == 4 else out

        spec = P(parallel.DATA_AXIS)
        self._program = parallel.jit_sharded(
            generate, mesh, in_specs=(P(), spec, spec), out_specs=spec
        )
        static = ('z_dim', 'truncation')
        draw = functools.partial(sampling.sample_latents, distribution=z_distribution)
        self._latents = jax.jit(draw, static_argnames=static, out_shardings=self._split)
        self._host_latents = jax.jit(draw, static_argnames=static)

    def put_variables(self, variables):
        """G's variables replicated over the mesh (do it once, pass the result to the calls)."""
        return jax.device_put(variables, self._replicated)

    def latents(self, seed, indices, truncation=None):
        """The latents of samples ``indices`` of ``seed`` (float32 [len(indices), z_dim])."""
        key = jax.random.PRNGKey(seed)
        return np.asarray(
            self._host_latents(key, np.asarray(indices), z_dim=self.z_dim, truncation=truncation)
        )

    def _run(self, variables, z, labels):
        """One padded batch of latents (device or host) and labels -> host outputs."""
        if labels is None:
            labels = np.zeros((self.batch_size,), np.int32)
        labels = jax.device_put(labels, self._split)
        z = jax.device_put(z, self._split)
        return multihost_utils.process_allgather(self._program(variables, z, labels), tiled=True)

    def batches(self, variables, num, seed=0, classes=None, truncation=None, progress=True):
        """Yields (start, outputs, labels or None) for samples 0..num-1 of ``seed``, in order.

        ``classes``: the labels cycle through them (default: all classes).
        """
        classes = default_classes(self.num_classes, classes)
        sampling.check_truncation(truncation)
        key = jax.random.PRNGKey(seed)
        batch = self.batch_size
        bar = log_lib.ProgressBar(-(-num // batch), batch, enabled=progress, unit='batch')
        for k, start in enumerate(range(0, num, batch)):
            indices = np.arange(start, start + batch)
            z = self._latents(key, indices, z_dim=self.z_dim, truncation=truncation)
            labels = None if classes is None else classes[indices % len(classes)]
            take = min(batch, num - start)
            out = self._run(variables, z, labels)[:take]
            bar.update(k + 1, {})
            yield start, out, None if labels is None else labels[:take]

    def apply(self, variables, z, labels=None):
        """Outputs for explicit latents [N, z_dim] (and labels [N], or class vectors [N, K])."""
        z = np.asarray(z, np.float32)
        n, batch = len(z), self.batch_size
        pad = -n % batch
        z = np.concatenate([z, np.zeros((pad, z.shape[1]), np.float32)])
        if labels is not None:
            labels = np.asarray(labels)
            labels = np.concatenate([labels, np.repeat(labels[:1], pad, axis=0)])
        out = [
            self._run(
                variables,
                z[s : s + batch],
                None if labels is None else labels[s : s + batch],
            )
            for s in range(0, len(z), batch)
        ]
        return np.concatenate(out)[:n]


def export(sampler, variables, num, out, seed=0, classes=None, truncation=None):
    """Writes samples 0..num-1 of ``seed``: a folder of PNGs ``000000.png``... (what
    pytorch-fid and clean-fid read) or, for ``out`` ending in .npz, arrays ``images``
    (or ``points`` for 2-D data) and ``labels`` (conditional G). Returns ``out``."""
    to_npz = out.endswith('.npz')
    chunks, all_labels = [], []
    for start, outputs, labels in sampler.batches(variables, num, seed, classes, truncation):
        if outputs.ndim != 4 and not to_npz:
            raise ValueError(f'--out={out!r}: this generator gives 2-D points; use a .npz file.')
        if labels is not None:
            all_labels.append(labels)
        if to_npz:
            chunks.append(outputs)
        elif jax.process_index() == 0:
            os.makedirs(out, exist_ok=True)
            for i, image in enumerate(outputs):
                log_lib.save_png(os.path.join(out, f'{start + i:06d}.png'), image)
    if to_npz and jax.process_index() == 0:
        arrays = {'images' if chunks[0].ndim == 4 else 'points': np.concatenate(chunks)}
        if all_labels:
            arrays['labels'] = np.concatenate(all_labels)
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        np.savez(out, **arrays)
    logging.info('Wrote %d samples to %s.', num, out)
    return out


def class_grid(sampler, variables, classes=None, per_class=8, seed=0, truncation=None):
    """A uint8 grid image: a row of samples ``0..per_class-1`` of ``seed`` for each class of
    ``classes`` (default: all), the latents of a row those of the samples before it."""
    if sampler.num_classes is None:
        raise ValueError('A class grid needs a class-conditional generator; this one is not.')
    labels = sampling.class_rows(default_classes(sampler.num_classes, classes), per_class)
    z = sampler.latents(seed, np.arange(len(labels)), truncation)
    return log_lib.image_grid(sampler.apply(variables, z, labels), per_class)


def _pairs(values, what):
    if values is None or len(values) < 2:
        raise ValueError(f'{what}={values}: interpolation needs two or more, a row per pair.')
    return list(zip(values[:-1], values[1:]))


def interpolate(sampler, variables, between, seeds, classes=None, steps=8, truncation=None):
    """Outputs [rows, steps, ...] of interpolations ``between`` 'seeds' or 'classes'.

    'seeds': a row from the first latent of each seed to the next's, spherically
    (``sampling.slerp``: the latents are Gaussian), a conditional G holding class
    ``classes[row % len(classes)]`` (default: all in turn). 'classes': for each seed
    of ``seeds`` its first latent held, a row from each class to the next, linearly
    in the one-hot class vector (``sampling.lerp``; G is linear in it up to its first
    nonlinearity).
    """
    if steps < 2:
        raise ValueError(f'steps={steps}: an interpolation needs two frames or more.')
    t = np.linspace(0.0, 1.0, steps)
    ends = np.stack([sampler.latents(s, [0], truncation)[0] for s in seeds])
    num_classes = sampler.num_classes
    if between == 'seeds':
        pairs = _pairs(seeds, 'seeds')
        z = np.stack(
            [np.asarray(sampling.slerp(ends[i], ends[i + 1], t)) for i in range(len(pairs))]
        )
        labels = None
        if num_classes is not None:
            cycle = default_classes(num_classes, classes)
            labels = np.repeat(cycle[np.arange(len(pairs)) % len(cycle)], steps)
    elif between == 'classes':
        if num_classes is None:
            raise ValueError("between='classes': this generator is unconditional.")
        pairs = _pairs(
            None if classes is None else default_classes(num_classes, classes), 'classes'
        )
        eye = np.eye(num_classes, dtype=np.float32)
        vectors = np.stack([np.asarray(sampling.lerp(eye[a], eye[b], t)) for a, b in pairs])
        z = np.repeat(np.repeat(ends[:, None], len(pairs), axis=1)[..., None, :], steps, axis=2)
        z = z.reshape(-1, steps, ends.shape[-1])
        labels = np.tile(vectors, (len(seeds), 1, 1)).reshape(-1, num_classes)
    else:
        raise ValueError(f"between={between!r}: choose 'seeds' or 'classes'.")
    rows = len(z)
    out = sampler.apply(variables, z.reshape(rows * steps, -1), labels)
    return out.reshape(rows, steps, *out.shape[1:])


def write_grid_and_gif(frames_by_row, grid_path, gif_path=None, duration_ms=120):
    """uint8 images [rows, steps, H, W, C] as one grid PNG (a row each) and an animated GIF
    whose frame k shows column k of every row, there and back."""
    if frames_by_row.ndim != 5:
        raise ValueError(
            f'outputs of shape {frames_by_row.shape}: grids and GIFs need images, '
            'this generator gives 2-D points.'
        )
    rows, steps = frames_by_row.shape[:2]
    flat = frames_by_row.reshape(rows * steps, *frames_by_row.shape[2:])
    log_lib.save_png(grid_path, log_lib.image_grid(flat, steps))
    if gif_path:
        frames = [log_lib.image_grid(frames_by_row[:, k], 1) for k in range(steps)]
        frames = frames + frames[-2:0:-1]
        pil = [Image.fromarray(f[..., 0] if f.shape[-1] == 1 else f) for f in frames]
        os.makedirs(os.path.dirname(os.path.abspath(gif_path)), exist_ok=True)
        pil[0].save(gif_path, save_all=True, append_images=pil[1:], duration=duration_ms, loop=0)
