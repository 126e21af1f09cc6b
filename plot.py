"""Plots a run's training curves and metrics to PNG.

    python plot.py --workdir RUN [--out FILE.png]

Losses, D logits, the other training scalars and each metric over steps, from
RUN/metrics.jsonl and RUN/eval_*.json (steps logged again after a resume count once);
default output RUN/curves.png, also written at the end of training. The logic is in
gan_jax/plots.py.
"""

from absl import app, flags

from gan_jax import plots

_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder written by launch.py.', required=True)
_OUT = flags.DEFINE_string('out', None, 'The PNG to write (default: RUN/curves.png).')


def main(argv):
    del argv
    path = plots.plot_run(_WORKDIR.value, _OUT.value)
    if path is None:
        raise app.UsageError(f'{_WORKDIR.value} holds no metrics.jsonl or eval_*.json yet.')
    print(f'Wrote {path}')


if __name__ == '__main__':
    app.run(main)
