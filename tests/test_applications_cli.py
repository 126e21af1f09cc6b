"""repair.py and synthetic_data.py end to end on a tiny class-conditional run (real MNIST)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from gan_jax import train
from tests import helpers


@pytest.mark.heavy
@pytest.mark.slow
def test_repair_and_cas_commands_on_a_tiny_run(tmp_path, shared_data_dir):
    if not (shared_data_dir / 'mnist').is_dir():
        pytest.skip(f'real MNIST not found in {shared_data_dir} (set GAN_JAX_SHARED_DATA)')
    run = tmp_path / 'run'
    config = helpers.tiny_config(**{'model.conditioning': 'projection', 'train.steps': 3})
    train.train(config, str(run))

    def command(script, *args):
        result = subprocess.run(
            [sys.executable, script, f'--workdir={run}', '--dataset=mnist', *args],
            env={**helpers.python_env(), 'GAN_JAX_SHARED_DATA': str(shared_data_dir)},
            capture_output=True,
            text=True,
            timeout=600,
            cwd=helpers.REPO,
        )
        assert result.returncode == 0, result.stderr[-3000:]

    command(
        f'{helpers.REPO}/repair.py',
        '--task=cs',
        '--measurements=20,40',
        '--num_images=3',
        '--steps=2',
        '--restarts=2',
        f'--out={tmp_path / "cs"}',
    )
    record = json.loads((tmp_path / 'cs' / 'results.json').read_text())
    assert set(record['results']) == {'20', '40'} and record['run']['step'] == 3
    assert record['protocol']['num_images'] == 3
    assert (tmp_path / 'cs' / 'cs_mse.png').is_file()

    command(
        f'{helpers.REPO}/synthetic_data.py',
        '--num_synthetic=256',
        '--num_real_train=256',
        '--num_validation=100',
        '--epochs=1',
        '--seeds=0',
        f'--out={tmp_path / "cas"}',
    )
    cas = json.loads((tmp_path / 'cas' / 'cas.json').read_text())
    assert cas['protocol']['num_validation'] == 100 and cas['protocol']['num_real_train'] == 256
    assert set(cas['results']) == {'synthetic', 'real'}
    assert 0 <= cas['results']['real']['test']['median'] <= 1
    # The confusion matrix counts each MNIST test image once; its diagonal is the accuracy.
    seed0 = cas['results']['synthetic']['per_seed'][0]
    confusion = np.array(seed0['test_confusion'])
    assert confusion.shape == (10, 10) and confusion.sum() == 10_000
    assert np.trace(confusion) / 10_000 == seed0['test']
    assert 'Test accuracy per true class' in (tmp_path / 'cas' / 'cas.md').read_text()
