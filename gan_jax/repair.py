"""Data repair with a trained generator against classical baselines: the tasks and protocols.

Used by the top-level ``repair.py``. A task damages real test images (never seen in training)
with an operator (gan_jax.operators), repairs them by GAN inversion (gan_jax.inversion) and by
the baselines (gan_jax.baselines), and scores every method against the originals on [0, 1]:

- ``cs``: y = A x + noise, A with N(0, 1/m) entries, noise of norm ``noise_norm`` (Bora et al.
  2017: i.i.d. noise of std noise_norm / sqrt(m)), one A per m for all images; per-pixel MSE
  for each m. Baselines: Lasso (pixel, DCT), nearest neighbour, zeros.
- ``inpaint_center`` / ``inpaint_pixels`` / ``inpaint_boxes`` / ``inpaint_mask``: the missing
  pixels zeroed; MSE and PSNR over the hole only and over the image, for the inversion with and
  without the known pixels pasted back. Baselines: biharmonic, nearest neighbour, zeros.
- With ``average_best`` k, every task also scores the mean of the k best restarts and the mean
  of the k nearest training images: estimates of the posterior mean, which minimises the
  expected squared error where the measurement leaves the image ambiguous.
- ``denoise``: y = x + noise. Baselines: total variation, nearest neighbour, zeros.
- ``superres``: y = the average of each factor x factor block. Baselines: each block's value
  repeated (box upsampling), nearest neighbour, zeros.
"""

import dataclasses
import json
import os

import numpy as np
from matplotlib.figure import Figure

from gan_jax import baselines, inversion, operators

TASKS = (
    'cs',
    'inpaint_center',
    'inpaint_pixels',
    'inpaint_boxes',
    'inpaint_mask',
    'denoise',
    'superres',
)
# Bora et al. 2017's measurement counts on MNIST (quant_scripts/mnist_reconstruction.sh).
BORA_MEASUREMENTS = (10, 25, 50, 100, 200, 300, 400, 500, 750)


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    task: str
    noise_std: float = 0.0  # Measurement noise per entry (all tasks but cs).
    noise_norm: float = 0.1  # cs: expected norm of the noise vector.
    measurements: tuple = (50, 100)  # cs: the values of m.
    lasso_alpha: float = 0.1
    missing_fraction: float = 0.5  # inpaint_pixels; inpaint_center: the block's side fraction.
    num_boxes: int = 3  # inpaint_boxes ...
    box_size: int = 8  # ... of this side.
    mask_path: str | None = None  # inpaint_mask: the user's mask image.
    factor: int = 2  # superres.
    tv_weight: float = 0.1  # denoise: the TV baseline's weight.
    # k > 0: also score the mean of the k best restarts and of the k nearest training images.
    average_best: int = 0
    seed: int = 0  # Masks, matrices and noise.

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f'task={self.task!r}: choose from {", ".join(TASKS)}.')
        if self.task == 'inpaint_mask' and not self.mask_path:
            raise ValueError('task=inpaint_mask needs the mask image (--mask).')
        if self.average_best < 0:
            raise ValueError(f'average_best={self.average_best}: expected >= 0 (0: off).')


def mse(a, b, where=None):
    """Per-image mean squared error over all pixels, or over those where ``where`` is 1."""
    squared = (a - b) ** 2
    axes = tuple(range(1, a.ndim))
    if where is None:
        return squared.mean(axes)
    return (squared * where).sum(axes) / np.maximum(where.sum(axes), 1)


def psnr(per_image_mse):
    """PSNR in dB of images on [0, 1] (peak 1), per image."""
    return 10 * np.log10(1.0 / np.maximum(per_image_mse, 1e-12))


def summary(values):
    values = np.asarray(values, np.float64)
    return {
        'mean': float(values.mean()),
        'std': float(values.std()),
        'sem': float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0,
    }


