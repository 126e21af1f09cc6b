"""Runs a published table (experiments/tables.py) row x seed, and reports ours beside theirs.

Each run is ``launch.py`` in its own folder ``<root>/<table>/<row>/seed<k>``:
a finished run (its final ``eval_<steps>.json`` exists) is skipped, an
interrupted one resumes from its checkpoint. ``write_report`` collects whatever
has finished into ``<out>/<table>.md``, ``.json`` and figures.

The report's ``.json`` is also the table's record of finished runs: a run it
holds keeps its place in the next report, and is not run again, after its
folder is gone (a machine wiped between sessions, a cluster job's scratch
disk). A run finished in its folder replaces its record.
"""

import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
import warnings
from typing import NamedTuple

import numpy as np

from gan_jax import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Run(NamedTuple):
    row: object  # experiments.tables.Row
    seed: int
    workdir: str

    def argv(self, extra=()):
        """The launch.py command line of this run (``extra``: more launch.py arguments)."""
        overrides = {**self.row.overrides, 'seed': self.seed}
        return [
            sys.executable,
            'launch.py',  # Run from REPO.
            f'--config={self.row.config}',
            *(f'--config.{k}={v}' for k, v in overrides.items()),
            *extra,
            f'--workdir={self.workdir}',
        ]


def slug(name):
    """'ring / PacGAN2' -> 'ring-pacgan2': a row's folder name."""
    return re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')


def plan(table, root, seeds=None, rows=None):
    """The runs of ``table``, row-major (row 0's seeds first); ``rows`` selects by name.

    An unknown row name fails, listing the table's rows.
    """
    names = [row.name for row in table.rows]
    unknown = sorted(set(rows or ()) - set(names))
    if unknown:
        raise ValueError(f'--rows: {unknown} not in {table.name}; its rows are {names}.')
    chosen = [row for row in table.rows if not rows or row.name in rows]
    return [
        Run(row, seed, os.path.join(root, table.name, slug(row.name), f'seed{seed}'))
        for row in chosen
        for seed in range(table.seeds if seeds is None else seeds)
    ]


def _final_step(workdir):
    with open(os.path.join(workdir, 'config.json')) as f:
        return json.load(f)['config']['train']['steps']


def final_eval(workdir):
    """The run's evaluation at its last step, or None while it has not finished."""
    if not os.path.exists(os.path.join(workdir, 'config.json')):
        return None
    path = os.path.join(workdir, f'eval_{_final_step(workdir)}.json')
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def load_recorded(table, out_dir):
    """{(row name, seed): run record} of the finished runs in ``<out_dir>/<table>.json``.

    Records of rows the table no longer has are left out.
    """
    path = os.path.join(out_dir, f'{table.name}.json')
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        records = json.load(f)['runs']
    names = {row.name for row in table.rows}
    return {(r['row'], r['seed']): r for r in records if r['row'] in names}


def execute(run, extra_args=(), recorded=None):
    """Runs (or resumes) one run unless it has finished; logs each stretch's wall time,
    commit and machine. Fails, naming the run, if launch.py fails or exits without the
    run's final evaluation (pre-empted), so that a queue or job array does not count it done.

    ``recorded``: ``load_recorded``'s runs; a run among them counts as finished.
    """
    if final_eval(run.workdir) is not None:
        print(f'finished already: {run.workdir}', flush=True)
        return
    if (run.row.name, run.seed) in (recorded or {}):
        print(
            f'finished already (in the report; its folder {run.workdir} is gone): to run it '
            "again, remove its record from the report's .json",
            flush=True,
        )
        return
    os.makedirs(run.workdir, exist_ok=True)
    argv = run.argv(extra_args)
    # Logged at launch, before the checkout can move, and closed at exit; a stretch killed
    # with its session stays open and the next one closes it (``_close_killed``).
    stretches = [_close_killed(s, run.workdir) for s in _stretches(run.workdir) or ()]
    stretches.append({'start': time.time(), **_code_and_machine()})
    _write_stretches(run.workdir, stretches)
    with open(os.path.join(run.workdir, 'launch.log'), 'a') as log:
        code = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    stretches[-1].update(seconds=time.time() - stretches[-1]['start'], exit=code)
    _write_stretches(run.workdir, stretches)
    if code:
        raise RuntimeError(
            f'{" ".join(argv)} exited with {code}; see {run.workdir}/launch.log. Running the '
            'same command again resumes it.'
        )
    if final_eval(run.workdir) is None:  # launch.py exits 0 when pre-empted (SIGTERM).
        raise RuntimeError(
            f'{" ".join(argv)} exited without its final evaluation (pre-empted, or '
            f'evaluation turned off); see {run.workdir}/launch.log. Running the same command '
            'again resumes it.'
        )


