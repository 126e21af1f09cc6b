"""Learning-rate decay and the generator EMA's decay, step by step."""

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import schedules
from tests import helpers


def test_linear_decay_reaches_zero_at_the_last_update_and_d_counts_its_own():
    config = helpers.tiny_config(
        **{
            'optim.lr_schedule': 'linear_decay',
            'optim.g_lr': 1.0,
            'optim.d_lr': 2.0,
            'optim.decay_start_step': 10,
        }
    )
    g_lr, d_lr = schedules.learning_rates(config.optim, steps=30, n_dis=5)
    np.testing.assert_allclose([g_lr(t) for t in (0, 10, 20, 30)], [1.0, 1.0, 0.5, 0.0])
    # D makes 5 updates per G step: its decay starts at 50 and ends at 150.
    np.testing.assert_allclose([d_lr(t) for t in (49, 100, 150)], [2.0, 1.0, 0.0])


def test_constant_learning_rates_and_unknown_schedule():
    config = helpers.tiny_config(**{'optim.g_lr': 1e-4, 'optim.d_lr': 4e-4})
    assert schedules.learning_rates(config.optim, steps=10, n_dis=1) == (1e-4, 4e-4)
    bad = helpers.tiny_config(**{'optim.lr_schedule': 'cosine'})
    with pytest.raises(ValueError, match="'cosine'.*linear_decay"):
        schedules.learning_rates(bad.optim, steps=10, n_dis=1)


def _decay(batch_size=64, **ema):
    config = helpers.tiny_config(**{f'ema.{k}': v for k, v in ema.items()})
    return schedules.ema_decay(config.ema, batch_size)


def test_decay_with_start_step_and_warmup():
    decay = _decay(name='decay', decay=0.999, start_step=5)
    np.testing.assert_allclose(
        [decay(jnp.int32(t)) for t in (0, 4, 5, 100)], [0.0, 0.0, 0.999, 0.999], rtol=1e-6
    )
    warm = _decay(name='decay', decay=0.999, warmup=True)
    np.testing.assert_allclose(
        [warm(jnp.int32(t)) for t in (0, 90, 100_000)], [0.1, 91 / 100, 0.999], rtol=1e-6
    )


def test_half_life_in_images_with_rampup():
    # StyleGAN2: beta = 0.5 ** (batch / half_life_images).
    decay = _decay(batch_size=32, name='half_life', half_life_kimg=10.0)
    np.testing.assert_allclose(decay(jnp.int32(7)), 0.5 ** (32 / 10_000), rtol=1e-6)
    ramp = _decay(batch_size=32, name='half_life', half_life_kimg=10.0, rampup=0.05)
    # Step 1000: 32,000 images, ramped half-life 1,600 < 10,000.
    np.testing.assert_allclose(ramp(jnp.int32(1000)), 0.5 ** (32 / 1600), rtol=1e-6)
    np.testing.assert_allclose(ramp(jnp.int32(10_000)), 0.5 ** (32 / 10_000), rtol=1e-6)
    assert float(ramp(jnp.int32(0))) == 0.0  # Nothing seen yet: copy G.


def test_no_ema_and_unknown_name():
    assert _decay() is None
    with pytest.raises(ValueError, match="'polyak'.*half_life"):
        _decay(name='polyak')
