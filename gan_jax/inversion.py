"""GAN inversion: the latent (and class) whose image best explains a measurement.

For each measured image, ``restarts`` latents start from N(0, I) and follow Adam on

    loss(z) = residual(A(G(z)), y) + prior_weight * ||z||^2,

``residual`` being the sum (or mean) of squared differences over the measurement's entries; the
restart with the lowest residual is kept. A class-conditional generator gets a class per
restart (restart r tries class r mod K), so the class is searched with the restarts. Optionally
G's weights are then fine-tuned per image together with its latent (Deep Generative Prior, Pan
et al. 2020) with their own learning rate. G runs in inference mode (BatchNorm statistics
frozen), so every image and restart is independent: the program is jitted once and shard_mapped
over the images ('data' axis), and gives the same result on any number of devices. Images are
G's output mapped from [-1, 1] to [0, 1], the operators' scale.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec as P

from gan_jax import parallel

AXIS = parallel.DATA_AXIS
RESIDUALS = ('sum', 'mean')


@dataclasses.dataclass(frozen=True)
class InversionConfig:
    steps: int = 1000
    restarts: int = 10
    learning_rate: float = 0.01  # Adam on z.
    prior_weight: float = 0.1  # Of ||z||^2.
    residual: str = 'sum'  # 'sum' or 'mean' of squared residuals over the measurement.
    fine_tune_steps: int = 0  # Deep Generative Prior: Adam steps on G's weights and z, per image.
    fine_tune_lr: float = 1e-4  # Adam on G's weights while fine-tuning (z keeps learning_rate).
    seed: int = 0

    def __post_init__(self):
        if self.residual not in RESIDUALS:
            raise ValueError(f'residual={self.residual!r}: choose from {RESIDUALS}.')
        for name in ('steps', 'restarts'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name}={getattr(self, name)}: expected >= 1.')
        if self.fine_tune_steps < 0:
            raise ValueError(f'fine_tune_steps={self.fine_tune_steps}: expected >= 0.')


def to_unit(images):
    """G's [-1, 1] -> [0, 1]."""
    return (images + 1.0) / 2.0


def initial_latents(key, global_indices, restarts, z_dim):
    """[n, restarts, z_dim] standard normals keyed by each image's global index and restart."""

    def one(i):
        image_key = jax.random.fold_in(key, i)
        return jax.vmap(lambda r: jax.random.normal(jax.random.fold_in(image_key, r), (z_dim,)))(
            jnp.arange(restarts)
        )

    return jax.vmap(one)(global_indices)


def mean_of_best_restarts(found, k):
    """[N, H, W, C]: per image, the mean of the images of its k restarts with the lowest residual.

    With k = 1 the kept restart's image before fine-tuning. Averaging restarts that explain the
    measurement about equally well estimates the posterior mean, which has the lowest expected
    squared error where the measurement admits several images (a hidden digit centre).
    """
    images, residuals = found['restart_images'], found['restart_residuals']
    if not 1 <= k <= residuals.shape[1]:
        raise ValueError(f'k={k}: expected 1 <= k <= {residuals.shape[1]} (the restarts).')
    best = np.argsort(residuals, axis=1, kind='stable')[:, :k]
    index = best.reshape(*best.shape, *([1] * (images.ndim - 2)))
    return np.take_along_axis(images, index, axis=1).mean(axis=1)


