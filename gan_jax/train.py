"""The training loop: build everything from the config, resume, train, save.

``train(config, workdir)`` is the whole program behind ``launch.py``; tests call
it directly. Every process runs it; only process 0 writes logs and samples.
"""

import itertools
import os
import signal
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from gan_jax import builder, parallel, plots, run_lock, sampling, standing
from gan_jax import checkpoint as ckpt_lib
from gan_jax import config as config_lib
from gan_jax import data as data_lib
from gan_jax import evaluate as eval_lib
from gan_jax import logging as log_lib
from gan_jax import step as step_lib
from gan_jax.parallel import to_host


class NonFiniteLossError(FloatingPointError):
    """Training diverged; the last checkpoint is kept."""


class _Preemption:
    """Notices SIGTERM (pre-emption) so the loop can save before exiting.

    With several processes, JAX's own pre-emption service (started by
    ``jax.distributed.initialize``) decides, so that all processes stop at the
    same step and save together.
    """

    def __init__(self):
        self.requested = False
        self._previous = None
        if jax.process_count() == 1:
            self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        del signum, frame
        self.requested = True

    def reached(self, step):
        if jax.process_count() > 1:
            return multihost_utils.reached_preemption_sync_point(step)
        return self.requested

    def close(self):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def _make_sampler(generator, config, rng, num_classes):
    """Jitted ``(params, batch_stats) -> samples`` for fixed latents (and labels).

    Images come back quantised to uint8 (what a PNG shows), 2-D points as floats.
    """
    z_key = jax.random.split(rng)[1]  # Training draws with fold_in(rng, step) instead.
    labels, columns = sampling.grid_layout(config.log.num_samples, num_classes)
    indices = np.arange(config.log.num_samples if labels is None else len(labels))

    @jax.jit
    def sample(params, batch_stats):
        z = sampling.sample_latents(
            z_key, indices, config.model.z_dim, distribution=config.model.z_distribution
        )
        out = generator.apply(
            {'params': params, 'batch_stats': batch_stats}, z, labels, train=False
        )
        return sampling.images_to_uint8(out) if out.ndim == 4 else out

    return sample, columns


def _scatter_extent(source, n=2000):
    """Half-width of a square view holding the data with a margin (2-D sources)."""
    points = np.stack([source[i]['image'] for i in range(min(n, len(source)))])
    return 1.25 * float(np.abs(points).max())


def _write_samples(sampler, state, step, workdir, writer, is_main, ema_statistics):
    """The fixed-latent samples (EMA generator when there is one, with its own standing
    statistics) to PNG and TensorBoard.

    Images as a grid (a row per class for conditional runs), 2-D points as a scatter.
    """
    params, stats = state.g_params, state.g_batch_stats
    if state.ema_params is not None:
        params, stats = state.ema_params, ema_statistics(state.ema_params, stats)
    sample, columns, extent = sampler
    samples = to_host(sample(params, stats))
    grid = (
        log_lib.image_grid(samples, columns)
        if samples.ndim == 4
        else log_lib.scatter_image(samples, extent)
    )
    writer.write_image(step, 'samples', grid)
    if is_main:
        log_lib.save_png(os.path.join(workdir, 'samples', f'step_{step:07d}.png'), grid)


@jax.jit
def _all_finite(tree):
    return jax.tree.reduce(lambda ok, x: ok & jnp.all(jnp.isfinite(x)), tree, jnp.bool_(True))


def _check_finite(step, scalars, last_saved, state=None):
    """Raises before anything non-finite is logged as progress or saved."""
    bad = {k: v for k, v in scalars.items() if not np.isfinite(v)}
    if state is not None and not to_host(_all_finite(state)):
        bad['parameters or optimiser state'] = 'non-finite'
    if bad:
        kept = (
            f'the checkpoint of step {last_saved} is kept'
            if last_saved is not None
            else 'no checkpoint was written'
        )
        raise NonFiniteLossError(
            f'Non-finite loss at step {step}: {bad}; {kept} and nothing was saved after '
            f'it. Lower the learning rates (optim.g_lr, optim.d_lr) or change the loss.'
        )


