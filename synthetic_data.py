"""Classification Accuracy Score of a class-conditional run (Ravuri & Vinyals 2019).

    python synthetic_data.py --workdir RUN [--step latest|best|N] --dataset mnist|fashion_mnist|
        cifar10 [--num_synthetic 50000] [--num_validation 10000] [--epochs N] [--seeds 0,1,2]

Trains the dataset's gan_jax classifier (gan_jax.metrics.train_classifier) on generated samples
only, and the same classifier on the real training images, for each seed; keeps the epoch best
on real validation images held out of the train split; reports the real test accuracy of both.
Writes ``--out`` (default ``RUN/cas-step<N>``): cas.json (numbers and protocol) and cas.md.
"""

import json
import os
import sys

from absl import app, flags

from gan_jax import runs, synthetic
from gan_jax.metrics import train_classifier

_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder written by launch.py.', required=True)
_STEP = flags.DEFINE_string('step', 'latest', 'latest, best, or a checkpoint step.')
_EMA = flags.DEFINE_bool('ema', None, 'Use the EMA generator (default: eval.use_ema).')
_DATASET = flags.DEFINE_enum(
    'dataset', None, list(synthetic.CLASSIFIERS), 'Real data.', required=True
)
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None, 'Default: $GAN_JAX_SHARED_DATA or ../shared/data.'
)
_NUM_SYNTHETIC = flags.DEFINE_integer('num_synthetic', 50_000, 'Generated training images.')
_NUM_VALIDATION = flags.DEFINE_integer('num_validation', 10_000, 'Real validation images.')
_NUM_REAL = flags.DEFINE_integer('num_real_train', None, 'Real training images (default: rest).')
_EPOCHS = flags.DEFINE_integer('epochs', None, "Default: the classifier's TRAINING epochs.")
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2'], 'Classifier seeds.')
_OUT = flags.DEFINE_string('out', None, 'Output folder (default RUN/cas-step<N>).')


def markdown(record):
    lines = [
        f'# CAS: {record["run"]["workdir"]} step {record["run"]["step"]}',
        '',
        '| training data | test accuracy median | min | max | best epochs |',
        '|---|---|---|---|---|',
    ]
    for source, result in record['results'].items():
        acc = result['test']
        lines.append(
            f'| {source} | {acc["median"]:.4f} | {acc["min"]:.4f} | {acc["max"]:.4f} | '
            f'{result["best_epochs"]} |'
        )
    lines += ['', f'CAS / real: {record["cas_over_real"]:.3f}', '', '```', record['command'], '```']
    lines += ['', 'Protocol:', '```json', json.dumps(record['protocol'], indent=1), '```', '']
    return '\n'.join(lines)


def main(argv):
    del argv
    seeds = [int(s) for s in _SEEDS.value]
    name = synthetic.CLASSIFIERS[_DATASET.value]
    epochs = _EPOCHS.value or train_classifier.TRAINING[name]['epochs']
    run = runs.load_run(_WORKDIR.value, _STEP.value, _EMA.value)
    data_dir = _DATA_DIR.value or train_classifier.default_data_dir()
    split = synthetic.split_real(
        _DATASET.value, data_dir, _NUM_VALIDATION.value, num_train=_NUM_REAL.value
    )
    fake = synthetic.generate_labelled(
        run.setup.generator,
        run.variables,
        run.config.model.z_dim,
        run.setup.num_classes,
        _NUM_SYNTHETIC.value,
        z_distribution=run.config.model.z_distribution,
    )
    results = {}
    for source, data in (('synthetic', fake), ('real', split.train)):
        per_seed = [
            synthetic.train_and_score(name, data, split.validation, split.test, epochs, seed)
            for seed in seeds
        ]
        results[source] = {
            'test': synthetic.summary([r['test'] for r in per_seed]),
            'validation': synthetic.summary([r['validation'] for r in per_seed]),
            'best_epochs': [r['best_epoch'] for r in per_seed],
            'per_seed': per_seed,
        }
        print(source, json.dumps(results[source]['test']), flush=True)
    record = {
        'command': ' '.join(sys.argv),
        'run': {'workdir': os.path.abspath(_WORKDIR.value), 'step': run.step, 'ema': run.ema},
        'protocol': synthetic.protocol(_DATASET.value, split, _NUM_SYNTHETIC.value, epochs, seeds),
        'results': results,
        'cas_over_real': results['synthetic']['test']['median'] / results['real']['test']['median'],
    }
    out = _OUT.value or os.path.join(_WORKDIR.value, f'cas-step{run.step}')
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'cas.json'), 'w') as f:
        json.dump(record, f, indent=2)
    with open(os.path.join(out, 'cas.md'), 'w') as f:
        f.write(markdown(record))
    print(f'Wrote {out}', file=sys.stderr)


if __name__ == '__main__':
    app.run(main)