def _last_command(workdir):
    """The launch.py command line that last ran in ``workdir`` (from its config.json)."""
    with open(os.path.join(workdir, 'config.json')) as f:
        return ' '.join(json.load(f)['commands'][-1])


def _stretches(workdir):
    """The run's stretches (``execute``'s calls of launch.py), oldest first; None if unlogged."""
    path = os.path.join(workdir, 'stretches.jsonl')
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return [json.loads(line) for line in f]


def _write_stretches(workdir, stretches):
    path = os.path.join(workdir, 'stretches.jsonl')
    with open(path + '.tmp', 'w') as f:
        f.writelines(json.dumps(s) + '\n' for s in stretches)
    os.replace(path + '.tmp', path)


def _close_killed(stretch, workdir):
    """``stretch`` with an end: a stretch that never exited (killed with its session) ends
    at launch.log's last write, marked ``'end'`` (how it was estimated) with exit None."""
    if 'seconds' in stretch:
        return stretch
    log = os.path.join(workdir, 'launch.log')
    # No log: killed before launch.py started, so it ran for no time.
    last_write = os.path.getmtime(log) if os.path.exists(log) else stretch['start']
    return {
        **stretch,
        'seconds': last_write - stretch['start'],
        'exit': None,
        'end': "launch.log's last write",
    }


def _wall_seconds(workdir):
    """(Summed seconds of the run's stretches or None if unlogged, whether an end is estimated)."""
    stretches = _stretches(workdir)
    if stretches is None:
        return None, False
    stretches = [_close_killed(s, workdir) for s in stretches]
    return sum(s['seconds'] for s in stretches), any('end' in s for s in stretches)


def _trained_on(workdir):
    """The distinct 'commit on machine' of the run's stretches, in order ([] if unlogged);
    'not recorded' for stretches logged before stretches named them."""
    seen = [
        f'{s["commit"]} on {s["machine"]}' if 'commit' in s else 'not recorded'
        for s in _stretches(workdir) or ()
    ]
    return list(dict.fromkeys(seen))


def _evaluated_steps(workdir):
    if not os.path.isdir(workdir):
        return []
    return sorted(
        int(m.group(1))
        for name in os.listdir(workdir)
        if (m := re.fullmatch(r'eval_(\d+)\.json', name))
    )


def eval_series(workdir):
    """{metric: [(step, value), ...]} from every eval_<step>.json of a run (first of each step)."""
    series = {}
    for step in _evaluated_steps(workdir):
        with open(os.path.join(workdir, f'eval_{step}.json')) as f:
            for key, value in json.load(f)['metrics'].items():
                series.setdefault(key, []).append((step, value))
    return series


def mean_and_standard_error(values):
    """(mean, standard error of the mean with ddof 1); the error is None for one value."""
    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return float(values.mean()), None
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))


def consistent(published, mean, error):
    """Whether |ours - theirs| <= 2 combined standard errors.

    ``error`` None (one seed, whose own spread is unknown): the single run's error is
    taken as the published runs' spread, standard error x sqrt(runs), the deviation of
    one run drawn as theirs were.
    """
    if error is None:
        error = published.standard_error * math.sqrt(published.runs)
    return abs(mean - published.mean) <= 2 * math.hypot(published.standard_error, error)


