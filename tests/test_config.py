"""Saving the resolved config and refusing an incompatible resume."""

import json

import pytest

from gan_jax import config as config_lib
from tests import helpers


def test_new_run_saves_config_and_command(tmp_path):
    config = helpers.tiny_config()
    config_lib.save_or_check(config, str(tmp_path), ['launch.py', '--x'])
    saved = json.loads((tmp_path / 'config.json').read_text())
    assert saved['commands'] == [['launch.py', '--x']]
    assert saved['config']['train']['batch_size'] == 8
    assert saved['config']['data']['path'] is None


def test_resume_may_change_steps_and_logging(tmp_path):
    config_lib.save_or_check(helpers.tiny_config(), str(tmp_path), ['a'])
    longer = helpers.tiny_config(**{'train.steps': 100, 'log.every_steps': 7})
    config_lib.save_or_check(longer, str(tmp_path), ['b'])
    saved = json.loads((tmp_path / 'config.json').read_text())
    assert saved['commands'] == [['a'], ['b']]
    assert saved['config']['train']['steps'] == 100


def test_resume_with_other_experiment_settings_fails_naming_keys(tmp_path):
    config_lib.save_or_check(helpers.tiny_config(), str(tmp_path), ['a'])
    other = helpers.tiny_config(**{'optim.d_lr': 1e-3, 'train.batch_size': 16})
    with pytest.raises(ValueError, match=r'optim\.d_lr.*train\.batch_size'):
        config_lib.save_or_check(other, str(tmp_path), ['b'])
    # The saved run is untouched.
    saved = json.loads((tmp_path / 'config.json').read_text())
    assert saved['commands'] == [['a']] and saved['config']['optim']['d_lr'] == 2e-4


def test_resume_may_not_change_steps_when_the_learning_rate_decays_over_them(tmp_path):
    decaying = {'optim.lr_schedule': 'linear_decay'}
    config_lib.save_or_check(helpers.tiny_config(**decaying), str(tmp_path), ['a'])
    longer = helpers.tiny_config(**{'train.steps': 100, **decaying})
    with pytest.raises(ValueError, match=r'train\.steps: 6 -> 100'):
        config_lib.save_or_check(longer, str(tmp_path), ['b'])


def test_flatten():
    assert config_lib.flatten({'a': {'b': 1, 'c': {'d': 2}}, 'e': 3}) == {
        'a.b': 1,
        'a.c.d': 2,
        'e': 3,
    }
