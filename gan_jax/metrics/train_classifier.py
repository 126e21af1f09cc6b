"""Trains a domain classifier on the real data and records it in the weights manifest.

    python -m gan_jax.metrics.train_classifier --name lenet_mnist [--data_dir ../shared/data] \
        [--epochs N] [--seed 0]

The data folder holds MNIST and Fashion-MNIST as the original IDX .gz files and CIFAR-10 as .npz
(see ../shared/data/README.md). The run is deterministic given the seed on a given machine,
software stack and device count. It overwrites weights/<name>.msgpack and the name's manifest entry.
"""

import argparse
import datetime
import json
import os
import pathlib
import time

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax import parallel
from gan_jax.data.idx import read_idx
from gan_jax.metrics import classifiers

# Per classifier: Adam with a cosine-decayed learning rate. Horizontal flips, the only
# augmentation, are for CIFAR-10 alone: a flipped digit is no digit, and Fashion-MNIST reaches
# its target without them.
TRAINING = {
    'lenet_mnist': dict(epochs=5, batch_size=128, learning_rate=1e-3, flip=False),
    'lenet_fashion_mnist': dict(epochs=5, batch_size=128, learning_rate=1e-3, flip=False),
    'cnn_cifar10': dict(epochs=6, batch_size=128, learning_rate=2e-3, flip=True),
}

TEST_SETS = {
    'mnist': 'MNIST test set (t10k, all 10000 images)',
    'fashion_mnist': 'Fashion-MNIST test set (t10k, all 10000 images)',
    'cifar10': (
        'CIFAR-10 test_batch[0:1000]: the first 1000 of the 10000 test images, the only '
        'ones available offline'
    ),
}


def default_data_dir() -> pathlib.Path:
    """Env GAN_JAX_SHARED_DATA, else <repo>/../shared/data."""
    repo = pathlib.Path(__file__).resolve().parents[2]
    return pathlib.Path(os.environ.get('GAN_JAX_SHARED_DATA', repo.parent / 'shared' / 'data'))


