"""Saving the resolved config and refusing an incompatible resume."""

import json
import os

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


def test_a_renamed_key_names_its_new_name():
    known = {'reg', 'reg.bcr_real_weight', 'reg.penalty_weight'}
    message = config_lib.unknown_key_message('reg.bcr_real', known)
    assert (
        message
        == "Unknown config key 'reg.bcr_real': did you mean 'reg.bcr_real_weight'? (renamed)"
    )


def test_a_misspelt_key_gets_the_closest_key_and_its_section():
    known = {'train', 'train.steps', 'train.batch_size', 'log', 'log.every_steps'}
    message = config_lib.unknown_key_message('train.stepz', known)
    assert "Did you mean 'train.steps'?" in message
    assert 'Valid keys under train: train.batch_size, train.steps.' in message
    far = config_lib.unknown_key_message('train.zzzzzz', known)
    assert 'Did you mean' not in far and 'Valid keys under train' in far


def test_every_renamed_key_points_at_a_key_of_the_base_config():
    from experiments import base

    known = set(config_lib.flatten(base.get_config().to_dict()))
    for old, new in config_lib.RENAMED_KEYS.items():
        assert new in known and old not in known, (old, new)


def test_an_old_run_folder_is_read_with_the_new_names(tmp_path):
    saved = {'commands': [['launch.py']], 'config': {'reg': {'bcr_real': 2.0}, 'seed': 3}}
    (tmp_path / 'config.json').write_text(json.dumps(saved))
    loaded = config_lib.load_run_config(str(tmp_path))
    assert loaded.reg.bcr_real_weight == 2.0 and loaded.seed == 3
    with pytest.raises(FileNotFoundError, match='must be a run folder'):
        config_lib.load_run_config(str(tmp_path / 'missing'))


def test_a_run_saved_before_a_key_was_added_resumes_and_loads_with_its_old_value(tmp_path):
    config_lib.save_or_check(helpers.tiny_config(), str(tmp_path), ['a'])
    path = tmp_path / 'config.json'
    saved = json.loads(path.read_text())
    for key in config_lib.ADDED_KEYS:  # As written before the keys existed.
        section, leaf = key.split('.')
        del saved['config'][section][leaf]
    path.write_text(json.dumps(saved))
    config_lib.save_or_check(helpers.tiny_config(), str(tmp_path), ['b'])  # No change named.
    loaded = config_lib.load_run_config(str(tmp_path))
    assert loaded.model.activation == 'relu' and loaded.model.z_distribution == 'normal'
    assert loaded.train.g_steps == 1
    with pytest.raises(ValueError, match=r'train\.g_steps'):
        config_lib.save_or_check(helpers.tiny_config(**{'train.g_steps': 2}), str(tmp_path), ['c'])


def test_every_added_key_has_its_base_default():
    from experiments import base

    defaults = config_lib.flatten(base.get_config().to_dict())
    for key, value in config_lib.ADDED_KEYS.items():
        assert defaults[key] == value, key


def test_every_key_added_since_the_first_saved_runs_has_a_value_for_old_folders():
    # The keys of a run folder saved on 2026-12-06 (PacGAN Table 1's runs); a key
    # added since must be in ADDED_KEYS, or those folders stop resuming.
    from experiments import base

    path = os.path.join(os.path.dirname(__file__), 'fixtures', 'saved_run_config_keys.txt')
    with open(path) as f:
        first_saved = set(f.read().split())
    current = set(config_lib.flatten(base.get_config().to_dict()))
    missing = sorted(current - first_saved - set(config_lib.ADDED_KEYS))
    assert not missing, f'add {missing} to gan_jax.config.ADDED_KEYS'


def test_an_experiment_file_and_variant_load_as_launch_takes_them(tmp_path, monkeypatch):
    (tmp_path / 'mine.py').write_text(
        'from experiments import base\n\n'
        'def get_config(variant=None):\n'
        '    c = base.get_config()\n'
        '    c.train.steps = {None: 7, "long": 70}[variant]\n'
        '    return c\n'
    )
    assert config_lib.load_experiment('mine.py', str(tmp_path)).train.steps == 7
    assert config_lib.load_experiment('mine.py:long', str(tmp_path)).train.steps == 70
    monkeypatch.chdir(tmp_path)  # By default a relative path is read from the working directory.
    assert config_lib.load_experiment('mine.py:long').train.steps == 70
