"""Small domain classifiers used as feature extractors where Inception features are meaningless.

MNIST-like digits and clothes are far from ImageNet, so FID on Inception features says little
about them; these classifiers, trained on the real data, give the features and logits for
"FID-LeNet" and similar metrics (never to be reported as plain "FID"). A small CIFAR-10 CNN is
included as a cheap extractor for quick checks.

The weights are committed under `weights/`, with `weights/manifest.json` recording for each
classifier its checksum, architecture, training command and test accuracy. Retrain one with
`python -m gan_jax.metrics.train_classifier --name <name>`.
"""

import dataclasses
import hashlib
import json
import pathlib
from collections.abc import Callable, Sequence

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp

WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent / 'weights'
MANIFEST = 'manifest.json'


class ConvClassifier(nn.Module):
    """Conv stages, each closed by a 2x2 max-pool, then Dense(features_dim) -> Dense(num_classes).

    `features` are the ReLU outputs of the penultimate layer. Convolutions followed by BatchNorm
    carry no bias since BN's shift makes it redundant. `global_average` pools the last grid to one
    vector instead of flattening it, which keeps the head (and the weights file) small.
    """

    stages: Sequence[Sequence[int]]
    kernel_size: int
    padding: str
    batch_norm: bool
    global_average: bool
    features_dim: int
    num_classes: int = 10
    axis_name: str | None = None  # BatchNorm's statistics over this mesh axis too (shard_map).

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
        for widths in self.stages:
            for width in widths:
                x = nn.Conv(
                    width,
                    (self.kernel_size, self.kernel_size),
                    padding=self.padding,
                    use_bias=not self.batch_norm,
                )(x)
                if self.batch_norm:
                    x = nn.BatchNorm(
                        use_running_average=not train, momentum=0.9, axis_name=self.axis_name
                    )(x)
                x = nn.relu(x)
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.mean(axis=(1, 2)) if self.global_average else x.reshape(x.shape[0], -1)
        features = nn.relu(nn.Dense(self.features_dim)(x))
        return {'features': features, 'logits': nn.Dense(self.num_classes)(features)}


@dataclasses.dataclass(frozen=True)
class ClassifierSpec:
    """What a classifier is trained on and how it is built; `mean`/`std` normalise [0, 1] pixels."""

    dataset: str
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    architecture: dict

    def build(self, axis_name: str | None = None) -> ConvClassifier:
        return ConvClassifier(**self.architecture, axis_name=axis_name)


_LENET = dict(
    stages=((32,), (64,)),
    kernel_size=5,
    padding='VALID',
    batch_norm=False,
    global_average=False,
    features_dim=128,
)

SPECS = {
    'lenet_mnist': ClassifierSpec('mnist', (28, 28, 1), (0.1307,), (0.3081,), _LENET),
    'lenet_fashion_mnist': ClassifierSpec(
        'fashion_mnist', (28, 28, 1), (0.2860,), (0.3530,), _LENET
    ),
    'cnn_cifar10': ClassifierSpec(
        'cifar10',
        (32, 32, 3),
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        dict(
            stages=((32,), (64,), (96,), (128,)),
            kernel_size=3,
            padding='SAME',
            batch_norm=True,
            global_average=True,
            features_dim=128,
        ),
    ),
}


def get_spec(name: str) -> ClassifierSpec:
    if name not in SPECS:
        raise ValueError(f'Unknown classifier {name!r}; expected one of {", ".join(SPECS)}.')
    return SPECS[name]


def preprocess(images: jax.Array, name: str) -> jax.Array:
    """Checks uint8 NHWC images at the classifier's native size and normalises them as in training.

    There is deliberately no resizing (resize='none'): features of resized images would not be
    comparable with those of the real data, so another size is an error.
    """
    spec = get_spec(name)
    if images.dtype != jnp.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != spec.input_shape:
        height, width, channels = spec.input_shape
        raise ValueError(
            f'Classifier {name!r} takes uint8 NHWC images of shape [N, {height}, {width}, '
            f'{channels}] (no resizing); got {images.dtype} of shape {tuple(images.shape)}.'
        )
    x = images.astype(jnp.float32) / 255.0
    return (x - jnp.asarray(spec.mean)) / jnp.asarray(spec.std)


def init_variables(name: str, key: jax.Array) -> dict:
    """Fresh variables (params, and batch_stats where BN is used) for classifier `name`."""
    spec = get_spec(name)
    return spec.build().init(key, jnp.zeros((1, *spec.input_shape), jnp.float32))


def read_manifest(weights_dir: pathlib.Path = WEIGHTS_DIR) -> dict:
    path = pathlib.Path(weights_dir) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def load_classifier(
    name: str, weights_dir: pathlib.Path = WEIGHTS_DIR
) -> tuple[Callable[[jax.Array], dict[str, jax.Array]], dict]:
    """Returns (apply_fn, info) for a committed classifier, after checking its weights' sha256.

    apply_fn(images) maps uint8 [N, H, W, C] images at the native size to
    {"features": [N, features_dim], "logits": [N, 10]}; it is jittable. `info` is the classifier's
    manifest entry (accuracy, test set, training command, ...) plus name, input_shape,
    features_dim and resize='none'.
    """
    spec = get_spec(name)
    weights_dir = pathlib.Path(weights_dir)
    retrain = f'retrain with `python -m gan_jax.metrics.train_classifier --name {name}`'
    entry = read_manifest(weights_dir).get(name)
    if entry is None:
        raise FileNotFoundError(f'{weights_dir / MANIFEST} has no entry for {name!r}; {retrain}.')
    path = weights_dir / entry['file']
    if not path.exists():
        raise FileNotFoundError(f'Weights file {path} for {name!r} is missing; {retrain}.')
    if sha256(path) != entry['sha256']:
        raise ValueError(
            f'Weights file {path} does not match the sha256 in '
            f'{weights_dir / MANIFEST}; restore it from git or {retrain}.'
        )
    # Tuples become lists in JSON, so compare both through JSON.
    if entry['architecture'] != json.loads(json.dumps(spec.architecture)):
        raise ValueError(
            f'{path} was trained for architecture {entry["architecture"]}, but the '
            f'code now builds {spec.architecture}; {retrain}.'
        )
    template = jax.eval_shape(lambda key: init_variables(name, key), jax.random.key(0))
    variables = flax.serialization.from_bytes(template, path.read_bytes())
    module = spec.build()

    def apply_fn(images: jax.Array) -> dict[str, jax.Array]:
        return module.apply(variables, preprocess(images, name), train=False)

    info = {
        **entry,
        'name': name,
        'input_shape': spec.input_shape,
        'features_dim': spec.architecture['features_dim'],
        'resize': 'none',
    }
    return apply_fn, info
