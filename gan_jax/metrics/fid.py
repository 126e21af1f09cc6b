"""Fréchet Inception Distance: Gaussian feature statistics and the distance between them.

Everything runs on the host in float64 numpy. The statistics are small (a 2048x2048
covariance for Inception pool features) and FID is a small difference of large traces,
which float32 would leave with only a few significant digits.

The matrix square root is taken through symmetric eigendecompositions only, never a
general `sqrtm`: tr sqrt(C1 C2) equals tr sqrt(S C2 S) with S = sqrt(C1), and S C2 S
is symmetric positive semi-definite, so `eigh`/`eigvalsh` suffice and the result is
real even when the covariances are singular (fewer samples than feature dimensions).
"""

import numpy as np


class MomentAccumulator:
    """Streams feature batches into a running mean and covariance (float64, on the host).

    Batches are merged with Chan et al.'s parallel update: each batch is centred on its
    own mean before its outer products are formed, so large feature offsets never
    cancel catastrophically as they would in sum(x x^T) - n mu mu^T.
    """

    def __init__(self, dim: int):
        self.dim = dim
        self.count = 0
        self._mean = np.zeros(dim, np.float64)
        self._m2 = np.zeros((dim, dim), np.float64)  # Sum of outer products of deviations.

    def update(self, features) -> None:
        """Adds a batch of features [B, dim] (numpy or jax; converted to float64)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f'expected features of shape [B, {self.dim}], got {x.shape}')
        n_batch = x.shape[0]
        if n_batch == 0:
            return
        batch_mean = x.mean(axis=0)
        centred = x - batch_mean
        delta = batch_mean - self._mean
        total = self.count + n_batch
        self._m2 += centred.T @ centred + np.outer(delta, delta) * (self.count * n_batch / total)
        self._mean += delta * (n_batch / total)
        self.count = total

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, covariance) with ddof=1, as np.cov(features, rowvar=False) (pytorch-fid)."""
        if self.count < 2:
            raise ValueError(f'need at least 2 samples for a covariance, have {self.count}')
        return self._mean.copy(), self._m2 / (self.count - 1)


def _drop_roundoff(eigvals: np.ndarray) -> np.ndarray:
    """Zeroes eigenvalues below numpy's matrix_rank tolerance (max * dim * eps).

    Below that level an eigenvalue of a PSD matrix is round-off, not signal, and under a
    square root round-off of 1e-16 becomes 1e-8: summed over the null space of a
    rank-deficient covariance (fewer samples than dimensions) it would bias the trace.
    """
    tol = eigvals.max(initial=0.0) * eigvals.size * np.finfo(np.float64).eps
    return np.where(eigvals > tol, eigvals, 0.0)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric PSD matrix."""
    eigvals, eigvecs = np.linalg.eigh(matrix)
    return (eigvecs * np.sqrt(_drop_roundoff(eigvals))) @ eigvecs.T


def trace_sqrt_product(cov1, cov2) -> float:
    """tr sqrt(C1 C2) for PSD C1, C2, via the symmetric matrix sqrt(C1) C2 sqrt(C1)."""
    s = _psd_sqrt(np.asarray(cov1, np.float64))
    m = s @ np.asarray(cov2, np.float64) @ s
    m = (m + m.T) / 2  # Exact symmetry for eigvalsh; removes round-off asymmetry only.
    return float(np.sqrt(_drop_roundoff(np.linalg.eigvalsh(m))).sum())


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Squared 2-Wasserstein distance between N(mu1, cov1) and N(mu2, cov2):

    ||mu1 - mu2||^2 + tr(C1) + tr(C2) - 2 tr sqrt(C1 C2)   (Heusel et al. 2017).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != mu1.shape * 2:
        raise ValueError(f'shape mismatch: {mu1.shape}, {cov1.shape}, {mu2.shape}, {cov2.shape}')
    diff = mu1 - mu2
    return float(
        diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt_product(cov1, cov2)
    )


class ClassMomentAccumulator:
    """A MomentAccumulator per class of ``classes`` (a range): streams (features [B, dim],
    labels [B]) batches; rows of other classes are left out."""

    def __init__(self, dim: int, classes: range):
        self.first = classes.start
        self.classes = [MomentAccumulator(dim) for _ in classes]

    def update(self, features, labels) -> None:
        x, labels = np.asarray(features, np.float64), np.asarray(labels)
        for c in np.unique(labels):
            if 0 <= c - self.first < len(self.classes):
                self.classes[c - self.first].update(x[labels == c])

    def counts(self) -> np.ndarray:
        return np.array([a.count for a in self.classes])

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(means [C, dim], covariances [C, dim, dim]); every class needs 2 samples."""
        few = [self.first + c for c, a in enumerate(self.classes) if a.count < 2]
        if few:
            raise ValueError(f'classes {few} have fewer than 2 samples; a covariance needs 2')
        means, covs = zip(*(a.result() for a in self.classes), strict=True)
        return np.stack(means), np.stack(covs)


def intra_frechet_distances(means1, covs1, means2, covs2) -> np.ndarray:
    """Intra-class FID's terms (Miyato & Koyama 2018): the Fréchet distance of each class,
    [C] from per-class means [C, dim] and covariances [C, dim, dim]; intra-FID is their mean."""
    return np.array(
        [frechet_distance(*stats) for stats in zip(means1, covs1, means2, covs2, strict=True)]
    )
