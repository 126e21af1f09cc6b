"""StyleGAN2's training ingredients: path-length regularisation, style mixing, the lazy
regularisation's Adam rescaling and the truncation psi, against hand computations."""

import functools
import importlib
import json
import os
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from gan_jax import builder, parallel, runs, sampling
from gan_jax import checkpoint as ckpt_lib
from gan_jax import data as data_lib
from gan_jax import objective as obj_lib
from gan_jax import state as state_lib
from gan_jax import step as step_lib
from gan_jax.models import dcgan, stylegan2
from tests import helpers
from tests.models import test_stylegan2 as parity

NUM_WS = 4  # Resolution 8: two convolutions and a toRGB at 4x4, three more at 8x8, minus one.
TINY_G_WIDTHS = dict(channel_base=32, channel_max=4)
TINY_G = dict(img_channels=2, w_dim=8, mapping_layers=1, **TINY_G_WIDTHS)
PL_RESOLUTION = 4  # The path-length checks: one block, two ws.


@functools.cache
def _tiny_generator(resolution=8):
    generator = stylegan2.StyleGAN2Generator(resolution=resolution, **TINY_G)

    @jax.jit
    def init():
        params = generator.init(jax.random.PRNGKey(0), jnp.zeros((2, 6)), train=False)['params']
        # Non-zero noise strengths and w average, so that both are exercised.
        return {
            'params': helpers.perturbed(params, 1, scale=0.2),
            'batch_stats': {'mapping': {'w_avg': jnp.linspace(-1.0, 1.0, 8)}},
        }

    return generator, init()


def _pl_config(every=1, shrink=2, decay=0.01):
    reg = ml_collections.ConfigDict(
        dict(pl_every_g_steps=every, pl_batch_shrink=shrink, pl_decay=decay)
    )
    return ml_collections.ConfigDict({'reg': reg})


def _pl_batch(generator, variables, key, g_index, average, batch=4, first=lambda n: 0):
    """A GeneratorBatch whose draws are fixed: latents z_i ~ N(0, I) from fold_in(key, i),
    i counting from ``first(local batch)`` (a device's first global index)."""

    def draw(k, n):
        indices = first(n) + jnp.arange(n)
        return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(k, i), (6,)))(indices), None

    def example_keys(k, n):
        indices = first(n) + jnp.arange(n)
        return jax.vmap(lambda i: jax.random.fold_in(k, 1000 + i))(indices)

    return obj_lib.GeneratorBatch(
        g_params=variables['params'],
        images=jnp.zeros((batch, PL_RESOLUTION, PL_RESOLUTION, 2)),
        fake_logits=None,
        fake_class_logits=None,
        fake_labels=None,
        z=jnp.zeros((batch, 6)),
        generate=None,
        example_keys=example_keys,
        key=key,
        draw=draw,
        map_latents=lambda z, labels, k: generator.apply(variables, z, train=False, method='map'),
        synthesize=lambda ws, z: generator.apply(variables, ws, z, method='synthesize_latents'),
        global_mean=jnp.mean,
        g_index=jnp.asarray(g_index),
        aux={'pl': jnp.asarray(average)},
    )


def _pl_by_hand(generator, variables, key, average, decay, every, n):
    """The penalty and new average from the full Jacobian of each image w.r.t. its ws."""
    z_key, _, noise_key = jax.random.split(key, 3)
    z = np.stack([jax.random.normal(jax.random.fold_in(z_key, i), (6,)) for i in range(n)])
    ws = generator.apply(variables, z, train=False, method='map')

    def one_image(w, z):
        return generator.apply(variables, w[None], z[None], method='synthesize_latents')[0]

    jacobian_of = jax.jit(jax.jacrev(one_image))
    lengths, r = [], PL_RESOLUTION
    for i in range(n):
        jacobian = np.asarray(jacobian_of(ws[i], z[i]), np.float64)  # [H, W, C, num_ws, w]
        y = np.asarray(jax.random.normal(jax.random.fold_in(noise_key, 1000 + i), (r, r, 2)))
        grad = np.einsum('hwc,hwcjk->jk', y / np.sqrt(r * r), jacobian)
        lengths.append(np.sqrt(np.mean(np.sum(grad**2, axis=1))))
    lengths = np.array(lengths)
    moved = average + decay * (lengths.mean() - average)
    return every * np.mean((lengths - moved) ** 2), moved


