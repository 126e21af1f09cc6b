"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with a cubic kernel.

Unlike FID, the estimator is unbiased, so values from different sample sizes are
comparable. As in torch-fidelity and StyleGAN2-ADA, it is averaged over random subsets
(each drawing `subset_size` rows of each set without replacement), which bounds the cost
at O(num_subsets * subset_size^2 * d) instead of O(n^2 d). Computed in float64 on the host.
"""

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3, the KID kernel, for all row pairs: [n, d] x [m, d] -> [n, m]."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 (Gretton et al. 2012, eq. 3): within-set means skip the i == j terms."""
    n, m = len(x), len(y)
    kxx, kyy = polynomial_kernel(x, x), polynomial_kernel(y, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within_x + within_y - 2.0 * polynomial_kernel(x, y).mean())


def kernel_inception_distance(
    real, fake, *, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over `num_subsets` random subsets.

    Defaults follow torch-fidelity (100 subsets of 1000); the subset size is capped at the
    smaller set, as StyleGAN2-ADA does. The std is the population std (ddof=0) across
    subsets, as torch-fidelity reports it: a spread of the subset estimates, not a
    standard error of the mean.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or real.shape[1:] != fake.shape[1:]:
        raise ValueError(f'expected [n, d] features of equal d, got {real.shape}, {fake.shape}')
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise ValueError(f'need at least 2 samples per set, have {len(real)}, {len(fake)}')
    rng = np.random.default_rng(seed)
    mmds = np.array(
        [
            mmd2_unbiased(
                real[rng.choice(len(real), size, replace=False)],
                fake[rng.choice(len(fake), size, replace=False)],
            )
            for _ in range(num_subsets)
        ]
    )
    return float(mmds.mean()), float(mmds.std())
