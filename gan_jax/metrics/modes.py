"""Mode-collapse metrics for the synthetic benchmarks: Gaussian mixtures and Stacked MNIST.

Conventions (checked against the papers and the PacGAN reference code,
github.com/fjxmlzn/PacGAN):

- Mixtures of 2D Gaussians (ring of 8, grid of 25), VEEGAN (Srivastava et al. 2017) and
  PacGAN (Lin et al. 2018): a sample is *high quality* if its nearest mode is less than
  3 standard deviations away; a mode is *captured* if it is the nearest mode of at least
  one high-quality sample (VEEGAN's wording; PacGAN's code counts modes with a nonzero
  count of high-quality samples, the same rule). Later papers sometimes demand more
  samples per mode, hence the `min_count` argument.
- Stacked MNIST (1000 modes: one digit per colour channel), VEEGAN, PacGAN and Unrolled
  GAN (Metz et al. 2017): the mode of a sample is the triple of digits a pretrained
  classifier reads; a mode is covered if at least one sample lands in it.
- Both report KL(p_generated || p_data) over modes, p_data uniform and p_generated the
  normalised histogram of samples over modes (PacGAN's code: sum p log(p / q) with
  q = 1/1000). For the mixtures this is PacGAN's "reverse KL", whose histogram holds
  the high-quality samples only. Empty bins contribute 0 (0 log 0 = 0).
"""

import numpy as np

STACKED_MNIST_MODES = 1000


def kl_to_uniform(counts: np.ndarray) -> float:
    """KL(p || uniform) for the histogram `counts` over len(counts) modes; NaN if it is empty."""
    total = counts.sum()
    if total == 0:
        return float('nan')  # No samples in any mode: the generated distribution is undefined.
    p = counts[counts > 0] / total
    return float(np.sum(p * np.log(p * len(counts))))


def mixture_mode_stats(
    samples, centers, std: float, *, max_std: float = 3.0, min_count: int = 1
) -> dict[str, float]:
    """Mode statistics of `samples` [N, D] for an isotropic mixture with `centers` [M, D].

    Returns modes_covered (modes with >= min_count high-quality samples), the
    high_quality_fraction of all samples, and reverse_kl = KL(p || uniform over the M
    modes), p the histogram of high-quality samples over their nearest modes (NaN when
    no sample is high quality).
    """
    samples, centers = np.asarray(samples, np.float64), np.asarray(centers, np.float64)
    distances = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)
    nearest = distances.argmin(axis=1)
    high_quality = distances[np.arange(len(samples)), nearest] < max_std * std
    counts = np.bincount(nearest[high_quality], minlength=len(centers))
    return {
        'modes_covered': int((counts >= min_count).sum()),
        'high_quality_fraction': float(high_quality.mean()),
        'reverse_kl': kl_to_uniform(counts),
    }


def stacked_mnist_mode_stats(predicted_digits) -> dict[str, float]:
    """modes_covered (of 1000) and kl_to_uniform from per-channel digits [N, 3] in 0..9.

    The mode of a sample is 100 * d0 + 10 * d1 + d2.
    """
    digits = np.asarray(predicted_digits)
    if digits.ndim != 2 or digits.shape[1] != 3 or not np.issubdtype(digits.dtype, np.integer):
        raise ValueError(f'expected integer digits [N, 3], got {digits.dtype} {digits.shape}')
    if digits.min(initial=0) < 0 or digits.max(initial=0) > 9:
        raise ValueError('digits must lie in 0..9')
    counts = np.bincount(digits @ np.array([100, 10, 1]), minlength=STACKED_MNIST_MODES)
    return {'modes_covered': int((counts > 0).sum()), 'kl_to_uniform': kl_to_uniform(counts)}
