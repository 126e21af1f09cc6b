"""sample.py's PNG folder, read by pytorch-fid's own loader and model, gives gan_jax's FID.

Both sides use the same random FID Inception weights (tests/metrics/test_inception.py's
fixtures) and the same images: the generated ones exported as PNGs, and the evaluator's
reference images written as PNGs. pytorch-fid computes the statistics of the two folders
(its ImagePathDataset, ToTensor, its InceptionV3 with resize and normalisation) and its
Fréchet distance; gan_jax's Evaluator computes its FID from the generator directly.
Skipped without requirements-parity.txt (torch, pytorch-fid).
"""

import os

import jax
import numpy as np
import pytest

from gan_jax import builder, generation, logging, parallel
from gan_jax import evaluate as eval_lib
from tests import helpers
from tests.metrics.test_inception import converted, reference  # noqa: F401 (fixtures)

NUM = 16  # Generated and reference images; Inception at 299x299 on CPU is the cost.


@pytest.mark.heavy
@pytest.mark.slow
def test_exported_folder_gives_gan_jax_fid_through_pytorch_fid(reference, converted, tmp_path):  # noqa: F811
    torch, wrapper, _, _ = reference
    npz, _ = converted
    fid_score = pytest.importorskip('pytorch_fid.fid_score')
    config = helpers.tiny_config(
        **{
            'data.channels': 3,
            'eval.extractor': 'inception',
            'eval.inception_weights': str(npz),
            'eval.metrics': 'fid',
            'eval.num_samples': NUM,
            'eval.reference_num': NUM,
            'eval.batch_size': 8,
            'eval.cache_dir': str(tmp_path / 'cache'),
        }
    )
    setup = builder.build(config)
    mesh = parallel.make_mesh()
    state = jax.jit(setup.init_state)()  # An untrained G: the pipelines, not the samples, matter.
    evaluator = eval_lib.Evaluator(config, setup.generator, setup.source, mesh)
    result = evaluator.evaluate(state, 0)

    sampler = generation.Sampler(
        setup.generator, config.model.z_dim, None, mesh, config.eval.batch_size
    )
    variables = sampler.put_variables(
        {'params': state.g_params, 'batch_stats': state.g_batch_stats}
    )
    fake_dir = generation.export(
        sampler, variables, NUM, str(tmp_path / 'fake'), seed=config.eval.seed
    )
    real_dir = tmp_path / 'real'
    for i, index in enumerate(evaluator.reference_indices(NUM)):
        logging.save_png(str(real_dir / f'{i:06d}.png'), setup.source[index]['image'])
    assert len(os.listdir(fake_dir)) == len(os.listdir(real_dir)) == NUM

    with torch.no_grad():
        fake_mu, fake_sigma = fid_score.compute_statistics_of_path(
            fake_dir, wrapper, 8, 2048, 'cpu', num_workers=0
        )
        real_mu, real_sigma = fid_score.compute_statistics_of_path(
            str(real_dir), wrapper, 8, 2048, 'cpu', num_workers=0
        )
    real, _ = evaluator.reference()
    scale = np.abs(real_mu).max()
    np.testing.assert_allclose(real.mean, real_mu, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(real.cov, real_sigma, rtol=0, atol=1e-4 * np.abs(real_sigma).max())
    want = fid_score.calculate_frechet_distance(fake_mu, fake_sigma, real_mu, real_sigma)
    assert result['metrics']['FID'] == pytest.approx(want, rel=1e-3)
