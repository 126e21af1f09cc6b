"""Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

All four estimate the real and fake feature manifolds as unions of balls: around each
sample, a ball out to its k-th nearest neighbour in the same set (the k-NN radius; the
point itself does not count, i.e. index k of its sorted distance row, which starts with
the zero self-distance).

- precision: fraction of fake samples inside some real ball (sample quality);
- recall: fraction of real samples inside some fake ball (diversity);
- density: real balls containing each fake sample, divided by k, averaged over fakes
  (quality that does not saturate at 1; ~1 when the distributions match);
- coverage: fraction of real balls containing at least one fake sample (diversity that,
  unlike recall, is not inflated by outlying fakes).

Boundaries follow the reference code: a point on a ball's surface counts for precision
and recall (`<=`, as StyleGAN2-ADA's implementation) but not for density and coverage
(`<`, as Naeem et al.'s `prdc` package). With continuous features ties have probability 0.

Distances are computed in float64 on the host, `batch_size` rows at a time, so at most
batch_size x N distances exist at once (10k x 10k Inception features fit in a few hundred MB).
"""

from collections.abc import Iterator

import numpy as np


def _row_batches(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _distances(rows: np.ndarray, cols: np.ndarray, cols_sq_norm: np.ndarray) -> np.ndarray:
    """Euclidean distances [len(rows), len(cols)] via |a|^2 + |b|^2 - 2 a.b (clipped at 0)."""
    sq = np.einsum('ij,ij->i', rows, rows)[:, None] + cols_sq_norm[None, :] - 2.0 * rows @ cols.T
    return np.sqrt(np.maximum(sq, 0.0))


def knn_radii(features: np.ndarray, ks: tuple[int, ...], batch_size: int) -> dict[int, np.ndarray]:
    """For each k in `ks`: every row's distance to its k-th nearest other row, [N]."""
    if len(features) <= max(ks):
        raise ValueError(f'need more than k={max(ks)} samples for k-NN radii, have {len(features)}')
    sq_norm = np.einsum('ij,ij->i', features, features)
    radii = {k: np.empty(len(features)) for k in ks}
    for rows in _row_batches(len(features), batch_size):
        # Index k of the sorted row: index 0 is the (numerically ~0) distance to itself.
        nearest = np.partition(_distances(features[rows], features, sq_norm), ks, axis=1)
        for k in ks:
            radii[k][rows] = nearest[:, k]
    return radii


def _as_features(real, fake) -> tuple[np.ndarray, np.ndarray]:
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or real.shape[1:] != fake.shape[1:]:
        raise ValueError(f'expected [n, d] features of equal d, got {real.shape}, {fake.shape}')
    return real, fake


def _scan(real, fake, *, pr_real_radius, dc_real_radius, dc_k, pr_fake_radius, batch_size):
    """One pass over [batch, n_real] blocks of fake-to-real distances for all four metrics.

    Recall is skipped when `pr_fake_radius` is None (it is the only user of the fake
    k-NN radii, whose n_fake^2 distances are the costly part to avoid).
    """
    real_sq_norm = np.einsum('ij,ij->i', real, real)
    in_real_ball = np.zeros(len(fake), bool)
    real_balls_per_fake = np.zeros(len(fake), np.int64)
    in_fake_ball = np.zeros(len(real), bool)
    nearest_fake = np.full(len(real), np.inf)
    for rows in _row_batches(len(fake), batch_size):
        dist = _distances(fake[rows], real, real_sq_norm)
        in_real_ball[rows] = (dist <= pr_real_radius).any(axis=1)
        real_balls_per_fake[rows] = (dist < dc_real_radius).sum(axis=1)
        if pr_fake_radius is not None:
            in_fake_ball |= (dist <= pr_fake_radius[rows, None]).any(axis=0)
        np.minimum(nearest_fake, dist.min(axis=0), out=nearest_fake)
    results = {'precision': float(in_real_ball.mean())}
    if pr_fake_radius is not None:
        results['recall'] = float(in_fake_ball.mean())
    results['density'] = float(real_balls_per_fake.sum() / (dc_k * len(fake)))
    results['coverage'] = float((nearest_fake < dc_real_radius).mean())
    return results


def prdc(real, fake, *, pr_k: int = 3, dc_k: int = 5, batch_size: int = 1024) -> dict[str, float]:
    """Precision and recall with k = pr_k, density and coverage with k = dc_k, in one pass.

    Defaults are each paper's: k = 3 (Kynkäänniemi et al.), k = 5 (Naeem et al.).
    """
    real, fake = _as_features(real, fake)
    real_radii = knn_radii(real, tuple(sorted({pr_k, dc_k})), batch_size)
    return _scan(
        real,
        fake,
        pr_real_radius=real_radii[pr_k],
        dc_real_radius=real_radii[dc_k],
        dc_k=dc_k,
        pr_fake_radius=knn_radii(fake, (pr_k,), batch_size)[pr_k],
        batch_size=batch_size,
    )


def precision_recall(real, fake, *, k: int = 3, batch_size: int = 1024) -> tuple[float, float]:
    """(precision, recall) of Kynkäänniemi et al. (2019) with k-NN balls."""
    result = prdc(real, fake, pr_k=k, dc_k=k, batch_size=batch_size)
    return result['precision'], result['recall']


def density_coverage(real, fake, *, k: int = 5, batch_size: int = 1024) -> tuple[float, float]:
    """(density, coverage) of Naeem et al. (2020); needs only the real k-NN balls."""
    real, fake = _as_features(real, fake)
    radius = knn_radii(real, (k,), batch_size)[k]
    result = _scan(
        real,
        fake,
        pr_real_radius=radius,
        dc_real_radius=radius,
        dc_k=k,
        pr_fake_radius=None,
        batch_size=batch_size,
    )
    return result['density'], result['coverage']