@pytest.mark.slow
def test_path_length_penalty_and_average_equal_a_hand_computation():
    generator, variables = _tiny_generator(PL_RESOLUTION)
    key = jax.random.PRNGKey(5)
    expected, moved = _pl_by_hand(generator, variables, key, 0.5, 0.3, 1, n=2)
    assert expected > 1e-4  # Not trivially zero.
    # Every 4 G updates: at update 8 the penalty is scaled by 4.
    for every in (1, 4):
        fn = obj_lib._path_length(_pl_config(every=every, decay=0.3))
        value, average = jax.jit(lambda: fn(_pl_batch(generator, variables, key, 8, 0.5)))()
        np.testing.assert_allclose(value, every * expected, rtol=2e-4)
        np.testing.assert_allclose(average, moved, rtol=1e-5)


_FOUR_DEVICES = """
import json, sys
import jax, jax.numpy as jnp
from jax import lax
from jax.sharding import PartitionSpec as P
from gan_jax import objective, parallel
from tests import test_stylegan2_training as t
generator, variables = t._tiny_generator(t.PL_RESOLUTION)
fn = objective._path_length(t._pl_config(decay=0.3))
out = {}
for n in (1, 4):
    def term():
        first = lambda local: lax.axis_index(parallel.DATA_AXIS) * local
        batch = t._pl_batch(generator, variables, jax.random.PRNGKey(5), 0, 0.5, 8 // n, first)
        batch = batch._replace(global_mean=lambda x: lax.pmean(jnp.mean(x), parallel.DATA_AXIS))
        value, average = fn(batch)
        return lax.pmean(value, parallel.DATA_AXIS), average
    mesh = parallel.make_mesh(jax.devices()[:n])
    program = parallel.jit_sharded(term, mesh, in_specs=(), out_specs=(P(), P()))
    out[n] = [float(x) for x in program()]
json.dump(out, sys.stdout)
"""


@pytest.mark.slow
def test_path_length_on_4_devices_equals_1_device():
    # The penalty averages the devices' own, the average moves by the global mean of the
    # lengths: a global batch of 8 gives the same numbers on 1 device or 4 holding 2 each
    # (the PL batch is 1 per device).
    out = json.loads(helpers.run_python(_FOUR_DEVICES, devices=4))
    np.testing.assert_allclose(out['4'], out['1'], rtol=1e-5)
    generator, variables = _tiny_generator(PL_RESOLUTION)
    expected = _pl_by_hand(generator, variables, jax.random.PRNGKey(5), 0.5, 0.3, 1, n=4)
    np.testing.assert_allclose(out['1'], expected, rtol=2e-4)


def test_path_length_is_off_between_its_intervals():
    generator, variables = _tiny_generator(PL_RESOLUTION)
    fn = obj_lib._path_length(_pl_config(every=4))
    value, average = fn(_pl_batch(generator, variables, jax.random.PRNGKey(5), 5, 0.5))
    assert float(value) == 0.0 and float(average) == 0.5


