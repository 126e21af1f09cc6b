"""100 of a class-conditional generator's samples of one class beside 100 real test images
of that class, as one grayscale PNG: to see which styles of a class the generator dropped.

    PYTHONPATH=. python applications/class_samples.py OUT.png mnist|fashion_mnist CLASS \
        RUN:STEP [RUN:STEP ...]

One 10 x 10 panel per RUN:STEP (its samples of CLASS, drawn as synthetic_data.py draws them:
sample i has class i mod 10, so the first 1,000 samples hold 100 of each), then the first
100 test images of CLASS; grey bars between panels. It made applications/README.md's figure
of the sevens.
"""

import sys

import numpy as np
from PIL import Image

from gan_jax import runs, synthetic
from gan_jax.metrics import train_classifier as tc


def grid(images):
    """100 images [100, H, W] as a 10 x 10 grid."""
    return np.concatenate(
        [np.concatenate(list(images[i * 10 : (i + 1) * 10]), 1) for i in range(10)]
    )


def main(out, dataset, label, *specs):
    label, panels = int(label), []
    for spec in specs:
        workdir, step = spec.rsplit(':', 1)
        run = runs.load_run(workdir, step)
        images, labels = synthetic.generate_from_run(run, 1000)
        panels.append(grid(images[labels == label][:100, ..., 0]))
    images, labels = tc.load_dataset(dataset, 'test', tc.default_data_dir())
    panels.append(grid(images[labels == label][:100, ..., 0]))
    bar = np.full((panels[0].shape[0], 8), 128, np.uint8)
    row = [part for panel in panels for part in (panel, bar)][:-1]
    Image.fromarray(np.concatenate(row, 1)).save(out)
    print(f'Wrote {out}')


if __name__ == '__main__':
    main(*sys.argv[1:])