def _masks(cfg, image_shape, num, rng):
    if cfg.task == 'inpaint_center':
        mask = operators.center_mask(image_shape, cfg.missing_fraction)
        return np.stack([mask] * num)
    if cfg.task == 'inpaint_mask':
        return np.stack([operators.mask_from_image(cfg.mask_path, image_shape)] * num)
    if cfg.task == 'inpaint_pixels':
        return np.stack(
            [
                operators.random_pixel_mask(image_shape, cfg.missing_fraction, rng)
                for _ in range(num)
            ]
        )
    return np.stack(
        [
            operators.random_boxes_mask(image_shape, cfg.num_boxes, cfg.box_size, rng)
            for _ in range(num)
        ]
    )


def _scores(estimates, originals, hole=None):
    """{'method': {'mse': ..., 'psnr': ...[, 'hole_mse', 'hole_psnr']}} over the images."""
    out = {}
    for name, images in estimates.items():
        per_image = mse(images, originals)
        scores = {'mse': summary(per_image), 'psnr': summary(psnr(per_image))}
        if hole is not None:
            hole_mse = mse(images, originals, hole)
            scores.update(hole_mse=summary(hole_mse), hole_psnr=summary(psnr(hole_mse)))
        out[name] = scores
    return out


def _averaged_estimates(cfg, found, op, y, train_images):
    """The posterior-mean-like estimates of ``average_best`` (empty when it is 0)."""
    k = cfg.average_best
    if not k:
        return {}
    return {
        f'ours_mean_best_{k}': inversion.mean_of_best_restarts(found, k),
        f'nearest_{k}_mean': baselines.nearest_neighbours_mean(op, y, train_images, k),
    }


def run_task(cfg, inverter, g_variables, test_images, train_images, *, batch_size=100):
    """(results, panels): every score with the protocol, and the images to show.

    ``test_images`` / ``train_images`` float [N, H, W, C] on [0, 1]; panels is a list of
    (title, {method: images}) for the grids, the damaged input first and the original last.
    """
    rng = np.random.default_rng(cfg.seed)
    n, image_shape = len(test_images), test_images.shape[1:]

    def invert(op, y):
        parts = []
        for start in range(0, n, batch_size):
            part_op = op
            if op.per_example:
                part_op = op._replace(params=op.params[start : start + batch_size])
            parts.append(
                inverter.invert(g_variables, part_op, y[start : start + batch_size], start)
            )
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    results, panels = {}, []
    if cfg.task == 'cs':
        pixels = int(np.prod(image_shape))
        for m in cfg.measurements:
            op = operators.gaussian(operators.gaussian_matrix(pixels, m, rng), image_shape)
            y, noise = operators.measure(op, test_images, cfg.noise_norm / np.sqrt(m), rng)
            found = invert(op, y)
            matrix = np.asarray(op.params)
            estimates = {
                'ours': found['image'],
                'lasso_pixel': baselines.lasso(matrix, y, image_shape, cfg.lasso_alpha, 'pixel'),
                'lasso_dct': baselines.lasso(matrix, y, image_shape, cfg.lasso_alpha, 'dct'),
                'nearest_neighbour': baselines.nearest_neighbour(op, y, train_images)[0],
                **_averaged_estimates(cfg, found, op, y, train_images),
                'zeros': baselines.zeros(n, image_shape),
            }
            results[str(m)] = {
                'scores': _scores(estimates, test_images),
                'noise_norm': summary(np.linalg.norm(noise, axis=1)),
                'residual': summary(found['residual']),
            }
            back_projected = np.clip(np.asarray(op.adjoint(op.params, y)), 0, 1)
            panels.append(
                (f'm{m}', {'A^T y': back_projected, **estimates, 'original': test_images})
            )
        return results, panels

    hole = None
    if cfg.task.startswith('inpaint'):
        masks = _masks(cfg, image_shape, n, rng)
        op, hole = operators.inpaint(masks), 1.0 - masks
    elif cfg.task == 'denoise':
        op = operators.identity()
    else:
        op = operators.downsample(cfg.factor)
    y, _ = operators.measure(op, test_images, cfg.noise_std, rng)
    found = invert(op, y)
    estimates = {'ours': found['image']}
    if hole is not None:
        damaged = y
        estimates['ours_pasted'] = masks * np.clip(y, 0, 1) + hole * found['image']
        estimates['biharmonic'] = baselines.biharmonic_inpaint(np.clip(y, 0, 1), masks)
    elif cfg.task == 'denoise':
        damaged = np.clip(y, 0, 1)
        estimates['tv'] = baselines.tv_denoise(damaged, cfg.tv_weight)
    else:
        damaged = np.clip(np.asarray(op.adjoint(op.params, y)) * cfg.factor**2, 0, 1)
        estimates['box_upsampling'] = damaged
    estimates['nearest_neighbour'] = baselines.nearest_neighbour(op, y, train_images)[0]
    estimates.update(_averaged_estimates(cfg, found, op, y, train_images))
    estimates['zeros'] = baselines.zeros(n, image_shape)
    results = {
        'scores': _scores(estimates, test_images, hole),
        'residual': summary(found['residual']),
    }
    if hole is not None:
        results['missing_fraction_of_pixels'] = float(hole.mean())
    panels.append((cfg.task, {'damaged': damaged, **estimates, 'original': test_images}))
    return results, panels


