"""The 2-D Gaussian mixtures of the mode-collapse benchmarks (ring of 8, grid of 25).

Defined as in PacGAN (Lin et al. 2018, github.com/fjxmlzn/PacGAN, after VEEGAN):

- ring: 8 modes (cos(2 pi k / 8), sin(2 pi k / 8)) for k = 0..7, so mode 0 is (1, 0) and the
  modes run counter-clockwise on the unit circle; std 0.01
  (synthetic_data_experiments/2DRing_GAN&PacGAN/config.py).
- grid: 25 modes (x, y) for x, y in -4, -2, 0, 2, 4 with x the slower index, so mode 5i + j is
  (-4 + 2i, -4 + 2j); std 0.05 (synthetic_data_experiments/2DGrid_GAN&PacGAN/config.py).
- 100,000 samples drawn as ALI's GaussianMixture does (ali/datasets.py, which PacGAN's
  GaussianPackingMixture calls): from np.random.RandomState(seed), first every sample's mode
  uniformly (`choice` with equal priors), then each sample's 2 standard normals in turn, and
  stored as float32 (PacGAN's floatX). With the same seed (PacGAN's fuel default_seed) the
  points are PacGAN's unpacked data set exactly.

Where this differs: PacGAN then resamples the set with replacement (numpy's global RNG) once per
packed slot to make its training set; here the source is the fixed set itself (drawn from with
replacement at each step with ``data.on_device``, as the PacGAN presets do, or shuffled every
epoch by the pipeline), and packing is left to the model.
"""

import dataclasses
import itertools

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Mixture:
    """Equiprobable isotropic Gaussians: what both the data and the mode metrics need.

    Pass `centers` and `std` to gan_jax.metrics.modes.mixture_mode_stats.
    """

    name: str
    centers: np.ndarray  # float64 (M, 2); row k is mode k.
    std: float

    def __post_init__(self):
        self.centers.setflags(write=False)  # Shared module constants: no caller may move a mode.

    def sample(self, num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """float32 points (N, 2) and int32 mode indices (N,), in PacGAN's draw order."""
        rng = np.random.RandomState(seed)
        num_modes = len(self.centers)
        modes = rng.choice(
            num_modes, size=num_samples, replace=True, p=[1.0 / num_modes] * num_modes
        )
        # One (num_samples, 2) call continues the legacy normal stream exactly as PacGAN's one
        # 2-vector per sample does.
        points = self.centers[modes] + self.std * rng.normal(size=(num_samples, 2))
        return points.astype(np.float32), modes.astype(np.int32)


def _ring() -> Mixture:
    angles = np.arange(8) * np.pi * 2 / 8  # PacGAN's operation order, for identical floats.
    return Mixture('ring', np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.01)


def _grid() -> Mixture:
    centers = np.array(list(itertools.product(range(-4, 5, 2), repeat=2)), np.float64)
    return Mixture('grid', centers, 0.05)


MIXTURES = {mixture.name: mixture for mixture in (_ring(), _grid())}


class MixtureSource:
    """A fixed set of mixture samples with ImageSource's random-access interface.

    `source[i]` is {"image": float32 (2,), "label": int32 mode}. The point keeps the key
    "image" so that the pipeline and the trainer, which only see arrays, need no special case;
    it is float, so the trainer does not rescale it. `image_shape` is (2,); `mixture` holds the
    centres and std the evaluation needs.
    """

    def __init__(self, mixture: Mixture, *, num_samples: int = 100_000, seed: int = 0):
        self.name = mixture.name
        self.image_shape = (2,)
        self.num_classes = len(mixture.centers)
        self.mixture = mixture
        self._points, self._modes = mixture.sample(num_samples, seed)

    def __len__(self) -> int:
        return len(self._points)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {'image': self._points[index], 'label': self._modes[index]}

    def as_arrays(self) -> dict[str, np.ndarray]:
        """All samples as {'image': float32 [N, 2], 'label': int32 [N]} (``data.on_device``)."""
        return {'image': self._points, 'label': self._modes.astype(np.int32)}
