"""Centre-block inpainting by the mean of the k nearest training images, for several k.

    PYTHONPATH=. python applications/nearest_mean_inpainting.py mnist|fashion_mnist [N] [K,K,...]

The first N (default 300) test images with the centre block of half the side hidden, as
``repair.py --task inpaint_center`` hides it; for each k, the hole MSE (per pixel, on [0, 1],
mean and standard error over the images) of the mean of the k training images closest on the
known pixels. The mean of many images consistent with what is seen estimates the posterior
mean, the estimate with the least expected squared error; one consistent image (k = 1, or the
inversion's best restart) has about twice that error. It made the floor quoted in
applications/README.md.
"""

import sys

import numpy as np

from gan_jax import baselines, operators
from gan_jax.metrics import train_classifier as tc
from gan_jax.repair import mse, summary


def main(dataset, num_images=300, ks=(1, 3, 10, 30, 100)):
    data_dir = tc.default_data_dir()
    test = tc.load_dataset(dataset, 'test', data_dir)[0][:num_images].astype(np.float32) / 255
    train = tc.load_dataset(dataset, 'train', data_dir)[0].astype(np.float32) / 255
    masks = np.stack([operators.center_mask(test.shape[1:], 0.5)] * len(test))
    op, hole = operators.inpaint(masks), 1.0 - masks
    y = masks * test
    for k in ks:
        error = summary(mse(baselines.nearest_neighbours_mean(op, y, train, k), test, hole))
        mean, sem = error['mean'], error['sem']
        print(f'{dataset}, {len(test)} images, k = {k}: hole MSE {mean:.4f} ± {sem:.4f}')


if __name__ == '__main__':
    args = sys.argv[1:]
    main(
        args[0],
        int(args[1]) if len(args) > 1 else 300,
        tuple(int(k) for k in args[2].split(',')) if len(args) > 2 else (1, 3, 10, 30, 100),
    )
