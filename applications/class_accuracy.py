"""How often gan_jax's shipped classifier gives a class-conditional generator's intended class.

    PYTHONPATH=. python applications/class_accuracy.py RUN STEP mnist|fashion_mnist

5,000 samples, classes balanced (sample i has class i mod 10), as synthetic_data.py draws
them; the classifier is lenet_<DATASET>. A quick check, before CAS, that G's classes are
ones a real classifier sees; it made the class-accuracy column of applications/README.md.
"""

import sys

from gan_jax import runs, synthetic
from gan_jax.metrics import classifiers
from gan_jax.metrics import train_classifier as tc


def main(workdir, step, dataset):
    run = runs.load_run(workdir, step)
    images, labels = synthetic.generate_from_run(run, 5000)
    apply_fn, _ = classifiers.load_classifier(f'lenet_{dataset}')
    value = tc.accuracy(apply_fn, images, labels)
    print(f'{workdir} step {run.step} (ema {run.ema}): class accuracy {value:.4f}')
    return value


if __name__ == '__main__':
    main(*sys.argv[1:4])
