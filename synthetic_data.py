"""Synthetic training data from a class-conditional run: CAS and augmentation.

    python synthetic_data.py --workdir RUN [--step latest|best|N] --dataset mnist|fashion_mnist|
        cifar10 [--mode cas|augment] [--num_synthetic 50000] [--num_validation 10000]
        [--epochs N] [--seeds 0,1,2] [--real_fraction 0.5]
    python synthetic_data.py --mode subset --dataset mnist --num_real_train 600 --out FILE.npz

``cas`` (Ravuri & Vinyals 2019) trains the dataset's gan_jax classifier
(gan_jax.metrics.train_classifier) on generated samples only, and the same classifier on
``--num_real_train`` real training images, for each seed. ``augment`` trains it on the real
images the run's generator was trained on (gan_jax.synthetic.generator_training_set), on those
plus samples (the real ones repeated to about ``--real_fraction`` of the mix), and on the
samples only, each for ``--epochs`` passes over the mix. Both keep the epoch best on real
validation images held out of the train split and report the real test accuracy; they write
``--out`` (default ``RUN/<mode>-step<N>``): <mode>.json (numbers and protocol) and <mode>.md.
``subset`` writes the real training subset (gan_jax.synthetic.write_subset) a generator for
``augment`` is trained on (``launch.py --config.data.source=npz --config.data.path=FILE``).
"""

import json
import os
import sys

from absl import app, flags

from gan_jax import runs, synthetic
from gan_jax.metrics import train_classifier

_MODE = flags.DEFINE_enum('mode', 'cas', ['cas', 'augment', 'subset'], 'What to run.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder written by launch.py.')
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
_NUM_REAL = flags.DEFINE_integer(
    'num_real_train', None, 'cas: real training images (default: rest); subset: its size.'
)
_REAL_FRACTION = flags.DEFINE_float(
    'real_fraction', 0.5, 'augment: about this fraction of the real + synthetic set is real.'
)
_EPOCHS = flags.DEFINE_integer('epochs', None, "Default: the classifier's TRAINING epochs.")
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2'], 'Classifier seeds.')
_OUT = flags.DEFINE_string(
    'out', None, 'Output folder (default RUN/<mode>-step<N>); subset: the .npz file.'
)


def markdown(record):
    title = {'cas': 'CAS', 'augment': 'Augmentation'}[record['protocol']['mode']]
    lines = [
        f'# {title}: {record["run"]["workdir"]} step {record["run"]["step"]}',
        '',
        '| training data | test accuracy mean ± std | median | min | max | best epochs |',
        '|---|---|---|---|---|---|',
    ]
    for source, result in record['results'].items():
        acc = result['test']
        lines.append(
            f'| {source} | {acc["mean"]:.4f} ± {acc["std"]:.4f} | {acc["median"]:.4f} | '
            f'{acc["min"]:.4f} | {acc["max"]:.4f} | {result["best_epochs"]} |'
        )
    num_classes = len(next(iter(record['results'].values()))['test_per_class_median'])
    lines += [
        '',
        'Test accuracy per true class, median over seeds:',
        '',
        '| training data | ' + ' | '.join(str(k) for k in range(num_classes)) + ' |',
        '|---' * (num_classes + 1) + '|',
    ]
    for source, result in record['results'].items():
        cells = ' | '.join(f'{a:.3f}' for a in result['test_per_class_median'])
        lines.append(f'| {source} | {cells} |')
    lines += ['', f'CAS / real: {record["cas_over_real"]:.3f}']
    if 'augmented_minus_real' in record:
        lines += [f'real+synthetic - real (mean): {record["augmented_minus_real"]:+.4f}']
    lines += ['', '```', record['command'], '```']
    lines += ['', 'Protocol:', '```json', json.dumps(record['protocol'], indent=1), '```', '']
    return '\n'.join(lines)


def main(argv):
    del argv
    data_dir = _DATA_DIR.value or train_classifier.default_data_dir()
    if _MODE.value == 'subset':
        if _NUM_REAL.value is None or _OUT.value is None:
            raise app.UsageError('--mode subset needs --num_real_train and --out FILE.npz.')
        synthetic.write_subset(
            _OUT.value, _DATASET.value, data_dir, _NUM_REAL.value, _NUM_VALIDATION.value
        )
        print(f'Wrote {_OUT.value}', file=sys.stderr)
        return
    if _WORKDIR.value is None:
        raise app.UsageError(f'--mode {_MODE.value} needs --workdir RUN.')
    if _MODE.value == 'augment' and _NUM_REAL.value is not None:
        raise app.UsageError(
            "--mode augment trains on the real images the generator saw (the run's data.path); "
            'leave --num_real_train out.'
        )
    seeds = [int(s) for s in _SEEDS.value]
    name = synthetic.CLASSIFIERS[_DATASET.value]
    epochs = _EPOCHS.value or train_classifier.TRAINING[name]['epochs']
    run = runs.load_run(_WORKDIR.value, _STEP.value, _EMA.value)
    split = synthetic.split_real(
        _DATASET.value, data_dir, _NUM_VALIDATION.value, num_train=_NUM_REAL.value
    )
    if _MODE.value == 'augment':  # Fails before anything is generated or trained.
        real = synthetic.generator_training_set(run.config.data, _DATASET.value, data_dir, split)
    fake = synthetic.generate_from_run(run, _NUM_SYNTHETIC.value)
    num_validation = len(split.validation[0])
    if _MODE.value == 'cas':
        sources, steps_per_epoch, extra = {'synthetic': fake, 'real': split.train}, None, {}
        num_real = len(split.train[0])
    else:
        sources, steps_per_epoch, extra = synthetic.augmentation(
            real, fake, _REAL_FRACTION.value, name, epochs
        )
        num_real = len(real.images)
    protocol = synthetic.protocol(
        _DATASET.value, num_real, num_validation, _NUM_SYNTHETIC.value, epochs, seeds
    )
    protocol.update(extra, mode=_MODE.value)
    results = synthetic.score(
        name,
        sources,
        split,
        epochs,
        seeds,
        steps_per_epoch,
        log=lambda source, test: print(source, json.dumps(test), flush=True),
    )
    record = {
        'command': ' '.join(sys.argv),
        'run': {'workdir': os.path.abspath(_WORKDIR.value), 'step': run.step, 'ema': run.ema},
        'protocol': protocol,
        'results': results,
        'cas_over_real': results['synthetic']['test']['median'] / results['real']['test']['median'],
    }
    if _MODE.value == 'augment':
        record['augmented_minus_real'] = (
            results['real+synthetic']['test']['mean'] - results['real']['test']['mean']
        )
    out = _OUT.value or os.path.join(_WORKDIR.value, f'{_MODE.value}-step{run.step}')
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f'{_MODE.value}.json'), 'w') as f:
        json.dump(record, f, indent=2)
    with open(os.path.join(out, f'{_MODE.value}.md'), 'w') as f:
        f.write(markdown(record))
    print(f'Wrote {out}', file=sys.stderr)


if __name__ == '__main__':
    app.run(main)