@pytest.mark.slow
def test_style_mixing_crosses_over_at_the_drawn_layer():
    generator, variables = _tiny_generator()
    z1, z2 = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 6))
    w1, w2 = (generator.apply(variables, z, train=False, method='map') for z in (z1, z2))

    synthesize = jax.jit(lambda ws: generator.apply(variables, ws, z1, method='synthesize_latents'))
    candidates = [synthesize(jnp.concatenate([w1[:, :c], w2[:, c:]], 1)) for c in range(NUM_WS + 1)]
    generate = jax.jit(
        lambda key, prob: generator.apply(variables, z1, train=False, mixing=(z2, key, prob))
    )
    crossed = set()
    for seed in range(12):
        key = jax.random.PRNGKey(seed)
        mixed = generate(key, 1.0)
        # Exactly one crossover layer c in 1..num_ws - 1 explains the output: ws of z1
        # below it, of z2 from it on.
        matches = [c for c in range(NUM_WS + 1) if np.allclose(mixed, candidates[c], atol=1e-6)]
        assert matches == [int(stylegan2.mixing_cutoff(key, 1.0, NUM_WS))]
        crossed.add(matches[0])
    assert crossed == set(range(1, NUM_WS))  # Every layer is drawn.
    np.testing.assert_allclose(generate(key, 0.0), candidates[NUM_WS], atol=1e-6)


def test_mixing_cutoff_follows_the_probability():
    cutoffs = np.array(
        [stylegan2.mixing_cutoff(jax.random.PRNGKey(s), 0.9, 6) for s in range(2000)]
    )
    assert 0.88 < np.mean(cutoffs < 6) < 0.92  # Mixed with probability 0.9 ...
    counts = np.bincount(cutoffs[cutoffs < 6], minlength=6)
    assert counts[0] == 0 and np.all(np.abs(counts[1:] / counts[1:].sum() - 0.2) < 0.03)


def test_style_mixing_keeps_the_w_average_of_the_first_latents():
    """The official update from z1's ws alone, w_avg <- mean + 0.995 (w_avg - mean); the
    mixed-in z2 does not enter it."""
    generator, variables = _tiny_generator()
    z1, z2 = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 6))

    @jax.jit
    def run():
        mixing = (z2, jax.random.PRNGKey(0), 1.0)
        _, mixed = generator.apply(
            variables, z1, train=True, mixing=mixing, method='map', mutable=['batch_stats']
        )
        ws = generator.apply(variables, z1, train=False, method='map')
        return mixed['batch_stats']['mapping']['w_avg'], jnp.mean(ws[:, 0], axis=0)

    updated, mean = run()
    w_avg = variables['batch_stats']['mapping']['w_avg']
    np.testing.assert_allclose(updated, mean + 0.995 * (w_avg - mean), rtol=1e-5, atol=1e-6)
    assert not np.allclose(updated, w_avg, atol=1e-3)  # It moved.


@pytest.mark.parametrize('schedule', ['constant', 'linear_decay'])
def test_lazy_rescale_equals_adam_with_rescaled_lr_and_betas(schedule):
    optim = ml_collections.ConfigDict(
        dict(
            name='adam',
            g_lr=0.0025,
            d_lr=0.002,
            b1=0.5,
            b2=0.99,
            lr_schedule=schedule,
            decay_start_step=0,
            lazy_rescale=True,
        )
    )
    g_tx, d_tx = state_lib.make_optimizers(optim, steps=10, n_dis=1, lazy_intervals=(4, 16))

    def adam(lr, c):
        rate = lr * c if schedule == 'constant' else optax.linear_schedule(lr * c, 0.0, 10)
        return optax.adam(rate, b1=0.5**c, b2=0.99**c)

    for tx, lr, c in ((g_tx, 0.0025, 4 / 5), (d_tx, 0.002, 16 / 17)):
        # The rescaled optimiser, Adam with lr * c and betas ** c written out, plain Adam.
        txs = (tx, adam(lr, c), adam(lr, 1.0))
        params = {'w': jnp.ones(3)}
        states = [t.init(params) for t in txs]
        for k in range(3):
            grads = {'w': jax.random.normal(jax.random.PRNGKey(k), (3,))}
            updates = []
            for i, t in enumerate(txs):
                update, states[i] = t.update(grads, states[i])
                updates.append(update['w'])
            np.testing.assert_allclose(updates[0], updates[1], rtol=1e-6)
        # The comparison can fail: plain Adam's third update on the same gradients differs.
        assert not np.allclose(updates[0], updates[2], rtol=1e-3)


