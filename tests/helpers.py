"""Shared test utilities: a tiny config and a cheap evaluation, runners for a fresh process
(training, a script, code), metrics by hand, and files for the data and disk tests
(IDX, PNGs, a corrupt folder, a full disk).

A fresh process is needed whenever a test wants another device count (fixed when
JAX starts) or several processes (``jax.distributed``).
"""

import errno
import gzip
import io
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_AND_DUMP = os.path.join(REPO, 'tests', 'train_and_dump.py')
EVALUATE = os.path.join(REPO, 'evaluate.py')
RECORD_GRADIENTS = os.path.join(REPO, 'tests', 'record_gradients.py')


# An evaluation cheap enough for tests: FID-LeNet of 64 samples against 96 digits.
CHEAP_EVAL = {
    'eval.every_steps': 3,
    'eval.extractor': 'lenet_mnist',
    'eval.num_samples': 64,
    'eval.batch_size': 32,
    'eval.kid_subset_size': 50,
    'eval.kid_subsets': 5,
    'eval.reference_num': 96,
    'eval.best_metric': 'FID',
}


def tiny_config(**overrides):
    """The default DCGAN experiment shrunk to compile and run in seconds on CPU."""
    sys.path.insert(0, REPO)
    from experiments import dcgan

    c = dcgan.get_config()
    c.model.g_width = 8
    c.model.d_width = 8
    c.model.z_dim = 16
    c.train.batch_size = 8
    c.train.steps = 6
    c.log.every_steps = 2
    c.log.sample_every_steps = 3
    c.log.num_samples = 16
    c.checkpoint.every_steps = 3
    c.data.num_threads = 1
    c.eval.every_steps = 0
    set_overrides(c, overrides)
    c.lock()
    return c


def set_overrides(config, overrides):
    """{'train.steps': 3} -> config.train.steps = 3."""
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split('.')
        for parent in parents:
            node = node[parent]
        node[leaf] = value


def python_env(devices=1):
    """A subprocess environment with ``devices`` simulated CPU devices (and CPU only, so
    that on a GPU machine a 1-vs-N comparison still compares 1 and N devices)."""
    env = dict(os.environ)
    env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices}'
    env['JAX_PLATFORMS'] = 'cpu'
    env['GAN_JAX_TEST_DEVICES'] = str(devices)
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    return env


def run_python(code, devices=1, timeout=300):
    """Runs ``python -c code`` on ``devices`` simulated CPU devices; returns its stdout
    (a failure shows the end of its stderr)."""
    return run_script('-c', code, devices=devices, timeout=timeout)


def run_script(*args, devices=1, timeout=300):
    """Runs ``python *args`` from the repository root on ``devices`` simulated CPU devices;
    returns its stdout (a failure shows the end of its stderr)."""
    result = subprocess.run(
        [sys.executable, *args],
        env=python_env(devices),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def train_in_subprocess(workdir, out, overrides=None, devices=1, timeout=300):
    """Trains tiny_config(**overrides) in a new process; returns its dumped arrays."""
    cmd = [
        sys.executable,
        TRAIN_AND_DUMP,
        '--workdir',
        str(workdir),
        '--out',
        str(out),
        '--overrides',
        json.dumps(overrides or {}),
    ]
    result = subprocess.run(
        cmd, env=python_env(devices), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(np.load(out))


def max_abs_diff(a, b):
    assert a.keys() == b.keys()
    return max((float(np.max(np.abs(a[k] - b[k]))) for k in a), default=0.0)


def perturbed(tree, seed, scale):
    """``tree`` plus ``scale`` times standard-normal noise, leaf by leaf."""
    import jax

    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return treedef.unflatten(
        [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    )


def metrics_by_hand(config, state, source):
    """FID and IS of the run's generator (not its EMA) under ``config.eval``, computed
    outside gan_jax.evaluate and gan_jax.metrics.fid / inception_score: the eval latents
    through G at once, uint8 by hand, the classifier applied directly, the reference drawn
    as documented (a permutation by eval.seed), FID with scipy.linalg.sqrtm (pytorch-fid's
    formula) and IS as exp E KL(p(y|x) || p(y)) over 10 splits; for a conditional G (sample
    i of class i % classes) also the FID of each class by gan_jax.metrics.fid, class by class.
    """
    import jax
    import jax.numpy as jnp
    import scipy.linalg

    from gan_jax import builder
    from gan_jax.metrics import classifiers, fid
    from gan_jax.sampling import sample_latents

    ec = config.eval
    setup = builder.build(config)
    z = sample_latents(jax.random.PRNGKey(ec.seed), jnp.arange(ec.num_samples), config.model.z_dim)
    classes = setup.num_classes
    labels = None if classes is None else np.arange(ec.num_samples) % classes
    variables = {'params': state.g_params, 'batch_stats': state.g_batch_stats}
    images = np.asarray(setup.generator.apply(variables, z, labels, train=False), np.float64)
    fake = np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
    n_ref = min(ec.reference_num or len(source), len(source))
    order = np.random.default_rng(ec.seed).permutation(len(source))[:n_ref]
    real = np.stack([source[int(i)]['image'] for i in order])
    classify, _ = classifiers.load_classifier(ec.extractor)
    f_fake, logits = (np.asarray(classify(fake)[k], np.float64) for k in ('features', 'logits'))
    f_real = np.asarray(classify(real)['features'], np.float64)
    mu1, mu2 = f_fake.mean(0), f_real.mean(0)
    c1, c2 = np.cov(f_fake, rowvar=False), np.cov(f_real, rowvar=False)
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    fid_value = float(
        ((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean)
    )
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    scores, n = [], len(probs)
    for i in range(10):  # Split i: rows i*n//10 .. (i+1)*n//10 (OpenAI's code).
        part = probs[i * n // 10 : (i + 1) * n // 10]
        marginal = part.mean(0, keepdims=True)
        scores.append(np.exp((part * (np.log(part) - np.log(marginal))).sum(1).mean()))
    result = {'FID': fid_value, 'IS': float(np.mean(scores))}
    if classes is not None:
        real_labels = np.array([source[int(i)]['label'] for i in order])
        result['FID_per_class'] = [
            fid.frechet_distance(
                f_fake[labels == c].mean(0),
                np.cov(f_fake[labels == c], rowvar=False),
                f_real[real_labels == c].mean(0),
                np.cov(f_real[real_labels == c], rowvar=False),
            )
            for c in range(classes)
        ]
    return result


def write_idx(path, array):
    """Writes a uint8 array as a gzipped IDX file (MNIST's format)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b''.join(d.to_bytes(4, 'big') for d in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def png_bytes(seed, size=12):
    """A random RGB PNG file's bytes."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format='PNG')
    return buffer.getvalue()


def corrupt_folder(root, n_good=4):
    """`n_good` readable PNGs, then a PNG cut in half and a text file named .png; returns the
    two unreadable paths."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n_good):
        (root / f'good_{i:02d}.png').write_bytes(png_bytes(i))
    truncated, not_an_image = root / 'truncated.png', root / 'not_an_image.png'
    data = png_bytes(99)
    truncated.write_bytes(data[: len(data) // 2])
    not_an_image.write_text('a caption, not pixels')
    return [not_an_image, truncated]


def fill_disk(folder, leave_bytes):
    """Fills the file system of ``folder`` but ``leave_bytes``; returns the filler file."""
    filler = folder / 'filler'
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, bytes(1 << 16))
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - leave_bytes))
    return filler