def protocol(cfg, inversion_config, num_images, test_set):
    """What produced the numbers, for the JSON."""
    out = {
        'task': dataclasses.asdict(cfg),
        'inversion': dataclasses.asdict(inversion_config),
        'inversion_notes': (
            'Adam on z from N(0, I); loss = residual + prior_weight * ||z||^2; the restart with '
            'the lowest residual is kept; a class-conditional G tries class r mod K at restart r.'
        ),
        'num_images': num_images,
        'test_set': test_set,
        'scale': 'images on [0, 1]; MSE per pixel averaged over images; PSNR with peak 1',
    }
    if cfg.task == 'cs':
        out['cs_notes'] = (
            'Bora et al. 2017 (AshishBora/csgm): A with N(0, 1/m) entries and i.i.d. noise of '
            'std noise_norm / sqrt(m) are their N(0, 1) matrix and std-0.1 noise scaled by '
            '1/sqrt(m); their loss, the mean squared residual with their scale, is the summed '
            "squared residual here (residual='sum'); one A per m for all images (theirs: one "
            'per batch of 50).'
        )
    return out


def save_grid(path, panel, num=8):
    """PNG: one row per image (the first ``num``), one column per method, titled."""
    names = list(panel)
    num = min(num, len(panel[names[0]]))
    fig = Figure(figsize=(1.3 * len(names), 1.3 * num))
    axes = fig.subplots(num, len(names))
    axes = np.asarray(axes).reshape(num, len(names))
    for col, name in enumerate(names):
        for row in range(num):
            image = panel[name][row]
            ax = axes[row, col]
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap='gray', vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, col].set_title(name.replace('_', '\n'), fontsize=7)
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=80)


def save_cs_plot(path, results):
    """The per-pixel MSE of every method against m (log scale), with standard errors."""
    ms = sorted(int(m) for m in results)
    methods = list(results[str(ms[0])]['scores'])
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    for method in methods:
        means = [results[str(m)]['scores'][method]['mse']['mean'] for m in ms]
        sems = [results[str(m)]['scores'][method]['mse']['sem'] for m in ms]
        ax.errorbar(ms, means, yerr=sems, marker='o', capsize=2, label=method)
    ax.set_xlabel('measurements m')
    ax.set_ylabel('per-pixel MSE')
    ax.set_yscale('log')
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_outputs(out_dir, results, panels, record):
    """results.json (numbers and protocol), grid_<panel>.png, and for cs cs_mse.png."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'results.json'), 'w') as f:
        json.dump({**record, 'results': results}, f, indent=2)
    for title, panel in panels:
        save_grid(os.path.join(out_dir, f'grid_{title}.png'), panel)
    if record['protocol']['task']['task'] == 'cs':
        save_cs_plot(os.path.join(out_dir, 'cs_mse.png'), results)


def make_inverter(run, inversion_config, mesh):
    return inversion.Inverter(
        run.setup.generator, run.config.model.z_dim, run.setup.num_classes, inversion_config, mesh
    )