def _evaluate(evaluator, best, state, step, workdir, writer, is_main):
    """Metrics of the current generator: to eval_<step>.json, the logs, and the best checkpoint."""
    result = evaluator.evaluate(state, step)
    metrics = result['metrics']
    if is_main:
        eval_lib.write_result(workdir, result)
        print(
            f'eval at step {step}: ' + ', '.join(f'{k} {v:.4g}' for k, v in metrics.items()),
            file=sys.stderr,
            flush=True,
        )
    writer.write_scalars(step, {f'eval/{k}': v for k, v in metrics.items()})
    if best is not None and best.update(step, state, metrics):
        logging.info('New best %s %.4g at step %d.', best.metric, best.value, step)


def _check_steps_per_call(config, step):
    """Every interval must be a multiple of ``train.steps_per_call``; fails naming the key."""
    per_call = config.train.steps_per_call
    intervals = {
        'train.steps': config.train.steps,
        'log.every_steps': config.log.every_steps,
        'log.sample_every_steps': config.log.sample_every_steps,
        'checkpoint.every_steps': config.checkpoint.every_steps,
        'eval.every_steps': config.eval.every_steps,
        'the step to resume from': step,
    }
    bad = {k: v for k, v in intervals.items() if per_call < 1 or v % per_call}
    if bad:
        raise ValueError(
            f'train.steps_per_call={per_call} must be >= 1 and divide {bad}: the steps of one '
            'call run as one program, so logs, samples, evaluations and checkpoints fall '
            'between calls.'
        )


def _real_data(config, source, mesh, step):
    """What each compiled call reads: the whole dataset on the device (``data.on_device``),
    or host batches for ``train.steps_per_call`` steps, starting at ``step``.

    The host stream's position is a function of the step, so a run resumes on any
    number of processes and devices.
    """
    if config.data.on_device:
        table = jax.device_put(source.as_arrays(), parallel.replicated(mesh))
        return itertools.repeat(table)
    per_call = config.train.steps_per_call
    iterator = data_lib.make_train_iterator(
        source,
        global_batch=config.train.batch_size,
        batches_per_step=config.train.n_dis * per_call,
        seed=config.seed,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        start_step=step // per_call,
        num_threads=config.data.num_threads,
        grad_accum=config.train.grad_accum,
        local_devices=jax.local_device_count(),
        reshuffle_each_epoch=config.data.reshuffle_each_epoch,
    )
    return data_lib.device_prefetch(iterator, parallel.batch_sharding(mesh))


class RunFolderFullError(OSError):
    """The disk holding the run folder is full; the checkpoints already saved are intact."""


def _run_folder_full(workdir, error, saved=None):
    """RunFolderFullError for ``error`` (a full disk or quota), naming the checkpoints
    already saved (``saved``, a list of steps; None: not opened yet)."""
    intact = (
        '' if saved is None else f' The checkpoints saved before ({saved or "none"}) are intact;'
    )
    return RunFolderFullError(
        f'No space left for the run folder {workdir} ({error}).{intact} Free some space, then '
        'run the same command to resume.'
    )


def _close(checkpointers, writer, preemption, workdir, *, failed):
    """Finishes the pending saves and closes the run's writers.

    A failed save raises CheckpointSaveError, and a full disk when the logs are flushed
    RunFolderFullError, unless the run is already stopping with an error (``failed``):
    then they are logged, so that the first error is the one raised.
    """
    errors = []
    for c in checkpointers:
        try:
            c.close()
        except ckpt_lib.CheckpointSaveError as error:
            logging.error('%s', error)
            errors.append(error)
    try:
        writer.close()
    except OSError as error:
        if not ckpt_lib.is_disk_full(error):
            raise
        errors.append(_run_folder_full(workdir, error))
        logging.error('%s', errors[-1])
    finally:
        preemption.close()
    if errors and not failed:
        raise errors[0]


def train(config, workdir, command=None):
    """Trains (or resumes) the run in ``workdir``; returns the final train state."""
    parallel.check_batch_divisible(config.train.batch_size)
    parallel.check_batch_divisible(builder.g_batch_size(config), 'train.g_batch_size')
    is_main = jax.process_index() == 0
    if config.dry_run:  # Needs the data's shape, not the data: nothing is downloaded.
        info = data_lib.source_info(config.data, resolution=config.data.resolution)
        setup = builder.build(config, source=info)
        if is_main:
            print(config, builder.describe(config, setup), sep='\n')
        return None
    setup = builder.build(config)

    os.makedirs(workdir, exist_ok=True)
    lock = run_lock.RunLock(workdir)

    def claim_folder():
        try:
            lock.acquire()
            try:
                config_lib.save_or_check(config, workdir, command or sys.argv)
            except Exception:
                lock.release()
                raise
        except OSError as error:
            if not ckpt_lib.is_disk_full(error):
                raise
            raise _run_folder_full(workdir, error) from error

    # Every process stops with process 0's error (another live run, another config).
    parallel.run_on_process_zero(claim_folder)
    try:
        return _train_in_folder(config, workdir, setup, lock)
    finally:
        if is_main:
            lock.release()


