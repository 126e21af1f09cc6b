"""Images per second delivered by the input pipeline alone (no training).

    python benchmarks/input_pipeline.py [--source digits|npz|tfds] [--path P] [--name N]
        [--tfds_data_dir D] [--resolution 32] [--batch 64] [--steps 200] [--threads 4]

Times ``make_train_iterator`` (Grain: shuffle, decode, crop/resize, batch, with
``--threads`` reader threads) over ``--steps`` steps after a warm-up step, and
compares the rate with the train step's need given by ``--train_img_s``.
Measure on a quiet machine.
"""

import argparse
import time

import ml_collections

from gan_jax import data


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--source', default='digits')
    parser.add_argument('--path')
    parser.add_argument('--name')
    parser.add_argument('--tfds_data_dir')
    parser.add_argument('--resolution', type=int, default=32)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--steps', type=int, default=200)
    parser.add_argument('--threads', type=int, default=4)
    parser.add_argument(
        '--train_img_s',
        type=float,
        default=None,
        help="The train step's rate, to print the margin.",
    )
    args = parser.parse_args()
    config = ml_collections.ConfigDict(
        dict(
            source=args.source,
            name=args.name,
            path=args.path,
            tfds_data_dir=args.tfds_data_dir,
            download=False,
            channels=None,
        )
    )
    source = data.get_source(config, resolution=args.resolution)
    iterator = data.make_train_iterator(
        source, global_batch=args.batch, batches_per_step=1, seed=0, num_threads=args.threads
    )
    next(iterator)  # Warm-up: threads start, first batches decode.
    start = time.perf_counter()
    for _ in range(args.steps):
        next(iterator)
    rate = args.steps * args.batch / (time.perf_counter() - start)
    line = (
        f'{source.name} {source.image_shape} batch={args.batch} threads={args.threads}: '
        f'{rate:.0f} img/s'
    )
    if args.train_img_s:
        line += f" ({rate / args.train_img_s:.1f}x the train step's {args.train_img_s:.0f} img/s)"
    print(line)


if __name__ == '__main__':
    main()
