"""The best checkpoint: compared under one metric and protocol only, never NaN."""

import json
import math

import jax.numpy as jnp

from gan_jax import checkpoint

STATE = {'w': jnp.arange(3.0)}
PROTOCOL_A = {'num_generated': 64, 'seed': 0}
PROTOCOL_B = {'num_generated': 128, 'seed': 0}


def _best(workdir, protocol, key, metric='FID'):
    return checkpoint.BestCheckpoint(str(workdir), metric, False, protocol, key)


def _close(best):
    best.checkpointer.wait()
    best.checkpointer.close()


def _record(path):
    return json.loads(path.read_text())


def test_a_nan_value_is_never_the_best(tmp_path):
    best = _best(tmp_path, PROTOCOL_A, 'a')
    assert not best.update(1, STATE, {'FID': math.nan})
    assert not (tmp_path / 'best.json').exists()
    assert best.update(2, STATE, {'FID': 40.0})
    assert not best.update(3, STATE, {'FID': math.nan})
    assert best.update(4, STATE, {'FID': 30.0})
    _close(best)
    record = _record(tmp_path / 'best.json')
    assert (record['value'], record['step'], record['protocol']) == (30.0, 4, PROTOCOL_A)


def test_best_is_compared_only_under_the_same_protocol(tmp_path):
    best = _best(tmp_path, PROTOCOL_A, 'a')
    assert best.update(1, STATE, {'FID': 10.0})
    _close(best)
    # Resumed with the same protocol: the record holds, a worse value is not the best.
    best = _best(tmp_path, PROTOCOL_A, 'a')
    assert best.value == 10.0 and not best.update(2, STATE, {'FID': 20.0})
    _close(best)
    # Resumed with eval.* changed: 20 is the first value under this protocol, so the best;
    # the record and checkpoint of the other protocol are set aside, not deleted.
    best = _best(tmp_path, PROTOCOL_B, 'b')
    assert best.value is None and best.update(3, STATE, {'FID': 20.0})
    _close(best)
    record = _record(tmp_path / 'best.json')
    assert (record['value'], record['step'], record['protocol_key']) == (20.0, 3, 'b')
    assert _record(tmp_path / 'best-FID-a.json')['value'] == 10.0
    assert [p.name for p in (tmp_path / 'checkpoints_best-FID-a').iterdir()] == ['1']
    assert [p.name for p in (tmp_path / 'checkpoints_best').iterdir()] == ['3']
    # Another metric is another record, too.
    best = _best(tmp_path, PROTOCOL_B, 'b', metric='KID')
    assert best.value is None
    _close(best)
    assert _record(tmp_path / 'best-FID-b.json')['step'] == 3
