"""Data repair tasks: scores by hand, what each task returns and writes."""

import json

import numpy as np
import pytest
from PIL import Image

from gan_jax import inversion, parallel
from gan_jax import repair as repair_lib
from tests.invert_and_dump import tiny_generator


def test_mse_and_psnr_by_hand():
    a = np.zeros((2, 2, 2, 1))
    b = np.array([[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]]).reshape(2, 2, 2, 1)
    np.testing.assert_allclose(repair_lib.mse(a, b), [0.25, 0.25])
    hole = np.array([1.0, 0.0, 0.0, 0.0]).reshape(1, 2, 2, 1)
    np.testing.assert_allclose(repair_lib.mse(a, b, np.broadcast_to(hole, b.shape)), [1.0, 0.25])
    np.testing.assert_allclose(repair_lib.psnr(np.array([1.0, 0.01])), [0.0, 20.0])


def test_bad_task_fails_early():
    with pytest.raises(ValueError, match="task='blur'"):
        repair_lib.TaskConfig(task='blur')
    with pytest.raises(ValueError, match='--mask'):
        repair_lib.TaskConfig(task='inpaint_mask')
    with pytest.raises(ValueError, match='average_best=-1'):
        repair_lib.TaskConfig(task='cs', average_best=-1)


@pytest.mark.slow
def test_cs_and_inpainting_tasks_score_every_method_and_write_outputs(tmp_path):
    generator, variables, num_classes = tiny_generator(False)
    rng = np.random.default_rng(0)
    test = rng.random((3, 28, 28, 1)).astype(np.float32)
    train = rng.random((20, 28, 28, 1)).astype(np.float32)
    config = inversion.InversionConfig(steps=3, restarts=2)
    inverter = inversion.Inverter(generator, 4, num_classes, config, parallel.make_mesh())

    cfg = repair_lib.TaskConfig(task='inpaint_center', average_best=2)
    results, panels = repair_lib.run_task(cfg, inverter, variables, test, train, batch_size=2)
    scores = results['scores']
    assert set(scores) == {
        'ours',
        'ours_pasted',
        'biharmonic',
        'nearest_neighbour',
        'ours_mean_best_2',
        'nearest_2_mean',
        'zeros',
    }
    hole = np.zeros((28, 28, 1))
    hole[7:21, 7:21] = 1
    # The zeros estimate's hole MSE is the mean square of the originals over the hole.
    expected = ((test**2) * hole).sum(axis=(1, 2, 3)) / hole.sum()
    assert scores['zeros']['hole_mse']['mean'] == pytest.approx(expected.mean(), rel=1e-5)
    pasted = panels[0][1]['ours_pasted']
    np.testing.assert_allclose(pasted * (1 - hole), test * (1 - hole), atol=1e-6)
    # Pasting the known pixels back changes nothing in the hole.
    assert scores['ours_pasted']['hole_mse'] == scores['ours']['hole_mse']
    assert results['missing_fraction_of_pixels'] == pytest.approx(0.25)

    cs = repair_lib.TaskConfig(task='cs', measurements=(20, 40))
    cs_results, cs_panels = repair_lib.run_task(cs, inverter, variables, test, train)
    assert set(cs_results) == {'20', '40'}
    assert set(cs_results['20']['scores']) == {
        'ours',
        'lasso_pixel',
        'lasso_dct',
        'nearest_neighbour',
        'zeros',
    }
    # The noise has norm about noise_norm = 0.1, whatever m.
    assert cs_results['40']['noise_norm']['mean'] == pytest.approx(0.1, rel=0.3)
    record = {'protocol': repair_lib.protocol(cs, config, 3, 'random')}
    repair_lib.write_outputs(tmp_path, cs_results, cs_panels, record)
    written = json.loads((tmp_path / 'results.json').read_text())
    assert written['protocol']['inversion']['restarts'] == 2
    assert {p.name for p in tmp_path.iterdir()} == {
        'results.json',
        'grid_m20.png',
        'grid_m40.png',
        'cs_mse.png',
    }


