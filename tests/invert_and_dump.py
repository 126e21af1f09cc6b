"""Inverts images of a tiny generator in a fresh process and dumps the result (tests).

python tests/invert_and_dump.py --out FILE.npz [--devices N] [--conditional] [--fine_tune N]
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import builder, inversion, operators, parallel
from tests import helpers


def tiny_generator(conditional, z_dim=4):
    """(generator, variables, num_classes) of the tiny DCGAN at its initialisation."""
    overrides = {'model.z_dim': z_dim}
    if conditional:
        overrides['model.conditioning'] = 'projection'
    setup = builder.build(helpers.tiny_config(**overrides))
    state = setup.init_state()
    variables = {'params': state.g_params, 'batch_stats': state.g_batch_stats}
    return setup.generator, variables, setup.num_classes


def target_images(generator, variables, num_classes, n, z_dim=4, seed=1):
    """(images in [0, 1], latents, labels): n images the generator produces exactly."""
    z = jax.random.normal(jax.random.PRNGKey(seed), (n, z_dim))
    labels = None if num_classes is None else jnp.arange(n) % num_classes
    images = inversion.to_unit(generator.apply(variables, z, labels, train=False))
    return np.asarray(images), np.asarray(z), labels


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', required=True)
    parser.add_argument('--devices', type=int, required=True)
    parser.add_argument('--conditional', action='store_true')
    parser.add_argument('--fine_tune', type=int, default=0)
    args = parser.parse_args()
    assert jax.device_count() == args.devices, jax.devices()
    generator, variables, num_classes = tiny_generator(args.conditional)
    x, _, _ = target_images(generator, variables, num_classes, n=6)
    rng = np.random.default_rng(0)
    op = operators.inpaint(np.stack([operators.random_pixel_mask(x.shape[1:], 0.3, rng)] * 6))
    y, _ = operators.measure(op, x, 0.01, rng)
    config = inversion.InversionConfig(
        steps=20, restarts=3, learning_rate=0.05, fine_tune_steps=args.fine_tune
    )
    inverter = inversion.Inverter(generator, 4, num_classes, config, parallel.make_mesh())
    np.savez(args.out, **inverter.invert(variables, op, y))


if __name__ == '__main__':
    main()
