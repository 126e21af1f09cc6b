import itertools
import json
import os
import pathlib
import subprocess
import sys

import grain
import jax
import numpy as np
from etils import epath
from jax.sharding import NamedSharding, PartitionSpec

from gan_jax.data import device_prefetch, make_train_iterator

REPO = pathlib.Path(__file__).resolve().parents[2]


def _pipeline(source):
    return make_train_iterator(source, global_batch=4, batches_per_step=2, seed=0, num_threads=2)


def _one_device_sharding():
    return NamedSharding(jax.make_mesh((1,), ('data',)), PartitionSpec(None, 'data'))


def test_batches_become_sharded_arrays_in_order(indexed_source):
    expected = list(itertools.islice(_pipeline(indexed_source), 3))
    prefetcher = device_prefetch(_pipeline(indexed_source), _one_device_sharding(), size=2)
    for want in expected:
        got = next(prefetcher)
        assert isinstance(got['image'], jax.Array)
        assert got['image'].sharding.spec == PartitionSpec(None, 'data')
        assert got['image'].dtype == np.uint8 and got['label'].dtype == np.int32
        np.testing.assert_array_equal(np.asarray(got['label']), want['label'])


def test_state_is_that_of_the_last_batch_handed_out(indexed_source):
    pipeline = _pipeline(indexed_source)
    prefetcher = device_prefetch(pipeline, _one_device_sharding(), size=2)
    assert prefetcher.get_state() == {'next_index': 0}
    next(prefetcher), next(prefetcher)
    assert prefetcher.get_state() == {'next_index': 2}
    assert pipeline.get_state() == {'next_index': 4}  # Two more are waiting on the device.


def test_set_state_drops_waiting_batches(indexed_source):
    expected = _pipeline(indexed_source)
    expected = [next(expected)['label'] for _ in range(3)]
    prefetcher = device_prefetch(_pipeline(indexed_source), _one_device_sharding())
    state = (next(prefetcher), prefetcher.get_state())[1]
    next(prefetcher), next(prefetcher)
    prefetcher.set_state(state)
    np.testing.assert_array_equal(np.asarray(next(prefetcher)['label']), expected[1])


def test_grain_checkpoint_handler_saves_the_trained_position(indexed_source, tmp_path):
    prefetcher = device_prefetch(_pipeline(indexed_source), _one_device_sharding())
    next(prefetcher)
    handler = grain.checkpoint.CheckpointHandler()
    handler.save(epath.Path(tmp_path), args=grain.checkpoint.CheckpointSave(prefetcher))
    expected = np.asarray(next(prefetcher)['label'])
    restored = device_prefetch(_pipeline(indexed_source), _one_device_sharding())
    handler.restore(epath.Path(tmp_path), args=grain.checkpoint.CheckpointRestore(restored))
    np.testing.assert_array_equal(np.asarray(next(restored)['label']), expected)


_FOUR_DEVICES = """
import json, jax, numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from gan_jax.data import device_prefetch, make_train_iterator
from gan_jax.data.source import ArraySource
source = ArraySource(np.zeros((20, 3, 3, 1), np.uint8), np.arange(20), name="t", resolution=3,
                     channels=1, num_classes=None)
mesh = jax.make_mesh((4,), ("data",))
batches = device_prefetch(
    make_train_iterator(source, global_batch=8, batches_per_step=2, seed=0, num_threads=1),
    NamedSharding(mesh, PartitionSpec(None, "data")))
batch = next(batches)
print(json.dumps({"shape": batch["image"].shape, "devices": len(batch["image"].sharding.device_set),
                  "shards": sorted(s.data.shape for s in batch["label"].addressable_shards)}))
"""


def test_four_host_devices_split_the_batch_axis():
    env = dict(
        os.environ,
        XLA_FLAGS='--xla_force_host_platform_device_count=4',
        JAX_PLATFORMS='cpu',
        PYTHONPATH=str(REPO),
    )
    run = subprocess.run(
        [sys.executable, '-c', _FOUR_DEVICES],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result == {'shape': [2, 8, 3, 3, 1], 'devices': 4, 'shards': [[2, 2]] * 4}
