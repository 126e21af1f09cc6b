"""Runs a published table, row x seed, and writes our numbers beside the paper's.

    python reproduce.py --table pacgan_table1 [--seeds N] [--rows 'ring / GAN,grid / PacGAN2']
                        [--root DIR] [--run_index K] [--report_only] [--out reproductions]
                        [--override key=value ...]

Each run lives in ``<root>/<table>/<row>/seed<k>``; a finished run (in its
folder, or recorded in ``<out>/<table>.json``) is skipped and an interrupted one
resumes, so the command can be run in stretches or, with
``--run_index K`` (one run of the plan, 0-based, rows first), as a cluster job
array. Afterwards (and with ``--report_only``) it writes ``<out>/<table>.md``,
``.json`` and figures from whatever has finished. Tables: experiments/tables.py.
"""

import shlex
import sys

from absl import app, flags

from experiments import tables
from gan_jax import reproduction

_TABLE = flags.DEFINE_enum('table', None, list(tables.TABLES), 'The table to run.')
_SEEDS = flags.DEFINE_integer('seeds', None, "Seeds per row (default: the table's).")
_ROWS = flags.DEFINE_list('rows', None, 'Row names to run (default: all).')
_ROOT = flags.DEFINE_string('root', 'runs/reproduce', 'Folder of the run folders.')
_RUN_INDEX = flags.DEFINE_integer('run_index', None, 'Run only this run of the plan.')
_REPORT_ONLY = flags.DEFINE_bool('report_only', False, 'Only write the report.')
_OUT = flags.DEFINE_string('out', 'reproductions', 'Folder of the report.')
_OVERRIDE = flags.DEFINE_multi_string(
    'override',
    [],
    'key=value passed to every run as --config.key=value (a shortened '
    'protocol, e.g. for a quick check: use another --root and --out).',
)


def main(argv):
    del argv
    table = tables.TABLES[_TABLE.value]
    runs = reproduction.plan(table, _ROOT.value, seeds=_SEEDS.value, rows=_ROWS.value)
    if _RUN_INDEX.value is not None and not 0 <= _RUN_INDEX.value < len(runs):
        raise app.UsageError(f'--run_index={_RUN_INDEX.value}: the plan has {len(runs)} runs.')
    if not _REPORT_ONLY.value:
        chosen = runs if _RUN_INDEX.value is None else [runs[_RUN_INDEX.value]]
        recorded = reproduction.load_recorded(table, _OUT.value)
        for run in chosen:
            print(f'{run.row.name}, seed {run.seed}: {run.workdir}', flush=True)
            reproduction.execute(run, [f'--config.{kv}' for kv in _OVERRIDE.value], recorded)
    if _RUN_INDEX.value is None or _REPORT_ONLY.value:
        command = shlex.join(['python', *sys.argv])
        print(f'wrote {reproduction.write_report(table, runs, _OUT.value, command)}')


if __name__ == '__main__':
    flags.mark_flag_as_required('table')
    app.run(main)
