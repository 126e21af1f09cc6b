"""The resolved config of a run: saved with it, and checked again on resume."""

import json
import os

# Keys that may change between a run and its resumption: how long to train and
# how often to log or save. Changing anything else would silently make the
# resumed run a different experiment.
RESUMABLE_CHANGES = ('train.steps', 'dry_run', 'log.', 'checkpoint.', 'eval.', 'data.num_threads',
                     'data.tfds_data_dir', 'data.download', 'data.path')


def flatten(tree, prefix=''):
    """{'a': {'b': 1}} -> {'a.b': 1}."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f'{prefix}{key}.'))
        else:
            out[f'{prefix}{key}'] = value
    return out


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
        saved, new = flatten(saved_run['config']), flatten(resolved)
        resumable = RESUMABLE_CHANGES
        if new.get('optim.lr_schedule', 'constant') != 'constant':
            # The learning rates decay over train.steps: it is part of the experiment.
            resumable = tuple(k for k in resumable if k != 'train.steps')
        changed = sorted(k for k in set(saved) | set(new)
                         if saved.get(k) != new.get(k)
                         and not k.startswith(resumable))
        if changed:
            details = ', '.join(f'{k}: {saved.get(k)!r} -> {new.get(k)!r}' for k in changed)
            raise ValueError(
                f'{workdir} holds a run with a different config ({details}). Resuming '
                f'would mix two experiments; use another --workdir, or only change '
                f'{", ".join(resumable)}.')
    with open(path, 'w') as f:
        json.dump({'commands': commands + [command], 'config': resolved}, f, indent=2)