class Inverter:
    """``invert(g_variables, op, y)``: the best latents, classes and images for measurements y.

    ``generator`` is the run's Flax generator; ``num_classes`` None when unconditional.
    """

    def __init__(self, generator, z_dim, num_classes, config, mesh):
        self.generator, self.z_dim, self.num_classes = generator, z_dim, num_classes
        self.config, self.mesh = config, mesh
        self._compiled = {}

    def _labels(self, n):
        """[n, restarts] class of each restart, or None."""
        if self.num_classes is None:
            return None
        return jnp.broadcast_to(
            jnp.arange(self.config.restarts) % self.num_classes, (n, self.config.restarts)
        )

    def _residual(self, y_hat, y):
        axes = tuple(range(1, y.ndim))
        squared = (y_hat - y) ** 2
        return squared.sum(axes) if self.config.residual == 'sum' else squared.mean(axes)

    def _program(self, op):
        """The per-device program: (g_variables, op_params, y, start) -> results."""
        cfg, generator = self.config, self.generator

        def render(variables, z, labels):
            return to_unit(generator.apply(variables, z, labels, train=False))

        def search(g_variables, op_params, y, start):
            n = y.shape[0]
            indices = start + jax.lax.axis_index(AXIS) * n + jnp.arange(n)
            z0 = initial_latents(jax.random.PRNGKey(cfg.seed), indices, cfg.restarts, self.z_dim)
            labels = self._labels(n)
            flat_labels = None if labels is None else labels.reshape(-1)

            def losses(z):
                x = render(g_variables, z.reshape(-1, self.z_dim), flat_labels)
                x = x.reshape(n, cfg.restarts, *x.shape[1:])
                y_hat = jax.vmap(lambda xr: op.forward(op_params, xr), in_axes=1, out_axes=1)(x)
                residual = jax.vmap(self._residual, in_axes=(1, None), out_axes=1)(y_hat, y)
                return residual + cfg.prior_weight * (z**2).sum(-1), (residual, x)

            tx = optax.adam(cfg.learning_rate)

            def step(carry, _):
                z, opt_state = carry
                # Images and restarts are independent: the gradient of the sum is each one's.
                grad = jax.grad(lambda z: losses(z)[0].sum())(z)
                updates, opt_state = tx.update(grad, opt_state, z)
                return (optax.apply_updates(z, updates), opt_state), None

            (z, _), _ = jax.lax.scan(step, (z0, tx.init(z0)), None, length=cfg.steps)
            total, (residual, x) = losses(z)
            best = jnp.argmin(residual, axis=1)

            def pick(a):
                index = best.reshape(n, 1, *([1] * (a.ndim - 2)))
                return jnp.take_along_axis(a, index, axis=1)[:, 0]

            out = {
                'z': pick(z),
                'image': pick(x),
                'residual': pick(residual),
                'loss': pick(total),
                'restart_residuals': residual,
                'restart_images': x,
            }
            out['label'] = (
                jnp.full((n,), -1, jnp.int32) if labels is None else pick(labels).astype(jnp.int32)
            )
            if cfg.fine_tune_steps:
                out.update(fine_tune(g_variables, op_params, y, out['z'], labels is not None, out))
            return out

        def fine_tune(g_variables, op_params, y, z, conditional, found):
            """Per image: Adam on (G's params, z) from the best restart (Deep Generative Prior)."""
            params, rest = g_variables['params'], dict(g_variables)
            tx = optax.multi_transform(
                {'g': optax.adam(cfg.fine_tune_lr), 'z': optax.adam(cfg.learning_rate)},
                {'g': 'g', 'z': 'z'},
            )

            def one(z, label, y, op_params):
                label = label[None] if conditional else None

                def loss(p):
                    x = render({**rest, 'params': p['g']}, p['z'][None], label)
                    r = self._residual(op.forward(op_params, x), y[None])[0]
                    return r + cfg.prior_weight * (p['z'] ** 2).sum(), (r, x[0])

                def step(carry, _):
                    p, opt_state = carry
                    grad = jax.grad(lambda p: loss(p)[0])(p)
                    updates, opt_state = tx.update(grad, opt_state, p)
                    return (optax.apply_updates(p, updates), opt_state), None

                p0 = {'g': params, 'z': z}
                (p, _), _ = jax.lax.scan(step, (p0, tx.init(p0)), None, length=cfg.fine_tune_steps)
                total, (r, x) = loss(p)
                return {'z': p['z'], 'image': x, 'residual': r, 'loss': total}

            op_axis = 0 if op.per_example else None
            return jax.vmap(one, in_axes=(0, 0, 0, op_axis))(z, found['label'], y, op_params)

        return search

    def invert(self, g_variables, op, y, start=0):
        """Dict of numpy arrays over the N images: z, label (-1 unconditional), image [0, 1],
        residual and loss of the kept restart (after fine-tuning, when on), restart_residuals
        [N, restarts] and restart_images [N, restarts, H, W, C] (before it).

        Image i's initial latents are keyed by start + i, so calls on consecutive chunks of a
        set give what one call on the whole set would. N is padded to a multiple of the device
        count (copies of the last image) and cut back.
        """
        y = np.asarray(y, np.float32)
        n, devices = len(y), self.mesh.size
        pad = -n % devices
        op_params = op.params
        if pad:
            y = np.concatenate([y, np.repeat(y[-1:], pad, axis=0)])
            if op.per_example:
                op_params = jax.tree.map(
                    lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)]), op_params
                )
        key = (op.name, op.per_example, y.shape)
        if key not in self._compiled:
            op_spec = P(AXIS) if op.per_example else P()
            self._compiled[key] = parallel.jit_sharded(
                self._program(op),
                self.mesh,
                in_specs=(P(), op_spec, P(AXIS), P()),
                out_specs=P(AXIS),
            )
        out = self._compiled[key](g_variables, op_params, y, jnp.int32(start))
        return {k: np.asarray(v)[:n] for k, v in out.items()}