def _record(run, result):
    wall_seconds, wall_estimated = _wall_seconds(run.workdir)
    return {
        'row': run.row.name,
        'seed': run.seed,
        'steps': result['protocol']['step'],
        'wall_seconds': wall_seconds,
        'wall_estimated': wall_estimated,
        'metrics': result['metrics'],
        'command': _last_command(run.workdir),
        'trained_on': _trained_on(run.workdir),
        'series': eval_series(run.workdir),
    }


def protocol_config(row, seed):
    """The flattened config that ``row``'s protocol resolves to today: its experiment file's
    variant with the row's overrides and ``seed``."""
    flat = config_lib.flatten(config_lib.load_experiment(row.config, REPO).to_dict())
    return {**flat, **row.overrides, 'seed': seed}


def _same_value(value, text):
    """Whether ``--config.key=text`` sets ``value`` (compared as the key's type)."""
    if isinstance(value, bool):
        return text.lower() == str(value).lower()
    if isinstance(value, int | float):
        try:
            return float(text) == value
        except ValueError:
            return False
    return text == str(value)


def _command_args(record):
    """The launch.py arguments of a run's recorded command, its ``--workdir`` left out."""
    return record['command'].split(' --workdir=')[0].split()[1:]


def _beyond_protocol(row, record, protocol):
    """The launch.py arguments of a finished run that set a value other than its row's
    protocol (``protocol_config``; an ablation's ``--override``), read from its recorded
    command. An argument that repeats the protocol's value, or says where the data is read
    from (``config.DATA_LOCATION_KEYS``), is not a change."""
    protocol_args = set(Run(row, record['seed'], '').argv()[2:-1])
    changes = []
    for arg in _command_args(record):
        key, _, text = arg.removeprefix('--config.').partition('=')
        if (
            arg in protocol_args
            or key in config_lib.DATA_LOCATION_KEYS
            or (key in protocol and _same_value(protocol[key], text))
        ):
            continue
        changes.append(arg)
    return changes


def _drifted(record, trained, protocol):
    """{key: value} of the values a run trained with (``trained``, its flattened resolved
    config) that its row's protocol (``protocol_config``) no longer has and its command
    did not set: its preset, or a default, changed since it ran. Keys that today's
    protocol lacks are not compared."""
    protocol = json.loads(json.dumps(protocol))  # Tuples as lists.
    named = {arg.removeprefix('--config.').partition('=')[0] for arg in _command_args(record)}
    return {
        key: trained[key]
        for key in sorted(trained)
        if key in protocol and key not in named and trained[key] != protocol[key]
    }


def _checked(row, record, trained):
    """``record`` with its ``changes`` and ``drifted`` (``trained``: the values it trained
    with) against the protocol of its row as it resolves today."""
    protocol = protocol_config(row, record['seed'])
    return {
        **record,
        'changes': _beyond_protocol(row, record, protocol),
        'drifted': _drifted(record, trained, protocol),
    }


def collect(table, runs, recorded=None):
    """Per run and per cell results of the finished runs.

    A run counts as finished when its folder holds its final evaluation or, else,
    when ``recorded`` (``load_recorded``'s runs, which may include runs outside
    ``runs``) holds it. Runs are listed in the table's row order, then by seed; cells
    are those of the rows planned in ``runs`` or with finished runs. Each run's
    ``changes``: what its command set beyond its row's protocol; ``drifted``: what it
    trained with that the protocol has changed since, from its folder's config or, its
    folder gone, from the values its record kept.
    """
    rows = {row.name: row for row in table.rows}
    finished = {}
    for key, record in (recorded or {}).items():
        finished[key] = _checked(rows[key[0]], record, record.get('drifted', {}))
    for run in runs:
        result = final_eval(run.workdir)
        if result is not None:
            trained = config_lib.flatten(config_lib.load_run_config(run.workdir).to_dict())
            finished[(run.row.name, run.seed)] = _checked(run.row, _record(run, result), trained)
    order = {row.name: i for i, row in enumerate(table.rows)}
    per_run = [finished[key] for key in sorted(finished, key=lambda k: (order[k[0]], k[1]))]
    by_row = {}
    for record in per_run:
        by_row.setdefault(record['row'], []).append(record['metrics'])
    cells = []
    shown = {run.row.name for run in runs} | set(by_row)
    for row in [row for row in table.rows if row.name in shown]:
        for metric, published in row.published.items():
            values = [m[metric] for m in by_row.get(row.name, []) if not math.isnan(m[metric])]
            cell = {
                'row': row.name,
                'metric': metric,
                'published': None if published is None else published._asdict(),
            }
            if values:
                mean, error = mean_and_standard_error(values)
                cell['ours'] = {'mean': mean, 'standard_error': error, 'seeds': len(values)}
                if published is not None:
                    cell['consistent'] = consistent(published, mean, error)
            cells.append(cell)
    return per_run, cells


