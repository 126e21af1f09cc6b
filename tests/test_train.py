"""The training loop: exact resume, divergence and corrupt checkpoints."""

import os

import jax
import numpy as np
import optax
import pytest
from PIL import Image

from gan_jax import builder, parallel, train
from gan_jax import checkpoint as ckpt_lib
from gan_jax import state as state_lib
from gan_jax.data.folder import CorruptImageError
from tests import helpers


def _weights(state):
    return parallel.to_host(
        {
            'g': state.g_params,
            'd': state.d_params,
            'g_bn': state.g_batch_stats,
            'd_bn': state.d_batch_stats,
            'g_opt': state.g_opt_state,
            'd_opt': state.d_opt_state,
            'ema': state.ema_params,
            'aux': state.aux,
        }
    )


def _assert_bit_identical(a, b):
    flat_a, tree_a = jax.tree.flatten(a)
    flat_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(flat_a, flat_b):
        np.testing.assert_array_equal(x, y)


# Stateful toolbox ingredients: ADA's p and LeCam's EMA (TrainState.aux),
# spectral-norm vectors (batch_stats) and the EMA generator. (A decaying LR
# depends on train.steps, which this test changes; see test_config.py.)
TOOLBOX = {
    'augment.name': 'ada',
    'augment.ada_every_d_steps': 1,
    'augment.ada_p_init': 0.5,
    'reg.lecam_weight': 0.3,
    'reg.lecam_start_d_step': 0,
    'model.conditioning': 'projection',
    'model.d_spectral_norm': True,
    'model.g_spectral_norm': True,
    'ema.name': 'decay',
    'ema.decay': 0.9,
    'ema.start_step': 2,
}


@pytest.mark.slow
@pytest.mark.parametrize(
    'extra', [{}, pytest.param(TOOLBOX, marks=pytest.mark.heavy)], ids=['dcgan', 'toolbox']
)
def test_resume_is_bit_identical(tmp_path, extra):
    k = 3

    def config(steps):
        return helpers.tiny_config(**{'train.steps': steps, **extra})

    straight = train.train(config(2 * k), str(tmp_path / 'a'))
    first = train.train(config(k), str(tmp_path / 'b'))
    assert int(first.step) == k
    resumed = train.train(config(2 * k), str(tmp_path / 'b'))
    assert int(resumed.step) == 2 * k
    _assert_bit_identical(_weights(straight), _weights(resumed))
    if extra:  # Conditional: a row per class, isqrt(16) // 2 = 2 samples each, so 8 of 10
        # classes fit in the 16 samples (sampling.grid_layout).
        grid = np.asarray(Image.open(tmp_path / 'a' / 'samples' / 'step_0000006.png'))
        assert grid.shape == (8 * 30 + 2, 2 * 30 + 2)
    # Sanity check that the comparison can fail: one step fewer differs.
    shorter = train.train(config(2 * k - 1), str(tmp_path / 'c'))
    assert any(
        not np.array_equal(x, y)
        for x, y in zip(jax.tree.leaves(_weights(shorter)), jax.tree.leaves(_weights(straight)))
    )


@pytest.mark.slow
def test_ema_is_the_exponential_average_of_generator_params(tmp_path):
    # After one step with decay d: ema = d * initial + (1 - d) * updated.
    config = helpers.tiny_config(**{'ema.name': 'decay', 'ema.decay': 0.25, 'train.steps': 1})
    initial = builder.build(config).init_state().g_params
    state = train.train(config, str(tmp_path))
    expected = jax.tree.map(lambda p0, p1: 0.25 * p0 + 0.75 * p1, initial, state.g_params)
    for e, x in zip(jax.tree.leaves(parallel.to_host(state.ema_params)), jax.tree.leaves(expected)):
        np.testing.assert_allclose(e, x, rtol=1e-6, atol=1e-7)
    assert any(
        not np.allclose(p0, p1)
        for p0, p1 in zip(jax.tree.leaves(initial), jax.tree.leaves(state.g_params))
    )  # It did move.


def _diverging_optimizers(optim_config, *, steps, n_dis, differentiable_d, lazy_intervals):
    """Simulates divergence: the next update turns every parameter into NaN.

    Adam, as in the saved run, so that the checkpoint's optimiser state fits.
    """
    del optim_config, steps, n_dis, differentiable_d, lazy_intervals
    return optax.adam(float('nan')), optax.adam(float('nan'))


@pytest.mark.slow
def test_divergence_raises_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    workdir = str(tmp_path)
    config = helpers.tiny_config(**{'train.steps': 3, 'checkpoint.every_steps': 3})
    train.train(config, workdir)
    monkeypatch.setattr(state_lib, 'make_optimizers', _diverging_optimizers)
    longer = helpers.tiny_config(**{'train.steps': 9, 'checkpoint.every_steps': 1})
    with pytest.raises(train.NonFiniteLossError, match=r'step 4.*checkpoint of step 3 is kept'):
        train.train(longer, workdir)
    assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['3']


def _damage(step_dir, how):
    """Truncates every array file of a checkpoint, or deletes its largest file."""
    files = sorted(
        (p for p in step_dir.rglob('*') if p.is_file() and p.stat().st_size > 0),
        key=lambda p: p.stat().st_size,
    )
    assert files
    if how == 'truncated':
        for path in files:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        files[-1].unlink()


