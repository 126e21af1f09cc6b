"""Compares sharded DCGAN discriminator passes with one full-batch pass.

Run by test_dcgan.py in a fresh process, because the number of (forced) host
devices is fixed when jax is first imported. Prints the differences as JSON.
"""

import json

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax.models.dcgan import DCGANDiscriminator

SHARDS = 4


def max_relative_diff(a, b) -> float:
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


def main():
    assert jax.device_count() == SHARDS, jax.devices()
    mesh = jax.make_mesh((SHARDS,), ('data',))
    # Shift each shard's mean so per-shard statistics differ from global ones.
    shift = jnp.repeat(jnp.arange(SHARDS, dtype=jnp.float32), 2)[:, None, None, None]
    # RBG keys: XLA on CPU compiles their sampling much faster than threefry's.
    key_x, key_init = jax.random.split(jax.random.key(0, impl='rbg'))
    x = jax.random.normal(key_x, (2 * SHARDS, 28, 28, 1)) + shift

    # Parameters do not depend on bn_axis_name, so all variants share them.
    full_batch = DCGANDiscriminator(28, width=8)
    # jit everything: eager op-by-op execution would compile dozens of tiny ops.
    variables = jax.jit(lambda k, x: full_batch.init(k, x, train=False))(key_init, x)
    want_logits, want_stats = jax.jit(
        lambda v, x: full_batch.apply(v, x, train=True, mutable=['batch_stats'])
    )(variables, x)

    def sharded(axis_name, stats_spec, variables, x):
        module = DCGANDiscriminator(28, width=8, bn_axis_name=axis_name)
        apply = lambda v, x: module.apply(v, x, train=True, mutable=['batch_stats'])
        # Per-device statistics differ between shards, so they can only come
        # back stacked along the data axis; cross-replica ones are replicated.
        return jax.jit(
            jax.shard_map(
                apply, mesh=mesh, in_specs=(P(), P('data')), out_specs=(P('data'), stats_spec)
            )
        )(variables, x)

    # The mesh axis is Explicit (make_mesh's default), so shard_map wants its
    # inputs already laid out as in_specs says, as the trainer's would be.
    variables = jax.device_put(variables, NamedSharding(mesh, P()))
    x = jax.device_put(x, NamedSharding(mesh, P('data')))
    cross_logits, cross_stats = sharded('data', P(), variables, x)
    local_logits, _ = sharded(None, P('data'), variables, x)
    stats_diffs = jax.tree.map(max_relative_diff, cross_stats, want_stats)
    print(
        json.dumps(
            {
                'cross_replica_logits': max_relative_diff(cross_logits, want_logits),
                'cross_replica_stats': max(jax.tree.leaves(stats_diffs)),
                'per_device_logits': max_relative_diff(local_logits, want_logits),
            }
        )
    )


if __name__ == '__main__':
    main()