def _train_in_folder(config, workdir, setup, lock):
    """The training loop of ``train``, once the run holds its folder."""
    source, generator, init_state = setup.source, setup.generator, setup.init_state
    is_main = jax.process_index() == 0
    mesh = parallel.make_mesh()
    # Built before training so that missing extractor weights fail at once.
    evaluator, best = None, None
    ema_statistics = standing.for_run(config, generator, mesh, setup.num_classes)
    if config.eval.every_steps:
        evaluator = eval_lib.Evaluator(
            config, generator, source, mesh, setup.num_classes, ema_statistics
        )
        if config.eval.best_metric:
            protocol = evaluator.protocol()
            best = ckpt_lib.BestCheckpoint(
                workdir,
                evaluator.best_key(),
                eval_lib.BEST_DIRECTION[config.eval.best_metric],
                protocol,
                eval_lib.protocol_key(protocol),
            )
    state = jax.jit(init_state, out_shardings=parallel.replicated(mesh))()
    train_steps = step_lib.compile_update(
        setup.make_train_steps(config), mesh, device_data=config.data.on_device
    )

    checkpointer = ckpt_lib.Checkpointer(
        os.path.join(workdir, 'checkpoints'), keep=config.checkpoint.keep, owner=True
    )
    restored, last_saved = checkpointer.restore_newest_readable(
        ckpt_lib.abstract_state(init_state, mesh)
    )
    if restored is not None:
        state = restored
        logging.info('Resumed from the checkpoint of step %d in %s.', last_saved, workdir)
    step = int(to_host(state.step))
    per_call = config.train.steps_per_call
    _check_steps_per_call(config, step)
    data = _real_data(config, source, mesh, step)

    extent = _scatter_extent(source) if len(source.image_shape) == 1 else None
    sampler = (*_make_sampler(generator, config, to_host(state.rng), setup.num_classes), extent)
    writer = log_lib.MetricWriter(workdir, enabled=is_main)
    progress = log_lib.ProgressBar(config.train.steps, config.train.batch_size, enabled=is_main)
    preemption = _Preemption()
    total = config.train.steps
    failed = True
    try:
        while step < total:
            state, metrics = train_steps(state, next(data))
            step += per_call
            last = step == total
            if step % config.log.every_steps == 0 or last:
                scalars = to_host(metrics)
                _check_finite(step, scalars, last_saved)
                progress.update(step, scalars)
                if progress.steps_per_sec:
                    scalars['steps_per_sec'] = progress.steps_per_sec
                    scalars['images_per_sec'] = progress.steps_per_sec * config.train.batch_size
                writer.write_scalars(step, scalars)
                if is_main:
                    lock.refresh()
            if step % config.log.sample_every_steps == 0 or last:
                _write_samples(sampler, state, step, workdir, writer, is_main, ema_statistics)
            if evaluator and (step % config.eval.every_steps == 0 or last):
                _evaluate(evaluator, best, state, step, workdir, writer, is_main)
            preempted = preemption.reached(step)
            if step % config.checkpoint.every_steps == 0 or last or preempted:
                _check_finite(step, to_host(metrics), last_saved, state)
                checkpointer.save(step, state)
                last_saved = step
            if preempted:
                logging.warning('Pre-empted: saved the checkpoint of step %d; exiting.', step)
                break
        failed = False
    except OSError as error:
        if not ckpt_lib.is_disk_full(error):
            raise
        raise _run_folder_full(workdir, error, checkpointer.all_steps()) from error
    finally:
        checkpointers = ([best.checkpointer] if best else []) + [checkpointer]
        _close(checkpointers, writer, preemption, workdir, failed=failed)
    if is_main and step == total:
        logging.info('Curves: %s', plots.plot_run(workdir))
    return state
