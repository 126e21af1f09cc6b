"""GAN inversion: exact recovery of G's own images, restart choice, 1 vs 4 devices."""

import subprocess
import sys

import numpy as np
import pytest

from gan_jax import inversion, operators, parallel
from tests import helpers
from tests.invert_and_dump import target_images, tiny_generator


def _invert(conditional, x, op, y, **config):
    generator, variables, num_classes = tiny_generator(conditional)
    inverter = inversion.Inverter(
        generator, 4, num_classes, inversion.InversionConfig(**config), parallel.make_mesh()
    )
    return inverter.invert(variables, op, y)


@pytest.mark.slow
@pytest.mark.parametrize('conditional', [False, True])
def test_inversion_recovers_an_image_the_generator_produces(conditional):
    generator, variables, num_classes = tiny_generator(conditional)
    x, _, labels = target_images(generator, variables, num_classes, n=2)
    op = operators.identity()
    out = _invert(
        conditional, x, op, x, steps=300, restarts=10, learning_rate=0.05, prior_weight=0.0
    )
    # Noiseless and exactly in G's range: the squared error summed over 784 pixels, which
    # starts near the images' own energy, falls to near zero.
    energy = (x**2).sum(axis=(1, 2, 3))
    assert (out['residual'] < 1e-4 * energy).all(), (out['residual'], energy)
    np.testing.assert_allclose(out['image'], x, atol=5e-3)
    np.testing.assert_allclose(out['residual'], out['restart_residuals'].min(axis=1))
    if conditional:  # Restart r tries class r mod 10: the true class is found.
        np.testing.assert_array_equal(out['label'], np.asarray(labels))


@pytest.mark.slow
def test_fine_tuning_lowers_the_residual_of_an_image_outside_the_range():
    generator, variables, num_classes = tiny_generator(False)
    rng = np.random.default_rng(0)
    x = rng.random((2, 28, 28, 1)).astype(np.float32)  # Noise: far from G's range.
    op = operators.identity()
    kwargs = dict(steps=30, restarts=2, learning_rate=0.05)
    plain = _invert(False, x, op, x, **kwargs)
    tuned = _invert(False, x, op, x, fine_tune_steps=30, fine_tune_lr=1e-2, **kwargs)
    assert (tuned['residual'] < 0.9 * plain['residual']).all(), (plain, tuned)


def test_mean_of_best_restarts_averages_the_lowest_residuals():
    images = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2, 1, 1)
    found = {
        'restart_images': images,
        'restart_residuals': np.array([[3.0, 1.0, 2.0], [0.5, 9.0, 0.7]]),
    }
    # Image 0: restarts 1 and 2 (values [2, 3] and [4, 5]); image 1: restarts 0 and 2.
    expected = np.array([[3.0, 4.0], [8.0, 9.0]]).reshape(2, 2, 1, 1)
    np.testing.assert_array_equal(inversion.mean_of_best_restarts(found, 2), expected)
    np.testing.assert_array_equal(inversion.mean_of_best_restarts(found, 1)[1], images[1, 0])
    with pytest.raises(ValueError, match='k=4'):
        inversion.mean_of_best_restarts(found, 4)


def test_bad_settings_fail_early():
    with pytest.raises(ValueError, match="residual='l1'"):
        inversion.InversionConfig(residual='l1')
    with pytest.raises(ValueError, match='restarts=0'):
        inversion.InversionConfig(restarts=0)


# Inverting z alone agrees to float rounding. Fine-tuning G's weights with Adam does not
# quite: Adam's first steps move each weight by about +-lr whatever its gradient's size, so a
# near-zero gradient that rounds to the other sign on 1 and 4 devices (other per-device batch
# shapes) moves that weight by 2 lr; 3 steps at lr 1e-4 keep the images within 2e-3.
@pytest.mark.slow
@pytest.mark.parametrize(
    'extra, atol',
    [
        pytest.param([], 1e-5, marks=pytest.mark.heavy),  # CI's 20 minutes.
        pytest.param(['--conditional', '--fine_tune', '3'], 2e-3, marks=pytest.mark.heavy),
    ],
)
def test_same_result_on_1_and_4_devices(tmp_path, extra, atol):
    results = []
    for devices in (1, 4):
        out = tmp_path / f'{devices}.npz'
        cmd = [sys.executable, '-m', 'tests.invert_and_dump', '--out', str(out)]
        cmd += ['--devices', str(devices), *extra]
        run = subprocess.run(
            cmd,
            env=helpers.python_env(devices),
            cwd=helpers.REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-4000:]
        results.append(dict(np.load(out)))
    one, four = results
    assert one.keys() == four.keys()
    np.testing.assert_array_equal(one['label'], four['label'])
    for key in one:
        np.testing.assert_allclose(one[key], four[key], rtol=1e-4, atol=atol, err_msg=key)