def test_lazy_rescale_needs_adam():
    optim = helpers.tiny_config(**{'optim.name': 'sgd', 'optim.lazy_rescale': True}).optim
    with pytest.raises(ValueError, match='lazy_rescale'):
        state_lib.make_optimizers(optim, steps=10, n_dis=1, lazy_intervals=(4, 16))


def test_truncation_psi_moves_w_toward_its_average_in_inference_only():
    generator, variables = _tiny_generator(PL_RESOLUTION)
    truncated = stylegan2.with_truncation_psi(generator, 0.5)
    z = jax.random.normal(jax.random.PRNGKey(2), (3, 6))
    ws = generator.apply(variables, z, train=False, method='map')
    w_avg = variables['batch_stats']['mapping']['w_avg']
    expected = generator.apply(
        variables, w_avg + 0.5 * (ws - w_avg), z, method='synthesize_latents'
    )
    np.testing.assert_allclose(truncated.apply(variables, z, train=False), expected, atol=1e-6)
    # Training ignores the field.
    trained = truncated.apply(variables, z, train=True, mutable=['batch_stats'])[0]
    np.testing.assert_array_equal(
        trained, generator.apply(variables, z, train=True, mutable=['batch_stats'])[0]
    )


def test_truncation_psi_is_refused_without_a_w_space():
    generator = dcgan.DCGANGenerator(32, 3, 8, None)
    assert stylegan2.with_truncation_psi(generator, 1.0) is generator
    with pytest.raises(ValueError, match="no w space.*BigGAN's latent truncation"):
        stylegan2.with_truncation_psi(generator, 0.7)


def test_path_length_and_style_mixing_need_stylegan2():
    config = helpers.tiny_config(**{'reg.pl_weight': 2.0, 'reg.style_mixing_prob': 0.5})
    with pytest.raises(ValueError, match=r"reg.pl_weight=2.0 needs model.name='stylegan2'"):
        obj_lib.validate(config, data_shape=(32, 32, 3), num_classes=None, local_batches=(8, 8))
    config = helpers.tiny_config(**{'model.bf16_resolutions': 2})
    with pytest.raises(ValueError, match=r'model.bf16_resolutions=2 sets .* not of model.name='):
        obj_lib.validate(config, data_shape=(32, 32, 3), num_classes=None, local_batches=(8, 8))
    config = helpers.tiny_config(**{'model.name': 'stylegan2', 'reg.pl_batch_shrink': 3})
    with pytest.raises(ValueError, match='pl_batch_shrink=3 must be >= 1 and divide'):
        obj_lib.validate(config, data_shape=(32, 32, 3), num_classes=None, local_batches=(8, 8))
    config = helpers.tiny_config(
        **{'model.name': 'stylegan2', 'reg.pl_weight': 2.0, 'train.grad_accum': 2}
    )
    with pytest.raises(ValueError, match='reg.pl_weight=2.0 with train.grad_accum=2'):
        obj_lib.validate(config, data_shape=(32, 32, 3), num_classes=None, local_batches=(8, 8))


# A tiny StyleGAN2 run with every lazy regulariser, in steps of their own, and the rescaled
# Adam (the official scheme): R1 every 2 D steps, path length every 2 G steps, style mixing.
TINY_RUN = {
    'model.name': 'stylegan2',
    'model.w_dim': 8,
    'model.mapping_layers': 1,
    'model.channel_base': 64,
    'model.channel_max': 4,
    'model.mbstd_group_size': 2,
    'model.conv_clamp': 256.0,
    'data.resolution': 8,
    'reg.penalty': 'r1',
    'reg.penalty_weight': 1.0,
    'reg.penalty_every_d_steps': 2,
    'reg.pl_weight': 2.0,
    'reg.pl_every_g_steps': 2,
    'reg.style_mixing_prob': 0.5,
    'optim.b1': 0.0,
    'optim.b2': 0.99,
    'optim.lazy_rescale': True,
    'reg.lazy_separate_step': True,
}