class _ConstantInverter:
    """Stands in for the inversion: every image is 0.5 (the tasks' plumbing, without G); its
    three restarts are 0.5, 0.1 and 0.9, with residuals 0, 2 and 1."""

    def invert(self, g_variables, op, y, start=0):
        del g_variables, op, start
        n = len(y)
        restarts = np.array([0.5, 0.1, 0.9], np.float32).reshape(1, 3, 1, 1, 1)
        return {
            'image': np.full((n, 8, 8, 1), 0.5, np.float32),
            'residual': np.zeros(n),
            'restart_images': np.broadcast_to(restarts, (n, 3, 8, 8, 1)),
            'restart_residuals': np.broadcast_to(np.array([0.0, 2.0, 1.0]), (n, 3)),
        }


def test_denoise_superres_and_mask_tasks_score_what_they_return(tmp_path):
    rng = np.random.default_rng(1)
    test = rng.random((4, 8, 8, 1)).astype(np.float32)
    train = rng.random((10, 8, 8, 1)).astype(np.float32)
    inverter = _ConstantInverter()
    ours_mse = ((test - 0.5) ** 2).mean(axis=(1, 2, 3)).mean()

    results, panels = repair_lib.run_task(
        repair_lib.TaskConfig(task='denoise', noise_std=0.1), inverter, None, test, train
    )
    assert set(results['scores']) == {'ours', 'tv', 'nearest_neighbour', 'zeros'}
    assert results['scores']['ours']['mse']['mean'] == pytest.approx(ours_mse, rel=1e-5)

    # The two best restarts (residuals 0 and 1) are 0.5 and 0.9: their mean is 0.7. Without
    # noise, the two training images nearest to each test image, by a full sort of distances.
    results, panels = repair_lib.run_task(
        repair_lib.TaskConfig(task='denoise', noise_std=0.0, average_best=2),
        inverter,
        None,
        test,
        train,
    )
    np.testing.assert_allclose(panels[0][1]['ours_mean_best_2'], np.full_like(test, 0.7))
    dist = ((train[None] - test[:, None]) ** 2).sum(axis=(2, 3, 4))
    nearest = train[np.argsort(dist, axis=1)[:, :2]].mean(axis=1)
    np.testing.assert_allclose(panels[0][1]['nearest_2_mean'], nearest, rtol=1e-6)

    results, panels = repair_lib.run_task(
        repair_lib.TaskConfig(task='superres', factor=2), inverter, None, test, train
    )
    blocks = test.reshape(4, 4, 2, 4, 2, 1).mean(axis=(2, 4))
    boxes = np.repeat(np.repeat(blocks, 2, axis=1), 2, axis=2)
    np.testing.assert_allclose(panels[0][1]['box_upsampling'], boxes, atol=1e-6)

    results, _ = repair_lib.run_task(
        repair_lib.TaskConfig(task='inpaint_pixels', missing_fraction=0.5),
        inverter,
        None,
        test,
        train,
    )
    assert 0.3 < results['missing_fraction_of_pixels'] < 0.7

    gray = np.full((8, 8), 255, np.uint8)
    gray[:2] = 0  # The top quarter is missing.
    Image.fromarray(gray).save(tmp_path / 'mask.png')
    results, _ = repair_lib.run_task(
        repair_lib.TaskConfig(task='inpaint_mask', mask_path=str(tmp_path / 'mask.png')),
        inverter,
        None,
        test,
        train,
    )
    assert results['missing_fraction_of_pixels'] == 0.25
    hole_mse = ((test[:, :2] - 0.5) ** 2).mean(axis=(1, 2, 3)).mean()
    assert results['scores']['ours']['hole_mse']['mean'] == pytest.approx(hole_mse, rel=1e-5)
