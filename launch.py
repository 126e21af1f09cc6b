"""Trains a GAN from an experiment file.

    python launch.py --config experiments/dcgan.py[:variant] [--config.key=value ...]
                     [--workdir runs/NAME] [--distributed ...]

Running the same command with the same ``--workdir`` resumes from its latest
checkpoint. See README.md for multi-host runs.
"""

import datetime
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from gan_jax import config as config_lib

_CONFIG = config_flags.DEFINE_config_file(
    'config',
    None,
    'Experiment file, optionally with a variant: experiments/dcgan.py:mnist.',
    lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
    'workdir',
    None,
    'Run folder (config, logs, samples, checkpoints). Default: a new '
    'timestamped folder under runs/. An existing run folder is resumed.',
)
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed',
    os.environ.get('GAN_JAX_DISTRIBUTED') == '1',
    'Multi-host: call jax.distributed.initialize() (also set by GAN_JAX_DISTRIBUTED=1). '
    'The three flags below are auto-detected on TPU pods and SLURM when left unset.',
)
_COORDINATOR = flags.DEFINE_string('coordinator_address', None, 'host:port of process 0.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Number of processes.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process, 0..num_processes-1.')


def _config_keys(config, prefix=''):
    keys = set()
    for key, value in config.items():
        keys.add(prefix + key)
        if hasattr(value, 'items'):
            keys |= _config_keys(value, f'{prefix}{key}.')
    return keys


def _load_experiment(argv):
    """The config that ``--config=path[:variant]`` in ``argv`` names, or None."""
    for i, arg in enumerate(argv):
        if arg.startswith('--config='):
            spec = arg.split('=', 1)[1]
        elif arg == '--config' and i + 1 < len(argv):
            spec = argv[i + 1]
        else:
            continue
        return config_lib.load_experiment(spec)
    return None


def _parse_flags(argv):
    """absl parsing, with a one-line message for an unknown ``--config.*`` key."""
    try:
        return flags.FLAGS(argv)
    except (AttributeError, KeyError):
        config = _load_experiment(argv)
        if config is None:
            raise
        known = _config_keys(config)
        for arg in argv[1:]:
            if arg.startswith('--config.'):
                key = arg[len('--config.') :].split('=', 1)[0]
                if key not in known:
                    sys.exit(f'{config_lib.unknown_key_message(key, known)} (in {arg!r})')
        raise


def _default_workdir():
    """runs/<experiment>[-<variant>]-<timestamp>."""
    path, _, variant = config_flags.get_config_filename(flags.FLAGS['config']).partition(':')
    name = os.path.splitext(os.path.basename(path))[0] + (f'-{variant}' if variant else '')
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    return os.path.join('runs', f'{name}-{stamp}')


def _quiet_library_info(record):
    """Keeps INFO lines from gan_jax and this file; libraries (Orbax) show warnings only."""
    import logging as std_logging

    return (
        record.levelno >= std_logging.WARNING
        or 'gan_jax' in record.pathname
        or record.pathname.endswith('launch.py')
    )


def main(argv):
    logging.get_absl_handler().addFilter(_quiet_library_info)
    if len(argv) > 1:
        sys.exit(f'Unexpected arguments: {argv[1:]}')
    if _DISTRIBUTED.value:
        from gan_jax import parallel

        parallel.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
        if _WORKDIR.value is None:
            sys.exit(
                '--workdir is required with --distributed: every process must write '
                'to the same run folder.'
            )
    from gan_jax import train  # After jax.distributed.initialize, as JAX requires.

    workdir = _WORKDIR.value or _default_workdir()
    logging.info('Run folder: %s', workdir)
    train.train(_CONFIG.value, workdir, command=sys.argv)


if __name__ == '__main__':
    flags.mark_flag_as_required('config')
    app.run(main, flags_parser=_parse_flags)