# Heavy: minutes to compile the update. The path-length average is a TrainState.aux entry,
# saved and restored as ADA's p and LeCam's EMA are (test_train.py's toolbox resume, heavy
# too); in CI the test_path_length_* tests above check the term and its average.
@pytest.mark.heavy
@pytest.mark.slow
def test_resume_keeps_the_path_length_average(tmp_path):
    """Two updates, a checkpoint written and read back, two more: bit-identical to four
    straight updates, and not without the path-length average from the checkpoint."""
    config = helpers.tiny_config(**TINY_RUN)
    setup = builder.build(config)
    mesh = parallel.make_mesh(jax.devices()[:1])
    update = step_lib.compile_update(setup.make_update(config), mesh)
    iterator = data_lib.make_train_iterator(
        setup.source, global_batch=8, batches_per_step=1, seed=0, num_threads=1
    )
    batches = [jax.device_put(next(iterator), parallel.batch_sharding(mesh)) for _ in range(4)]
    init = jax.jit(setup.init_state, out_shardings=parallel.replicated(mesh))

    def run(state, start, stop):
        for batch in batches[start:stop]:
            state, _ = update(state, batch)
        return state

    straight = parallel.to_host(run(init(), 0, 4))
    checkpointer = ckpt_lib.Checkpointer(str(tmp_path / 'checkpoints'), keep=1)
    checkpointer.save(2, run(init(), 0, 2))
    checkpointer.wait()
    restored = checkpointer.restore(2, ckpt_lib.abstract_state(setup.init_state, mesh))
    assert float(restored.aux['pl']) > 0  # Moved at G update 0, kept at 1.
    resumed = parallel.to_host(run(restored, 2, 4))
    for x, y in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(x, y)
    # The comparison can fail: the same resumption without the stored average differs.
    restored = checkpointer.restore(2, ckpt_lib.abstract_state(setup.init_state, mesh))
    forgetful = run(restored.replace(aux={**restored.aux, 'pl': jnp.zeros(())}), 2, 4)
    assert not np.array_equal(
        straight.g_params['synthesis']['b8_conv1']['weight'],
        parallel.to_host(forgetful.g_params)['synthesis']['b8_conv1']['weight'],
    )
    checkpointer.close()


@pytest.mark.heavy  # CI's 20 minutes; psi in the generator is tested above.
@pytest.mark.slow
def test_a_loaded_run_generates_with_its_truncation_psi():
    config = helpers.tiny_config(
        **TINY_RUN, **{'eval.truncation_psi': 0.5, 'eval.batch_size': 4, 'ema.name': None}
    )
    setup = builder.build(config)
    mesh = parallel.make_mesh(jax.devices()[:1])
    state = jax.jit(setup.init_state)()
    w_avg = jnp.linspace(-2.0, 2.0, 8)  # Far from the ws, so the truncation shows.
    state = parallel.to_host(state.replace(g_batch_stats={'mapping': {'w_avg': w_avg}}))
    run = runs.LoadedRun(config, setup, state, 0, False, mesh, config.eval.truncation_psi)
    images = run.generate(4, seed=0)
    z = run.sampler.latents(0, np.arange(4))
    variables = {'params': state.g_params, 'batch_stats': state.g_batch_stats}
    expected = sampling.images_to_uint8(
        setup.generator.apply(variables, z, train=False, truncation_psi=0.5)
    )
    np.testing.assert_array_equal(images, expected)
    plain = sampling.images_to_uint8(setup.generator.apply(variables, z, train=False))
    assert not np.array_equal(images, plain)