def load_dataset(dataset: str, split: str, data_dir: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 NHWC images, int64 labels) of `split` ('train' or 'test') from the shared data."""
    data_dir = pathlib.Path(data_dir)
    if dataset == 'cifar10':
        file = 'cifar10_train.npz' if split == 'train' else 'cifar10_test_first1000.npz'
        with np.load(data_dir / 'cifar10' / file) as data:
            images, labels = data['x'], data['y']
    else:
        prefix = data_dir / dataset / ('train' if split == 'train' else 't10k')
        images = read_idx(f'{prefix}-images-idx3-ubyte.gz')[..., None]
        labels = read_idx(f'{prefix}-labels-idx1-ubyte.gz')
    if images.dtype != np.uint8 or images.ndim != 4 or labels.shape != (len(images),):
        raise ValueError(
            f'{dataset}/{split}: images {images.dtype} {images.shape} and labels '
            f'{labels.shape} are not uint8 NHWC with one label each.'
        )
    return images, labels.astype(np.int64)


def predict(apply_fn, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """The top-1 class of each image under `apply_fn` (as from load_classifier), in batches."""
    predict_batch = jax.jit(lambda x: jnp.argmax(apply_fn(x)['logits'], axis=-1))
    predictions = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        # Pad the last batch so that one compiled shape serves all batches.
        padded = np.concatenate(
            [batch, np.zeros((batch_size - len(batch), *batch.shape[1:]), batch.dtype)]
        )
        predictions.append(np.asarray(predict_batch(padded))[: len(batch)])
    return np.concatenate(predictions)


def accuracy(apply_fn, images: np.ndarray, labels: np.ndarray, batch_size: int = 1000) -> float:
    """Top-1 accuracy of `apply_fn` (as from load_classifier) over the whole set."""
    return float(np.mean(predict(apply_fn, images, batch_size) == labels))


def flip(key: jax.Array, x: jax.Array) -> jax.Array:
    """Flips each image horizontally with probability 1/2."""
    return jnp.where(jax.random.bernoulli(key, 0.5, (x.shape[0], 1, 1, 1)), x[:, :, ::-1], x)


def train_step(name: str, optimizer, mesh, flip_key: jax.Array):
    """One data-parallel update of classifier `name`, compiled over `mesh`'s 'data' axis.

    step(params, state, opt_state, images, labels, step_index) -> (params, state, opt_state,
    loss): uint8 `images` and `labels` are the global batch, split over the devices; the rest
    is replicated. Each device takes the gradient of the mean loss over the devices
    (lax.pmean of its own mean), and BatchNorm normalises with statistics over the whole batch,
    so any device count computes the update of one device. Flips (TRAINING's `flip`) are drawn
    for the global batch from `flip_key` and the step index.
    """
    settings = TRAINING[name]
    module = classifiers.get_spec(name).build(axis_name=parallel.DATA_AXIS)

    def local_step(params, state, opt_state, x, labels):
        def loss_fn(params):
            outputs, new_state = module.apply(
                {'params': params, **state}, x, train=True, mutable=list(state)
            )
            loss = optax.softmax_cross_entropy_with_integer_labels(outputs['logits'], labels)
            return jax.lax.pmean(loss.mean(), parallel.DATA_AXIS), new_state

        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, loss

    batch = P(parallel.DATA_AXIS)
    sharded = jax.shard_map(
        local_step, mesh=mesh, in_specs=(P(), P(), P(), batch, batch), out_specs=P()
    )

    def step(params, state, opt_state, images, labels, step_index):
        x = classifiers.preprocess(images, name)
        if settings['flip']:
            x = flip(jax.random.fold_in(flip_key, step_index), x)
        return sharded(params, state, opt_state, x, labels)

    return jax.jit(step)


def batches(rng: np.random.Generator, num: int, batch_size: int):
    """Endless batches of indices into `num` examples: each pass a new permutation drawn from
    `rng`, cut into whole batches (a pass's remainder is left out)."""
    while True:
        order = rng.permutation(num)
        for i in range(num // batch_size):
            yield order[i * batch_size : (i + 1) * batch_size]


def fit(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    epochs: int,
    seed: int,
    steps_per_epoch: int | None = None,
    mesh=None,
):
    """Trains classifier `name` on uint8 `images` and their `labels` with its TRAINING settings.

    An epoch is `steps_per_epoch` updates (default: one pass over the data); batches come from
    one pass after the other (`batches`). The update is data-parallel over `mesh` (default:
    this process's devices); the batch size must divide over its devices. Yields (epoch,
    variables as numpy, last batch loss) after each epoch, so a caller can score or keep any
    epoch's weights.
    """
    settings = TRAINING[name]
    batch_size = settings['batch_size']
    if len(images) < batch_size:
        raise ValueError(f'{len(images)} training images: fewer than one batch of {batch_size}.')
    steps_per_epoch = steps_per_epoch or len(images) // batch_size
    mesh = parallel.make_mesh(jax.local_devices()) if mesh is None else mesh
    if batch_size % mesh.size:
        raise ValueError(
            f'{name}: batch size {batch_size} does not divide over {mesh.size} devices.'
        )
    schedule = optax.cosine_decay_schedule(settings['learning_rate'], epochs * steps_per_epoch)
    optimizer = optax.adam(schedule)
    init_key, flip_key = jax.random.split(jax.random.key(seed))
    variables = jax.device_put(
        classifiers.init_variables(name, init_key), parallel.replicated(mesh)
    )
    params, state = variables['params'], {k: v for k, v in variables.items() if k != 'params'}
    opt_state = optimizer.init(params)
    step = train_step(name, optimizer, mesh, flip_key)
    batch_sharding = NamedSharding(mesh, P(parallel.DATA_AXIS))
    stream = batches(np.random.default_rng(seed), len(images), batch_size)
    for epoch in range(epochs):
        for i in range(steps_per_epoch):
            batch = next(stream)
            params, state, opt_state, loss = step(
                params,
                state,
                opt_state,
                jax.device_put(images[batch], batch_sharding),
                jax.device_put(labels[batch], batch_sharding),
                epoch * steps_per_epoch + i,
            )
        yield epoch, parallel.to_host({'params': params, **state}), float(loss)


def apply_fn(name: str, variables: dict):
    """uint8 images -> the classifier's outputs, for `accuracy`."""
    module = classifiers.get_spec(name).build()
    return lambda x: module.apply(variables, classifiers.preprocess(x, name))


def train(name: str, data_dir: pathlib.Path, epochs: int, seed: int) -> tuple[dict, float]:
    """Trains classifier `name`; returns its variables and the test accuracy."""
    spec = classifiers.get_spec(name)
    train_images, train_labels = load_dataset(spec.dataset, 'train', data_dir)
    test_images, test_labels = load_dataset(spec.dataset, 'test', data_dir)
    start = time.perf_counter()
    for epoch, variables, loss in fit(name, train_images, train_labels, epochs, seed):
        test_accuracy = accuracy(apply_fn(name, variables), test_images, test_labels)
        print(
            f'epoch {epoch + 1}/{epochs}: loss {loss:.4f}, '
            f'test accuracy {test_accuracy:.4f} ({time.perf_counter() - start:.0f} s)',
            flush=True,
        )
        start = time.perf_counter()
    return variables, test_accuracy


def save(
    name: str,
    variables: dict,
    *,
    test_accuracy: float,
    epochs: int,
    seed: int,
    wall_s: float,
    weights_dir: pathlib.Path = classifiers.WEIGHTS_DIR,
) -> pathlib.Path:
    """Writes weights/<name>.msgpack and replaces the name's manifest entry."""
    spec = classifiers.get_spec(name)
    path = pathlib.Path(weights_dir) / f'{name}.msgpack'
    path.write_bytes(flax.serialization.to_bytes(variables))
    manifest = classifiers.read_manifest(weights_dir)
    manifest[name] = {
        'file': path.name,
        'sha256': classifiers.sha256(path),
        'dataset': spec.dataset,
        'input_shape': list(spec.input_shape),
        'normalisation': {'mean': list(spec.mean), 'std': list(spec.std)},
        'architecture': json.loads(json.dumps(spec.architecture)),
        'num_params': sum(x.size for x in jax.tree.leaves(variables['params'])),
        'training': {k: v for k, v in TRAINING[name].items() if k != 'epochs'},
        'train_command': (
            f'python -m gan_jax.metrics.train_classifier --name {name} '
            f'--epochs {epochs} --seed {seed}'
        ),
        'epochs': epochs,
        'seed': seed,
        'train_wall_s': round(wall_s),
        'test_accuracy': round(test_accuracy, 4),
        'test_set': TEST_SETS[spec.dataset],
        'software': f'jax {jax.__version__}, flax {flax.__version__}, optax {optax.__version__}',
        'date': datetime.date.today().isoformat(),
    }
    (pathlib.Path(weights_dir) / classifiers.MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + '\n'
    )
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--name', required=True, choices=list(classifiers.SPECS))
    parser.add_argument('--data_dir', type=pathlib.Path, default=default_data_dir())
    parser.add_argument('--epochs', type=int, help='default: per classifier, see TRAINING')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    epochs = args.epochs or TRAINING[args.name]['epochs']
    start = time.perf_counter()
    variables, test_accuracy = train(args.name, args.data_dir, epochs, args.seed)
    wall_s = time.perf_counter() - start
    path = save(
        args.name,
        variables,
        test_accuracy=test_accuracy,
        epochs=epochs,
        seed=args.seed,
        wall_s=wall_s,
    )
    print(
        f'{args.name}: test accuracy {test_accuracy:.4f} after {epochs} epochs in '
        f'{wall_s:.0f} s; wrote {path} ({path.stat().st_size} bytes)'
    )


if __name__ == '__main__':
    main()
