"""Evaluation: metrics during training, the best checkpoint, the cache, the CLI."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from gan_jax import builder, parallel, train
from gan_jax import evaluate as eval_lib
from gan_jax.data.source import ArraySource
from gan_jax.metrics import extractors
from tests import helpers

EVAL = helpers.CHEAP_EVAL


def test_unknown_metric_is_named():
    with pytest.raises(ValueError, match=r"unknown \['fdi'\]"):
        eval_lib.parse_metrics('fid,fdi')


def test_missing_inception_weights_say_how_to_get_them(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=r'(?s)pt_inception-2015-12-05.*convert_inception.*eval.every_steps=0',
    ):
        extractors.get_extractor('inception', inception_weights=str(tmp_path / 'none.npz'))


@pytest.mark.slow
def test_training_evaluates_keeps_best_and_caches_reference(tmp_path):
    cache = tmp_path / 'cache'
    config = helpers.tiny_config(**EVAL, **{'eval.cache_dir': str(cache)})
    state = train.train(config, str(tmp_path / 'run'))
    run = tmp_path / 'run'
    results = {s: json.loads((run / f'eval_{s}.json').read_text()) for s in (3, 6)}
    metrics = results[6]['metrics']
    # Named by their extractor: never plain "FID" for a domain classifier.
    assert {
        'FID-LeNet-MNIST',
        'KID-LeNet-MNIST',
        'IS-LeNet-MNIST',
        'precision-LeNet-MNIST',
        'coverage-LeNet-MNIST',
    } <= metrics.keys()
    assert 'FID' not in metrics
    by_hand = helpers.metrics_by_hand(config, state, builder.build(config).source)
    assert metrics['FID-LeNet-MNIST'] == pytest.approx(by_hand['FID'], rel=1e-4)
    assert metrics['IS-LeNet-MNIST'] == pytest.approx(by_hand['IS'], rel=1e-5)
    protocol = results[6]['protocol']
    assert protocol['num_generated'] == 64 and protocol['num_reference'] == 96
    assert protocol['reference']['extractor'] == 'lenet_mnist'
    assert len(protocol['reference']['extractor_sha256']) == 64
    assert protocol['reference']['resize'] == 'none' and protocol['quantised'] == 'uint8'
    assert protocol['step'] == 6 and protocol['ema'] is False
    # The best checkpoint is the step with the lower FID.
    best = json.loads((run / 'best.json').read_text())
    fids = {s: r['metrics']['FID-LeNet-MNIST'] for s, r in results.items()}
    assert best['step'] == min(fids, key=fids.get) and best['metric'] == 'FID-LeNet-MNIST'
    assert os.listdir(run / 'checkpoints_best') == [str(best['step'])]
    logged = [json.loads(l) for l in (run / 'metrics.jsonl').read_text().splitlines()]
    assert any('eval/FID-LeNet-MNIST' in m for m in logged)
    # One reference cache entry, reused by a second run with the same protocol...
    assert len(list(cache.glob('*.npz'))) == 1
    train.train(
        helpers.tiny_config(**EVAL, **{'eval.cache_dir': str(cache), 'seed': 1}),
        str(tmp_path / 'run2'),
    )
    assert len(list(cache.glob('*.npz'))) == 1
    # ...and a changed input (more reference images) never reuses it.
    train.train(
        helpers.tiny_config(**{**EVAL, 'eval.reference_num': 128, 'eval.cache_dir': str(cache)}),
        str(tmp_path / 'run3'),
    )
    assert len(list(cache.glob('*.npz'))) == 2


@pytest.mark.heavy  # CI's 20 minutes.
@pytest.mark.slow
def test_cached_reference_gives_the_same_numbers(tmp_path):
    config = helpers.tiny_config(
        **{
            **EVAL,
            'eval.every_steps': 0,
            'train.steps': 2,
            'eval.cache_dir': str(tmp_path / 'cache'),
        }
    )
    state = train.train(config, str(tmp_path / 'run'))
    source, generator, *_ = builder.build(config)
    from gan_jax import parallel

    mesh = parallel.make_mesh()
    fresh = eval_lib.Evaluator(config, generator, source, mesh).evaluate(state, 2)
    cached = eval_lib.Evaluator(config, generator, source, mesh).evaluate(state, 2)
    assert fresh['metrics'] == pytest.approx(cached['metrics'], rel=1e-6)


def test_best_metric_must_be_computed():
    config = helpers.tiny_config(**{**EVAL, 'eval.metrics': 'kid'})
    source, generator, *_ = builder.build(config)
    from gan_jax import parallel

    with pytest.raises(ValueError, match=r"best_metric='FID' must be one of"):
        eval_lib.Evaluator(config, generator, source, parallel.make_mesh())


@pytest.mark.slow
def test_standalone_evaluation_on_1_and_4_devices(tmp_path):
    run = tmp_path / 'run'
    train.train(helpers.tiny_config(**{**EVAL, 'eval.every_steps': 0, 'train.steps': 3}), str(run))
    outputs = {}
    for devices, name in ((1, 'eval_3.json'), (4, 'eval_3-2.json')):
        result = subprocess.run(
            [
                sys.executable,
                helpers.EVALUATE,
                f'--workdir={run}',
                '--step=latest',
                '--metrics=fid,kid',
                '--num_samples=64',
            ],
            env=helpers.python_env(devices),
            capture_output=True,
            text=True,
            timeout=300,
            cwd=helpers.REPO,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        # A second evaluation of the same step never overwrites the first.
        outputs[devices] = json.loads((run / name).read_text())
    assert set(outputs[1]['metrics']) == {
        'FID-LeNet-MNIST',
        'KID-LeNet-MNIST',
        'KID-LeNet-MNIST_std',
    }
    # Generation and extraction are sharded; the samples do not depend on it.
    assert outputs[4]['metrics'] == pytest.approx(outputs[1]['metrics'], rel=1e-4)
    bad = subprocess.run(
        [sys.executable, helpers.EVALUATE, f'--workdir={run}', '--step=7'],
        env=helpers.python_env(),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=helpers.REPO,
    )
    assert bad.returncode != 0 and "--step='7'" in bad.stderr and '[3]' in bad.stderr


def _evaluator(config, source):
    return eval_lib.Evaluator(config, None, source, parallel.make_mesh(jax.devices()[:1]))


def test_reference_images_are_a_seeded_subset_not_the_first_classes():
    # A class-sorted source, as a folder dataset is: 10 classes x 50 images.
    labels = np.repeat(np.arange(10), 50)
    images = np.zeros((500, 28, 28, 1), np.uint8)
    source = ArraySource(images, labels, name='sorted', resolution=28, channels=1, num_classes=10)
    config = helpers.tiny_config(**EVAL)
    first = _evaluator(config, source).reference_indices(50)
    assert len(set(first)) == 50 and len(set(labels[first])) >= 8  # Dataset order: 1 class.
    assert list(first) == list(_evaluator(config, source).reference_indices(50))
    other = helpers.tiny_config(**{**EVAL, 'eval.seed': 1})
    assert list(first) != list(_evaluator(other, source).reference_indices(50))


def test_reference_split_is_honoured(prepared_tfds_mnist):
    config = helpers.tiny_config(
        **{
            **EVAL,
            'data.source': 'tfds',
            'data.tfds_name': 'mnist',
            'data.tfds_data_dir': prepared_tfds_mnist,
            'data.resolution': 28,
            'eval.reference_split': 'test',
        }
    )
    setup = builder.build(config)
    assert len(setup.source) == 60_000
    evaluator = _evaluator(config, setup.source)
    assert len(evaluator.source) == 10_000  # MNIST's test split, not the training source.
    assert evaluator._reference_protocol()['split'] == 'test'


def test_reference_split_of_a_single_split_source_fails():
    config = helpers.tiny_config(**{**EVAL, 'eval.reference_split': 'test'})
    with pytest.raises(ValueError, match=r"eval.reference_split='test'.*'digits' has one split"):
        _evaluator(config, builder.build(config).source)


def test_an_extractor_that_cannot_read_the_data_fails_before_training(tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError('training was compiled before the extractor was checked')

    monkeypatch.setattr(train.step_lib, 'compile_update', no_training)
    config = helpers.tiny_config(**{**EVAL, 'data.resolution': 32, 'data.channels': 3})
    with pytest.raises(
        ValueError,
        match=r"eval.extractor='lenet_mnist' cannot read the data: images of shape "
        r'\(32, 32, 3\); it accepts uint8 images of shape \(28, 28, 1\) only',
    ):
        train.train(config, str(tmp_path / 'run'))
    assert not (tmp_path / 'run' / 'checkpoints').exists()


def test_protocol_key_follows_the_evaluation_settings_only():
    images, labels = np.zeros((100, 28, 28, 1), np.uint8), np.zeros(100, np.int32)
    source = ArraySource(images, labels, name='zeros', resolution=28, channels=1, num_classes=None)

    def key(**overrides):
        config = helpers.tiny_config(**{**EVAL, **overrides})
        return eval_lib.protocol_key(_evaluator(config, source).protocol())

    assert key() == key(**{'eval.every_steps': 6, 'train.steps': 12, 'eval.best_metric': 'KID'})
    assert key() != key(**{'eval.num_samples': 32})
    assert key() != key(**{'eval.reference_num': 50})
    assert key() != key(**{'eval.seed': 1})


@pytest.mark.slow
def test_intra_fid_is_the_mean_of_the_per_class_fids(tmp_path, monkeypatch):
    settings = {**EVAL, 'model.conditioning': 'projection', 'eval.metrics': 'fid,intra_fid'}
    # Computed afresh, never from an older cache.
    config = helpers.tiny_config(**settings, **{'eval.cache_dir': str(tmp_path / 'one')})
    setup = builder.build(config)
    evaluator = eval_lib.Evaluator(
        config, setup.generator, setup.source, parallel.make_mesh(), setup.num_classes
    )
    # The untrained G draws one grey image for every z (pixel std 0.002): perturbed weights
    # give varied samples, so the generated covariances matter.
    state = jax.jit(setup.init_state)()
    state = state.replace(g_params=helpers.perturbed(state.g_params, seed=1, scale=0.2))
    result = evaluator.evaluate(state, 0)
    by_hand = helpers.metrics_by_hand(config, state, setup.source)
    per_class = result['per_class']['intra_FID-LeNet-MNIST']
    np.testing.assert_allclose(per_class, by_hand['FID_per_class'], rtol=1e-4)
    assert result['metrics']['intra_FID-LeNet-MNIST'] == pytest.approx(np.mean(per_class))
    assert result['metrics']['FID-LeNet-MNIST'] == pytest.approx(by_hand['FID'], rel=1e-4)
    assert result['protocol']['intra_fid']['classes'] == 10

    # Memory for 3 classes' moments at once: the classes go in groups (the first with FID's
    # pass, the others each with a pass over their own samples and reference images).
    dim = evaluator.feature_dim
    monkeypatch.setattr(eval_lib, 'INTRA_FID_MAX_BYTES', 3 * 2 * dim**2 * 8)
    cache = tmp_path / 'grouped'
    config = helpers.tiny_config(**settings, **{'eval.cache_dir': str(cache)})
    grouped = eval_lib.Evaluator(
        config, setup.generator, setup.source, parallel.make_mesh(), setup.num_classes
    )
    assert [(g.start, g.stop) for g in grouped._class_groups] == [(0, 3), (3, 6), (6, 9), (9, 10)]
    label, reads = setup.source.label, []
    monkeypatch.setattr(setup.source, 'label', lambda i: reads.append(i) or label(i))
    for _ in range(2):  # Computed, then read from the cache.
        again = grouped.evaluate(state, 0)
        np.testing.assert_allclose(
            again['per_class']['intra_FID-LeNet-MNIST'], per_class, rtol=1e-6
        )
        # The 96 reference labels are read by the main pass, once more to choose every
        # group's images, and for groups 2-4's own batches: not once per group.
        assert len(reads) < 3 * 96
    assert len(list(cache.glob('*.npz'))) == 4  # The reference with group 1, groups 2-4.

    # Its own number of samples per class: the first 10 x 5, in groups of 3 classes.
    config = helpers.tiny_config(
        **settings, **{'eval.intra_fid_per_class': 5, 'eval.cache_dir': str(cache)}
    )
    own = eval_lib.Evaluator(
        config, setup.generator, setup.source, parallel.make_mesh(), setup.num_classes
    ).evaluate(state, 0)
    fifty = helpers.tiny_config(**{**settings, 'eval.num_samples': 50})
    np.testing.assert_allclose(
        own['per_class']['intra_FID-LeNet-MNIST'],
        helpers.metrics_by_hand(fifty, state, setup.source)['FID_per_class'],
        rtol=1e-4,
    )
    assert own['protocol']['intra_fid']['num_generated'] == 50


def test_intra_fid_needs_a_conditional_generator():
    config = helpers.tiny_config(**{**EVAL, 'eval.metrics': 'fid,intra_fid'})
    source, generator, *_ = builder.build(config)
    with pytest.raises(ValueError, match='intra_fid needs a class-conditional generator'):
        eval_lib.Evaluator(config, generator, source, parallel.make_mesh())
