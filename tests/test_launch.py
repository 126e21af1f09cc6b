"""The command line: outputs of the default run, errors, dry run, signals, MNIST."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import pytest
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

from experiments import common, sngan
from gan_jax import builder, checkpoint, models, parallel
from gan_jax import config as config_lib
from tests import helpers

LAUNCH = [sys.executable, os.path.join(helpers.REPO, 'launch.py')]
DCGAN = '--config=' + os.path.join(helpers.REPO, 'experiments', 'dcgan.py')


def _train_lines(workdir):
    """metrics.jsonl rows of training scalars (evaluation writes rows of its own)."""
    rows = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
    return [r for r in rows if 'd_loss' in r]


def _launch(*args, devices=1, timeout=300):
    return subprocess.run(
        LAUNCH + list(args),
        env=helpers.python_env(devices),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=helpers.REPO,
    )


@pytest.mark.slow
def test_default_command_writes_every_output(tmp_path):
    run = _launch(
        DCGAN,
        f'--workdir={tmp_path}',
        '--config.train.steps=4',
        '--config.log.every_steps=2',
        '--config.log.sample_every_steps=2',
        '--config.checkpoint.every_steps=2',
        f'--config.eval.cache_dir={tmp_path / "cache"}',  # Reference computed afresh.
    )
    assert run.returncode == 0, run.stderr[-4000:]
    saved = json.loads((tmp_path / 'config.json').read_text())
    assert saved['config']['train']['steps'] == 4
    assert '--config.train.steps=4' in saved['commands'][0]
    metrics = _train_lines(tmp_path)
    assert [m['step'] for m in metrics] == [2, 4]
    assert {'d_loss', 'g_loss', 'd_real_logit', 'd_fake_logit'} <= metrics[0].keys()
    assert 'images_per_sec' in metrics[1]
    assert sorted(os.listdir(tmp_path / 'samples')) == ['step_0000002.png', 'step_0000004.png']
    assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['2', '4']
    # The default experiment evaluates at the end: FID-LeNet, kept as the best.
    result = json.loads((tmp_path / 'eval_4.json').read_text())
    run_config = config_lib.load_run_config(str(tmp_path))
    setup = builder.build(run_config)
    state, _ = checkpoint.restore_from_run(
        str(tmp_path), 'latest', setup.init_state, parallel.make_mesh()
    )
    by_hand = helpers.metrics_by_hand(run_config, state, setup.source)
    assert result['metrics']['FID-LeNet-MNIST'] == pytest.approx(by_hand['FID'], rel=1e-4)
    assert result['metrics']['IS-LeNet-MNIST'] == pytest.approx(by_hand['IS'], rel=1e-5)
    assert os.listdir(tmp_path / 'checkpoints_best') == ['4']
    tags = {
        v.tag
        for f in (tmp_path / 'tensorboard').iterdir()
        for e in LegacyEventFileLoader(str(f)).Load()
        for v in e.summary.value
    }
    assert {'d_loss', 'g_loss', 'samples'} <= tags
    # The progress bar: step, rates, ETA and losses.
    assert 'step 4/4' in run.stderr and 'img/s' in run.stderr and 'g_loss' in run.stderr


def test_unknown_config_key_fails_naming_it():
    run = _launch(DCGAN, '--config.train.stepz=3', '--config.dry_run=True')
    assert run.returncode != 0
    assert "Unknown config key 'train.stepz'" in run.stderr
    assert 'train.steps' in run.stderr  # The valid keys at that level.


def test_wrong_type_fails_naming_the_key():
    run = _launch(DCGAN, '--config.train.steps=many', '--config.dry_run=True')
    assert run.returncode != 0 and 'train.steps' in run.stderr


def test_batch_not_divisible_by_devices_fails_before_compiling(tmp_path):
    run = _launch(DCGAN, f'--workdir={tmp_path}', '--config.train.batch_size=6', devices=4)
    assert run.returncode != 0
    assert 'train.batch_size=6 is not divisible by the number of devices (4)' in run.stderr
    assert not (tmp_path / 'checkpoints').exists()


def test_dry_run_prints_layout_and_parameter_counts(tmp_path):
    run = _launch(DCGAN, f'--workdir={tmp_path}', '--config.dry_run=True', devices=4)
    assert run.returncode == 0, run.stderr[-4000:]
    assert 'G params: ' in run.stdout and 'D params: ' in run.stdout
    assert 'processes: 1, devices: 4' in run.stdout
    assert 'batch: 64 global, 16 per device' in run.stdout
    assert not tmp_path.exists() or not os.listdir(tmp_path)


def test_dry_run_of_a_tfds_preset_needs_no_data(tmp_path):
    # The command, with a TFDS folder where CIFAR-10 is surely not prepared.
    preset = os.path.join(helpers.REPO, 'experiments', 'sngan.py') + ':cifar10_resnet'
    tfds_dir = tmp_path / 'tfds'
    run = _launch(
        f'--config={preset}', f'--config.data.tfds_data_dir={tfds_dir}', '--config.dry_run=True'
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert 'data: tfds:cifar10/train, size unknown (not prepared here) of shape (32, 32, 3)' in (
        run.stdout
    )
    assert 'processes: 1, devices: 1' in run.stdout
    assert not tfds_dir.exists() or not any(tfds_dir.rglob('*'))  # Nothing downloaded.
    # The counts are those of the models built on local data of CIFAR-10's shape.
    config = sngan.get_config('cifar10_resnet')
    common.offline_data(config)  # scikit-learn's digits at 32x32, RGB.
    shapes = jax.eval_shape(builder.build(config).init_state)
    for name, params in (('G', shapes.g_params), ('D', shapes.d_params)):
        assert f'{name} params: {models.count_params(params):,}\n' in run.stdout


def _start(tmp_path, steps):
    return subprocess.Popen(
        LAUNCH
        + [
            DCGAN,
            f'--workdir={tmp_path}',
            f'--config.train.steps={steps}',
            '--config.log.every_steps=1',
            '--config.checkpoint.every_steps=5',
            '--config.log.sample_every_steps=1000',
        ],
        env=helpers.python_env(),
        cwd=helpers.REPO,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate, timeout=240):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, 'timed out'
        time.sleep(0.2)


def _checkpoints(tmp_path):
    folder = tmp_path / 'checkpoints'
    return sorted(int(p) for p in os.listdir(folder) if p.isdigit()) if folder.exists() else []


@pytest.mark.slow
@pytest.mark.heavy  # CI's 20 minutes: 49-72 s here; test_run_lock resumes a killed run in CI.
def test_sigkill_then_same_command_resumes(tmp_path):
    proc = _start(tmp_path, steps=100_000)
    _wait_for(lambda: _checkpoints(tmp_path))
    proc.kill()
    proc.wait()
    killed_at = _checkpoints(tmp_path)[-1]
    run = _launch(
        DCGAN,
        f'--workdir={tmp_path}',
        f'--config.train.steps={killed_at + 2}',
        '--config.log.every_steps=1',
        '--config.checkpoint.every_steps=5',
        '--config.log.sample_every_steps=1000',
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert f'Resumed from the checkpoint of step {killed_at}' in run.stderr
    steps = [m['step'] for m in _train_lines(tmp_path)]
    assert steps[-2:] == [killed_at + 1, killed_at + 2]


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_before_exiting(tmp_path):
    proc = _start(tmp_path, steps=100_000)
    _wait_for(
        lambda: (
            (tmp_path / 'metrics.jsonl').exists()
            and len((tmp_path / 'metrics.jsonl').read_text().splitlines()) >= 7
        )
    )
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-4000:]
    last_logged = _train_lines(tmp_path)[-1]['step']
    assert _checkpoints(tmp_path)[-1] == last_logged  # Saved at the step it stopped.
    assert 'Pre-empted' in err


@pytest.mark.heavy  # CI's 20 minutes; data/test_prepare_tfds.py prepares MNIST in CI.
@pytest.mark.slow
def test_mnist_preset_trains_on_real_mnist(tmp_path, prepared_tfds_mnist):
    run = _launch(
        DCGAN + ':mnist',
        f'--workdir={tmp_path}',
        '--config.train.steps=2',
        '--config.train.batch_size=16',
        f'--config.data.tfds_data_dir={prepared_tfds_mnist}',
        '--config.data.download=False',
        '--config.log.every_steps=1',
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert (
        'mnist' in json.loads((tmp_path / 'config.json').read_text())['config']['data']['tfds_name']
    )
    assert [m['step'] for m in _train_lines(tmp_path)] == [1, 2]
    # Evaluated at the end with the MNIST classifier against the MNIST train split.
    reference = json.loads((tmp_path / 'eval_2.json').read_text())['protocol']['reference']
    assert reference['num_images'] == 60000 and reference['extractor'] == 'lenet_mnist'