def _code_and_machine():
    """{'commit': REPO's short commit (with '+changes' when tracked files differ from it),
    'machine': the CPU model x its count}."""

    def git(*args):
        return subprocess.run(['git', *args], capture_output=True, text=True, cwd=REPO).stdout

    commit = git('rev-parse', '--short', 'HEAD').strip()
    if git('status', '--porcelain', '--untracked-files=no').strip():
        commit += '+changes'
    cpu = platform.processor() or platform.machine()
    if os.path.exists('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
        cpu = f'{names[0]} x {len(names)}' if names else cpu
    return {'commit': commit, 'machine': cpu}


def _format(value, scale, error=None):
    text = f'{value * scale:.3g}'
    return text if error is None else f'{text} ± {error * scale:.2g}'


def _metric_info(table, metric):
    family = metric.split('-')[0]
    for name, label, scale in table.metrics:
        if name == family:
            return label, scale
    return metric, 1.0


def _verdict(cell, scale):
    if 'consistent' not in cell:
        return ''
    diff = (cell['ours']['mean'] - cell['published']['mean']) * scale
    text = 'consistent' if cell['consistent'] else f'differs by {diff:+.3g}'
    return text + ('' if cell['ours']['seeds'] >= 2 else " (1 seed: the published runs' spread)")


def _changes_text(per_run):
    """Report lines naming the runs that did not follow the table's protocol, by change:
    set by their command, or trained with a value the protocol has changed since."""
    lines = {}
    for r in per_run:
        name = f'{r["row"]} seed {r["seed"]}'
        if r['changes']:
            line = f'**Not the published protocol**: `{" ".join(r["changes"])}`'
            lines.setdefault(line, []).append(name)
        if r['drifted']:
            values = ' '.join(f'{k}={v}' for k, v in r['drifted'].items())
            line = f'**Trained with values the protocol has changed since**: `{values}`'
            lines.setdefault(line, []).append(name)
    if not lines:
        return []
    return ['', *(f'{line} in {", ".join(names)}.' for line, names in lines.items())]


def _json_text(value, indent=''):
    """JSON with one key a line and a list that holds no objects (a curve, a list of names)
    on one line, so that a report's diff shows the runs and cells that changed."""
    inner = indent + ' '
    if isinstance(value, dict) and value:
        items = [f'{inner}{json.dumps(k)}: {_json_text(v, inner)}' for k, v in value.items()]
        return '{\n' + ',\n'.join(items) + '\n' + indent + '}'
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return '[\n' + ',\n'.join(inner + _json_text(v, inner) for v in value) + '\n' + indent + ']'
    return json.dumps(value)


def write_report(table, runs, out_dir, command):
    """Writes ``<out_dir>/<table>.json`` and ``.md`` (and figures); returns the .md path.

    The runs finished in the folders of ``runs`` join those the previous
    ``<out_dir>/<table>.json`` records. ``command`` is the reproduce.py command
    line, recorded in the report.
    """
    per_run, cells = collect(table, runs, load_recorded(table, out_dir))
    env = {**_code_and_machine(), 'date': datetime.date.today().isoformat()}
    figures = write_figures(table, runs, per_run, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f'{table.name}.json'), 'w') as f:
        record = {**env, 'command': command, 'table': table.name, 'cells': cells, 'runs': per_run}
        f.write(_json_text(record) + '\n')
    planned = {(run.row.name, run.seed) for run in runs}
    finished_planned = sum((r['row'], r['seed']) in planned for r in per_run)
    others = len(per_run) - finished_planned
    lines = [
        f'# {table.title}',
        '',
        f'Source: {table.source}.',
        '',
        f'Written by `{command}` at commit {env["commit"]} on '
        f'{env["machine"]}, {env["date"]}: {finished_planned} of {len(runs)} planned runs '
        'finished' + (f' (and {others} more recorded)' if others else '') + '. Ours: mean ± '
        'standard error over seeds of the final evaluation. '
        'Verdict: consistent when the difference is within 2 combined standard errors '
        "(a single seed's error taken as the published runs' spread, their standard error x "
        'sqrt(runs)).',
        *_changes_text(per_run),
        '',
        '| row | metric | published (runs) | ours (seeds) | verdict |',
        '|---|---|---|---|---|',
    ]
    for cell in cells:
        label, scale = _metric_info(table, cell['metric'])
        p = cell['published']
        ours = cell.get('ours')
        ours_text = (
            f'{_format(ours["mean"], scale, ours["standard_error"])} ({ours["seeds"]})'
            if ours
            else 'not run yet'
        )
        lines.append(
            f'| {cell["row"]} | {label} | '
            + (
                'not published'
                if p is None
                else f'{_format(p["mean"], scale, p["standard_error"])} ({p["runs"]})'
            )
            + f' | {ours_text} | {_verdict(cell, scale)} |'
        )
    lines += [
        '',
        '## Runs',
        '',
        'Wall time sums the stretches reproduce.py launched; ~: a stretch was killed with its '
        "session and its end estimated (by default from launch.log's last write; how, in the "
        "run's stretches.jsonl).",
        '',
        '| row | seed | steps | wall time | trained at (commit on machine) | final metrics |',
        '|---|---|---|---|---|---|',
    ]
    for r in per_run:
        wall = '' if r['wall_seconds'] is None else f'{r["wall_seconds"] / 60:.0f} min'
        wall = f'~{wall}' if r.get('wall_estimated') else wall
        trained_on = '; '.join(r.get('trained_on') or ['not recorded'])
        metrics = ', '.join(f'{k} {v:.4g}' for k, v in r['metrics'].items())
        lines.append(
            f'| {r["row"]} | {r["seed"]} | {r["steps"]} | {wall} | {trained_on} | {metrics} |'
        )
    in_progress = [
        (run, steps[-1])
        for run in _unfinished(runs, per_run)
        if (steps := _evaluated_steps(run.workdir))
    ]
    if in_progress:
        lines += ['', '## In progress', '', '| row | seed | last evaluated step | metrics there |']
        lines += ['|---|---|---|---|']
        for run, step in in_progress:
            with open(os.path.join(run.workdir, f'eval_{step}.json')) as f:
                metrics = ', '.join(f'{k} {v:.4g}' for k, v in json.load(f)['metrics'].items())
            lines.append(f'| {run.row.name} | {run.seed} | {step} | {metrics} |')
    if per_run:
        lines += ['', 'The launch.py command of each finished run (from the repository root):', '']
        lines += [f'    python {r["command"]}' for r in per_run]
    if figures:
        lines += ['', '## Figures', '']
        lines += [f'![{name}]({os.path.basename(path)})' for name, path in figures]
        uncurved = [f'{r["row"]} seed {r["seed"]}' for r in per_run if not r.get('series')]
        if uncurved:
            lines += [
                '',
                f'Not in the curves: {", ".join(uncurved)} (recorded without their curves, '
                'before reports kept them; their folders are gone).',
            ]
    path = os.path.join(out_dir, f'{table.name}.md')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def _unfinished(runs, per_run):
    done = {(r['row'], r['seed']) for r in per_run}
    return [run for run in runs if (run.row.name, run.seed) not in done]


