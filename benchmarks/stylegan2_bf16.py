"""StyleGAN2's train step with its top resolutions in bfloat16 against all-float32.

    python benchmarks/stylegan2_bf16.py [--batch 8] [--bf16_resolutions 4] [--repeats 3]

The ``stylegan2_32`` step of train_step.py (batch ``batch``) built twice, with
``model.bf16_resolutions`` 0 and ``bf16_resolutions``, both compiled and warmed
up, then timed one step at a time, alternating, so machine load affects both
alike. Prints the median seconds per step of each and their ratio.
"""

import argparse
import statistics

from benchmarks.timing import median_seconds
from benchmarks.train_step import gan_jax_step


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--bf16_resolutions', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    runs = {
        count: gan_jax_step('stylegan2_32', args.batch, 'float32', count)[0]
        for count in (0, args.bf16_resolutions)
    }
    for run in runs.values():
        run(1)  # Warm-up.
    times = {count: [] for count in runs}
    for _ in range(args.repeats):
        for count, run in runs.items():
            times[count].append(median_seconds(lambda: run(1), 1, warmup=0))
    seconds = {count: statistics.median(t) for count, t in times.items()}
    for count, s in seconds.items():
        print(f'bf16_resolutions={count}: {s:.2f} s per step (batch {args.batch})')
    print(f'ratio (bfloat16 / float32 time): {seconds[args.bf16_resolutions] / seconds[0]:.2f}x')


if __name__ == '__main__':
    main()
