"""The resolved config of a run: saved with it, checked again on resume, and read back.

Also the config's key history: ``RENAMED_KEYS`` maps a key's old name to its new
one, so an old command line gets a pointer to the new key, and ``ADDED_KEYS``
gives a new key's value for runs saved before it, so an old run folder still
resumes and evaluates.
"""

import difflib
import importlib.util
import json
import os

import ml_collections

# Old key -> new key (the naming scheme is in experiments/base.py).
RENAMED_KEYS = {
    'augment.kind': 'augment.name',
    'augment.ada_interval': 'augment.ada_every_d_steps',
    'ema.kind': 'ema.name',
    'data.name': 'data.tfds_name',
    'reg.bcr_real': 'reg.bcr_real_weight',
    'reg.bcr_fake': 'reg.bcr_fake_weight',
    'reg.zcr_dis': 'reg.zcr_d_weight',
    'reg.zcr_gen': 'reg.zcr_g_weight',
    'reg.penalty_every': 'reg.penalty_every_d_steps',
    'reg.lecam_start_step': 'reg.lecam_start_d_step',
    'log.sample_every': 'log.sample_every_steps',
    'optim.decay_start': 'optim.decay_start_step',
}

# Keys added since runs were first saved -> the value a run saved without them had.
ADDED_KEYS = {
    'model.activation': 'relu',
    'model.z_distribution': 'normal',
    'model.w_dim': 512,
    'model.mapping_layers': 8,
    'model.channel_base': 16384,
    'model.channel_max': 512,
    'model.conv_clamp': None,
    'model.d_architecture': 'resnet',
    'model.mbstd_group_size': 8,
    'model.bf16_resolutions': 0,
    'train.g_steps': 1,
    'eval.intra_fid_per_class': None,
    'data.skip_corrupt': False,
    'train.grad_accum': 1,
    'optim.lazy_rescale': False,
    'reg.pl_weight': 0.0,
    'reg.pl_every_g_steps': 4,
    'reg.pl_batch_shrink': 2,
    'reg.pl_decay': 0.01,
    'reg.style_mixing_prob': 0.0,
    'eval.truncation_psi': 1.0,
    'reg.lazy_separate_step': False,
    'reg.mode_seeking_weight': 0.0,
    'train.shared_latents': False,
    'model.unit_range_images': False,
    'eval.g_batch_statistics': False,
    'data.reshuffle_each_epoch': True,
}

# Keys that say where the data is read from, not what it is: a run that sets them
# follows its protocol still (the reproduction reports do not name them).
DATA_LOCATION_KEYS = ('data.tfds_data_dir', 'data.download', 'data.path')

# Keys that may change between a run and its resumption: how long to train and
# how often to log or save. Changing anything else would silently make the
# resumed run a different experiment.
RESUMABLE_CHANGES = (
    'train.steps',
    'train.steps_per_call',
    'dry_run',
    'log.',
    'checkpoint.',
    'eval.',
    'data.num_threads',
    *DATA_LOCATION_KEYS,
    'data.skip_corrupt',  # To resume a run stopped by an unreadable image without it.
)


def flatten(tree, prefix=''):
    """{'a': {'b': 1}} -> {'a.b': 1}."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f'{prefix}{key}.'))
        else:
            out[f'{prefix}{key}'] = value
    return out


def unknown_key_message(key, known_keys):
    """Why ``key`` is not a config key: its new name, a close match, or the valid keys."""
    if key in RENAMED_KEYS:
        return f'Unknown config key {key!r}: did you mean {RENAMED_KEYS[key]!r}? (renamed)'
    close = difflib.get_close_matches(key, sorted(known_keys), n=1, cutoff=0.75)
    parent = key.rpartition('.')[0]
    while parent and parent not in known_keys:
        parent = parent.rpartition('.')[0]
    siblings = sorted(k for k in known_keys if k.rpartition('.')[0] == parent)
    hint = f' Did you mean {close[0]!r}?' if close else ''
    return (
        f'Unknown config key {key!r}.{hint} Valid keys under {parent or "config"}: '
        f'{", ".join(siblings)}.'
    )


def migrate(flat):
    """A flattened config saved before a rename or an added key, with today's key names
    and the added keys' values."""
    return {**ADDED_KEYS, **{RENAMED_KEYS.get(k, k): v for k, v in flat.items()}}


def unflatten(flat):
    """{'a.b': 1} -> {'a': {'b': 1}}."""
    tree = {}
    for key, value in flat.items():
        *parents, leaf = key.split('.')
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def load_experiment(spec, root='.'):
    """The config that an experiment file names: ``spec`` is ``path[:variant]`` as
    ``launch.py --config`` takes it, a relative path read from ``root``."""
    path, _, variant = spec.partition(':')
    module_spec = importlib.util.spec_from_file_location('experiment', os.path.join(root, path))
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(variant or None)


def load_run_config(workdir):
    """The resolved config saved in ``workdir/config.json``, with today's key names."""
    path = os.path.join(workdir, 'config.json')
    if not os.path.exists(path):
        raise FileNotFoundError(
            f'{path} does not exist: --workdir must be a run folder written by launch.py.'
        )
    with open(path) as f:
        saved = json.load(f)['config']
    return ml_collections.ConfigDict(unflatten(migrate(flatten(saved))))


def save_or_check(config, workdir, command):
    """Writes ``config.json``: the resolved config and every command that ran it.

    For a resumed run, first raises ValueError naming every key that differs
    from the saved run, except the keys in RESUMABLE_CHANGES.
    """
    path = os.path.join(workdir, 'config.json')
    resolved = json.loads(config.to_json_best_effort())
    commands = []
    if os.path.exists(path):
        with open(path) as f:
            saved_run = json.load(f)
        commands = saved_run['commands']
        saved, new = migrate(flatten(saved_run['config'])), flatten(resolved)
        resumable = RESUMABLE_CHANGES
        if new.get('optim.lr_schedule', 'constant') != 'constant':
            # The learning rates decay over train.steps: it is part of the experiment.
            resumable = tuple(k for k in resumable if k != 'train.steps')
        changed = sorted(
            k
            for k in set(saved) | set(new)
            if saved.get(k) != new.get(k) and not k.startswith(resumable)
        )
        if changed:
            details = ', '.join(f'{k}: {saved.get(k)!r} -> {new.get(k)!r}' for k in changed)
            raise ValueError(
                f'{workdir} holds a run with a different config ({details}). Resuming '
                f'would mix two experiments; use another --workdir, or only change '
                f'{", ".join(resumable)}.'
            )
    with open(path, 'w') as f:
        json.dump({'commands': commands + [command], 'config': resolved}, f, indent=2)