def _dataset(row):
    """The dataset a row's metrics name: 'modes-ring' -> 'ring'."""
    return next(iter(row.published)).split('-', 1)[1]


def write_figures(table, runs, per_run, out_dir):
    """The metrics over training per row, and (2-D mixtures) one seed's final samples per row.

    Curves come from the finished runs' records (``collect``'s ``per_run``; a
    record made before records kept their curves has none) and from the
    folders of the runs in progress; the samples from the lowest seed of each
    row whose folder holds its finished run.
    """
    import matplotlib

    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    series_by_row = {}
    for r in per_run:
        if r.get('series'):
            series_by_row.setdefault(r['row'], []).append(r['series'])
    for run in _unfinished(runs, per_run):
        if _evaluated_steps(run.workdir):
            series_by_row.setdefault(run.row.name, []).append(eval_series(run.workdir))
    if not series_by_row:
        return []
    os.makedirs(out_dir, exist_ok=True)
    figures = []
    families = [name for name, _, _ in table.metrics]
    shown_rows = [row for row in table.rows if row.name in series_by_row]
    # One line of panels per dataset (the metric names' suffix: ring, grid, ...).
    datasets = list(dict.fromkeys(_dataset(row) for row in shown_rows))
    fig, axes = plt.subplots(
        len(datasets),
        len(families),
        figsize=(5 * len(families), 3.8 * len(datasets)),
        squeeze=False,
    )
    for row in shown_rows:
        for ax, family in zip(axes[datasets.index(_dataset(row))], families):
            metric = next(m for m in row.published if m.split('-')[0] == family)
            series = [one.get(metric, []) for one in series_by_row[row.name]]
            steps = sorted(set.intersection(*(set(s for s, _ in one) for one in series)))
            values = np.array([[dict(one)[s] for s in steps] for one in series])
            _, scale = _metric_info(table, metric)
            with warnings.catch_warnings():  # KL is NaN while no sample is high quality.
                warnings.simplefilter('ignore', RuntimeWarning)
                ax.plot(steps, np.nanmean(values, axis=0) * scale, label=row.name)
            ax.set_title(f'{_metric_info(table, metric)[0]}, {_dataset(row)}')
            ax.set_xlabel('generator steps')
    for line in axes:
        line[0].legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out_dir, f'{table.name}_curves.png')
    fig.savefig(path, dpi=80)
    plt.close(fig)
    figures.append(('metrics over training (mean over seeds, runs in progress included)', path))
    in_folders = [run for run in runs if final_eval(run.workdir) is not None]
    if table.figure == 'mixture' and in_folders:
        shown = [
            min((run for run in in_folders if run.row is row), key=lambda run: run.seed)
            for row in table.rows
            if any(run.row is row for run in in_folders)
        ]
        figures.append(
            ('final samples, one seed per row', _mixture_figure(table, shown, out_dir, plt))
        )
    return figures


def _mixture_figure(table, shown, out_dir, plt):
    from gan_jax import runs as runs_lib
    from gan_jax.data.mixtures import MIXTURES

    fig, axes = plt.subplots(1, len(shown), figsize=(2.6 * len(shown), 2.8), squeeze=False)
    for ax, run in zip(axes[0], shown):
        loaded = runs_lib.load_run(run.workdir, step='latest')
        points = loaded.generate(loaded.config.eval.num_samples, seed=loaded.config.eval.seed)
        mixture = MIXTURES[loaded.config.data.source]
        ax.scatter(points[:, 0], points[:, 1], s=1, c='tab:blue')
        for cx, cy in mixture.centers:
            ax.add_patch(plt.Circle((cx, cy), 3 * mixture.std, fill=False, color='tab:red'))
        extent = 1.3 * float(np.abs(mixture.centers).max()) + 0.2
        ax.set_xlim(-extent, extent)
        ax.set_ylim(-extent, extent)
        ax.set_aspect('equal')
        ax.set_title(f'{run.row.name} (seed {run.seed})', fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path = os.path.join(out_dir, f'{table.name}_samples.png')
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
