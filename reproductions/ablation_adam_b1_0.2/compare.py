"""Modes and high-quality share over training: each row of the Adam b1 ablation beside the
same row and seed of the first Table 1 runs (b1 = 0.8, ../pacgan_table1_b1_0.8), from the
two reports' records.

    python reproductions/ablation_adam_b1_0.2/compare.py

Writes ``compare.png`` beside this file and prints, per row, at how many evaluations
each run held every mode. Rows whose Table 1 run has no curve (recorded before reports
kept them) show the ablation's alone.
"""

import json
import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = {
    'b1 = 0.8 (Table 1 runs)': os.path.join(
        HERE, '..', 'pacgan_table1_b1_0.8', 'pacgan_table1.json'
    ),
    'b1 = 0.2 (ablation)': os.path.join(HERE, 'pacgan_table1.json'),
}
COLORS = dict(zip(RUNS, ('tab:blue', 'tab:orange')))  # The same in every panel.
NUM_MODES = {'ring': 8, 'grid': 25}  # PacGAN's mixtures (gan_jax/data/mixtures.py).
METRICS = (('modes', 'modes captured'), ('high_quality', 'high-quality samples'))


def curves():
    """{(row, seed): {label: series}} of the ablation's finished runs that have curves."""
    records = {label: json.load(open(path))['runs'] for label, path in RUNS.items()}
    ablated = [(r['row'], r['seed']) for r in records['b1 = 0.2 (ablation)'] if r.get('series')]
    return {
        key: {
            label: r['series']
            for label, runs in records.items()
            for r in runs
            if (r['row'], r['seed']) == key and r.get('series')
        }
        for key in ablated
    }


def main():
    pairs = curves()
    fig, axes = plt.subplots(len(pairs), len(METRICS), figsize=(10, 3 * len(pairs)), squeeze=False)
    for i, ((row, seed), by_label) in enumerate(pairs.items()):
        dataset = row.split(' / ')[0]
        every = NUM_MODES[dataset]
        for label, series in by_label.items():
            modes = [value for _, value in series[f'modes-{dataset}']]
            print(
                f'{row} seed {seed}, {label}: {every} modes at {modes.count(every)} of {len(modes)}'
            )
            for ax, (family, title) in zip(axes[i], METRICS, strict=True):
                steps, values = zip(*series[f'{family}-{dataset}'], strict=True)
                ax.plot(steps, values, label=label, color=COLORS[label])
                ax.set_title(f'{row} seed {seed}: {title}', fontsize=9)
                ax.set_xlabel('generator steps')
        axes[i][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, 'compare.png'), dpi=80)


if __name__ == '__main__':
    main()