@pytest.mark.slow
def test_path_length_equals_the_official_loss(monkeypatch):
    """NVlabs/stylegan2-ada-pytorch's ``StyleGAN2Loss`` ('Greg' phase: penalty, its average
    and the second-order gradient of every G parameter) on the same weights, latents and
    noise (STYLEGAN2_ADA_PYTORCH and torch, like tests/models/test_stylegan2.py)."""
    torch, networks = parity._official_networks()
    sys.path.insert(0, os.environ['STYLEGAN2_ADA_PYTORCH'])
    try:
        official_loss = importlib.import_module('training.loss')
    finally:
        sys.path.pop(0)
    torch.manual_seed(0)
    official_g = networks.Generator(
        z_dim=6,
        c_dim=0,
        w_dim=8,
        img_resolution=8,
        img_channels=2,
        mapping_kwargs=dict(num_layers=1),
        synthesis_kwargs=dict(channel_base=32, channel_max=4),
    )
    with torch.no_grad():
        for p in official_g.parameters():
            if p.ndim == 1:  # Biases; the noise strengths stay 0, so noise draws do not matter.
                p.add_(0.1 * torch.randn_like(p))
    generator = stylegan2.StyleGAN2Generator(8, 2, w_dim=8, mapping_layers=1, **TINY_G_WIDTHS)
    params = parity._to_flax(official_g, parity._g_place)
    stats = {'mapping': {'w_avg': jnp.zeros(8)}}
    z = torch.randn(4, 6)
    noise_keys = jax.random.split(jax.random.PRNGKey(3), 2)
    noise = jax.vmap(lambda k: jax.random.normal(k, (8, 8, 2)))(noise_keys)
    monkeypatch.setattr(
        torch, 'randn_like', lambda x: torch.from_numpy(np.array(noise).transpose(0, 3, 1, 2))
    )
    loss = official_loss.StyleGAN2Loss(
        'cpu', official_g.mapping, official_g.synthesis, None, None, 0.0, 0.0, 2, 0.3, 2.0
    )
    loss.pl_mean.fill_(0.5)
    official_g.requires_grad_(True)
    loss.accumulate_gradients('Greg', None, None, z, torch.zeros(4, 0), sync=True, gain=4)
    with torch.no_grad():
        for p in official_g.parameters():
            p.copy_(torch.zeros_like(p) if p.grad is None else p.grad)
    official_grads = parity._to_flax(official_g, parity._g_place)

    fn = obj_lib._path_length(_pl_config(every=4, shrink=2, decay=0.3))

    def penalty(params):
        variables = {'params': params, 'batch_stats': stats}
        batch = _pl_batch(generator, variables, jax.random.PRNGKey(0), 0, 0.5)._replace(
            images=jnp.zeros((4, 8, 8, 2)),
            draw=lambda k, n: (jnp.asarray(z.numpy())[:n], None),
            example_keys=lambda k, n: noise_keys[:n],
        )
        value, average = fn(batch)
        return 2.0 * value, average  # pl_weight 2.

    grads, average = jax.jit(jax.grad(penalty, has_aux=True))(params)
    np.testing.assert_allclose(average, float(loss.pl_mean), rtol=1e-5)
    # A noise strength's gradient is the images' gradient times the noise drawn, which
    # differs (torch's generator here, keys from the latents there).
    flat = {
        path: (g, official)
        for (path, g), official in zip(
            jax.tree_util.tree_leaves_with_path(grads), jax.tree.leaves(official_grads), strict=True
        )
        if path[-1].key != 'noise_strength'
    }
    largest = max(float(np.max(np.abs(official))) for _, official in flat.values())
    assert largest > 1e-3 and len(flat) > 20
    for path, (g, official) in flat.items():
        np.testing.assert_allclose(g, official, atol=1e-4 * largest, err_msg=str(path))