@pytest.mark.slow
@pytest.mark.parametrize(
    'how',
    [
        pytest.param('truncated', marks=pytest.mark.heavy),  # CI's 20 minutes.
        pytest.param('missing_file', marks=pytest.mark.heavy),
    ],
)
def test_unreadable_checkpoint_is_moved_aside_and_the_run_resumes_from_the_last_good_one(
    tmp_path, how
):
    def config(steps):
        return helpers.tiny_config(**{'train.steps': steps, 'checkpoint.every_steps': 3})

    train.train(config(3), str(tmp_path))
    at_6 = _weights(train.train(config(6), str(tmp_path)))  # Checkpoint 6, then damaged.
    _damage(tmp_path / 'checkpoints' / '6', how)
    assert int(train.train(config(9), str(tmp_path)).step) == 9
    moved = list((tmp_path / 'checkpoints_unreadable').iterdir())
    assert [p.name.split('-')[0] for p in moved] == ['6']  # Kept, not deleted.
    # The run went back to step 3 and redid steps 4-6 bit for bit.
    redone = ckpt_lib.Checkpointer(str(tmp_path / 'checkpoints'), keep=None)
    mesh = parallel.make_mesh()
    again = redone.restore(6, ckpt_lib.abstract_state(builder.build(config(9)).init_state, mesh))
    redone.close()
    for a, b in zip(jax.tree.leaves(_weights(again)), jax.tree.leaves(at_6)):
        np.testing.assert_array_equal(a, b)


def test_no_readable_checkpoint_fails_clearly_and_keeps_them(tmp_path):
    workdir = str(tmp_path)
    train.train(helpers.tiny_config(**{'train.steps': 3}), workdir)
    _damage(tmp_path / 'checkpoints' / '3', 'truncated')
    with pytest.raises(
        ckpt_lib.CheckpointError, match=r'No checkpoint .* can be read \(steps \[3\]\)'
    ):
        train.train(helpers.tiny_config(**{'train.steps': 6}), workdir)
    assert (tmp_path / 'checkpoints' / '3').exists()


def test_weight_clipping_keeps_every_critic_parameter_in_range(tmp_path):
    config = helpers.tiny_config(
        **{
            'train.loss': 'wasserstein',
            'reg.weight_clip': 0.01,
            'optim.name': 'rmsprop',
            'optim.d_lr': 5e-3,
            'train.steps': 2,
            'train.n_dis': 2,
        }
    )
    state = train.train(config, str(tmp_path))
    d_params = jax.tree.leaves(parallel.to_host(state.d_params))
    assert max(float(np.abs(p).max()) for p in d_params) <= 0.01
    # The clip binds: at lr 5e-3 RMSProp moves weights past 0.01 within two steps.
    assert any(np.isclose(np.abs(p).max(), 0.01) for p in d_params)


def _folder_config(images, skip):
    return helpers.tiny_config(
        **{
            'data.source': 'folder',
            'data.path': str(images),
            'data.skip_corrupt': skip,
            'train.steps': 1,
            'log.every_steps': 1,
            'log.sample_every_steps': 1,
            'checkpoint.every_steps': 1,
        }
    )


def test_unreadable_images_stop_the_run_before_training_naming_them(tmp_path):
    images, workdir = tmp_path / 'images', tmp_path / 'run'
    bad = helpers.corrupt_folder(images, n_good=8)
    with pytest.raises(CorruptImageError) as error:
        train.train(_folder_config(images, False), str(workdir))
    assert all(str(path) in str(error.value) for path in bad)
    assert not workdir.exists()  # Stopped before the run folder, let alone a step.


@pytest.mark.slow
def test_with_skip_corrupt_the_run_trains_and_logs_what_it_skipped(tmp_path, caplog):
    images = tmp_path / 'images'
    helpers.corrupt_folder(images, n_good=8)
    state = train.train(_folder_config(images, True), str(tmp_path / 'run'))
    assert int(parallel.to_host(state.step)) == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any(f'Skipped 2 of 10 image files under {images}' in m for m in messages)


@pytest.mark.heavy  # Three trainings; its cheap siblings are in test_checkpoint.py.
def test_a_full_disk_stops_the_run_clearly_and_it_resumes_once_there_is_space(small_tmpfs):
    workdir = small_tmpfs / 'run'

    def config(steps):
        return helpers.tiny_config(
            **{'train.steps': steps, 'checkpoint.every_steps': 3, 'log.every_steps': 3}
        )

    at_3 = _weights(train.train(config(3), str(workdir)))
    # Room for the logs and samples of steps 4-6, not for a checkpoint.
    filler = helpers.fill_disk(small_tmpfs, leave_bytes=96 << 10)
    with pytest.raises(ckpt_lib.CheckpointSaveError) as error:
        train.train(config(6), str(workdir))
    assert str(error.value).startswith(
        f'The checkpoint of step 6 could not be written to {workdir / "checkpoints"}: '
        'the disk is full'
    )
    assert 'The checkpoints saved before it ([3]) are intact' in str(error.value)
    filler.unlink()
    # The rerun resumes from step 3 (the same weights), and its unfinished save is gone.
    checkpoints = ckpt_lib.Checkpointer(str(workdir / 'checkpoints'), keep=None)
    mesh = parallel.make_mesh()
    target = ckpt_lib.abstract_state(builder.build(config(6)).init_state, mesh)
    _assert_bit_identical(_weights(checkpoints.restore(3, target)), at_3)
    checkpoints.close()
    assert int(parallel.to_host(train.train(config(6), str(workdir)).step)) == 6
    assert sorted(os.listdir(workdir / 'checkpoints')) == ['3', '6']
    # No room left at all: the run stops at its first write (the run lock), naming the folder.
    helpers.fill_disk(small_tmpfs, leave_bytes=0)
    with pytest.raises(train.RunFolderFullError) as error:
        train.train(config(9), str(workdir))
    assert str(error.value).startswith(f'No space left for the run folder {workdir} (')
    assert sorted(os.listdir(workdir / 'checkpoints')) == ['3', '6']
