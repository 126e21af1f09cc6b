"""Figures of a run: its training curves and metrics, and a truncation sweep's FID-IS curve.

Curves come from ``metrics.jsonl`` (training scalars) and ``eval_<step>[-k].json``
(metrics). A resumed run logs again the steps between its checkpoint and the
interruption; the row written last for a step is the one kept, so each step counts
once, from the run that went on.
"""

import glob
import json
import math
import os
import re

CURVES_FILE = 'curves.png'
_EVAL_FILE = re.compile(r'eval_(\d+)(?:-(\d+))?\.json$')
_THROUGHPUT = ('steps_per_sec', 'images_per_sec')


def _pyplot():
    import matplotlib  # Imported only when a figure is drawn.

    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    return plt


def read_scalars(workdir):
    """{name: {step: value}} of the training scalars in metrics.jsonl, later rows winning."""
    series = {}
    path = os.path.join(workdir, 'metrics.jsonl')
    if not os.path.exists(path):
        return series
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            step = row.pop('step')
            for name, value in row.items():
                if not name.startswith('eval/'):  # Metrics are read from eval_*.json.
                    series.setdefault(name, {})[step] = value
    return series


def read_metrics(workdir):
    """{metric: {step: value}} from eval_<step>[-k].json, the highest k of a step winning."""
    found = []
    for path in glob.glob(os.path.join(workdir, 'eval_*.json')):
        match = _EVAL_FILE.search(os.path.basename(path))
        if match:
            found.append((int(match.group(1)), int(match.group(2) or 1), path))
    series = {}
    for step, _, path in sorted(found):
        with open(path) as f:
            for name, value in json.load(f)['metrics'].items():
                series.setdefault(name, {})[step] = value
    return series


def _panels(scalars, metrics):
    """[(title, {label: {step: value}}, std series or None)] in display order."""
    losses = {k: v for k, v in scalars.items() if 'loss' in k}
    logits = {k: v for k, v in scalars.items() if 'logit' in k}
    other = {
        k: v
        for k, v in scalars.items()
        if k not in losses and k not in logits and k not in _THROUGHPUT
    }
    panels = [(t, s, None) for t, s in (('losses', losses), ('D logits', logits)) if s]
    panels += [(name, {name: s}, None) for name, s in sorted(other.items())]
    panels += [
        (name, {name: s}, metrics.get(name + '_std'))
        for name, s in sorted(metrics.items())
        if not name.endswith('_std')
    ]
    return panels


def plot_run(workdir, out=None):
    """Draws the run's curves to ``out`` (default ``<workdir>/curves.png``); returns the path,
    or None when the run has logged nothing yet."""
    panels = _panels(read_scalars(workdir), read_metrics(workdir))
    if not panels:
        return None
    plt = _pyplot()
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, (title, series, std) in zip(axes.flat, panels):
        for label, values in sorted(series.items()):
            steps = sorted(values)
            ys = [values[s] for s in steps]
            ax.plot(steps, ys, marker='o' if len(steps) < 30 else None, ms=3, label=label)
            if std:
                err = [std.get(s, 0.0) for s in steps]
                ax.fill_between(
                    steps,
                    [y - e for y, e in zip(ys, err)],
                    [y + e for y, e in zip(ys, err)],
                    alpha=0.2,
                )
        ax.set_title(title)
        ax.set_xlabel('step')
        if len(series) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis('off')
    fig.suptitle(os.path.basename(os.path.normpath(workdir)), fontsize=9)
    fig.tight_layout()
    out = out or os.path.join(workdir, CURVES_FILE)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_truncation_curve(points, fid_name, is_name, out, title=''):
    """The FID-IS curve of a truncation sweep (BigGAN's Figure 2 style): IS on x, FID on y,
    a point per threshold labelled with it. ``points``: [(threshold or None, metrics)]."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    xs = [m[is_name] for _, m in points]
    ys = [m[fid_name] for _, m in points]
    ax.plot(xs, ys, marker='o')
    for (threshold, _), x, y in zip(points, xs, ys):
        label = 'none' if threshold is None else f'{threshold:g}'
        ax.annotate(label, (x, y), xytext=(4, 4), textcoords='offset points', fontsize=8)
    if min(ys) > 0 and max(ys) > 10 * min(ys):
        ax.set_yscale('log')  # Strong truncation moves FID by orders of magnitude.
    ax.set_xlabel(is_name)
    ax.set_ylabel(fid_name)
    ax.set_title(title or 'truncation sweep', fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
