import itertools

import numpy as np
import pytest

from gan_jax.data import make_train_iterator


def _steps(source, count, **kwargs):
    """The first `count` elements of a fresh iterator (defaults: global batch 6, 2 per step)."""
    options = dict(global_batch=6, batches_per_step=2, seed=0, num_threads=2) | kwargs
    return list(itertools.islice(make_train_iterator(source, **options), count))


def _labels(steps):
    return np.stack([step['label'] for step in steps])


def test_element_shapes(indexed_source):
    step = _steps(indexed_source, 1, process_index=1, process_count=2)[0]
    assert step['image'].shape == (2, 3, 2, 2, 1) and step['image'].dtype == np.uint8
    assert step['label'].shape == (2, 3) and step['label'].dtype == np.int32


@pytest.mark.parametrize('process_count', [2, 3])
def test_processes_together_see_the_single_process_stream(indexed_source, process_count):
    single = _steps(indexed_source, 5)
    shares = [
        _steps(indexed_source, 5, process_index=p, process_count=process_count)
        for p in range(process_count)
    ]
    for key in ('image', 'label'):
        joined = np.concatenate([np.stack([s[key] for s in share]) for share in shares], axis=2)
        np.testing.assert_array_equal(joined, np.stack([s[key] for s in single]))


def test_every_epoch_is_a_new_permutation(indexed_source):
    stream = _labels(_steps(indexed_source, 12)).reshape(-1, 12)  # 12 steps x 12 = 12 epochs.
    for epoch in stream:
        assert sorted(epoch) == list(range(12))
    assert len({tuple(epoch) for epoch in stream}) == 12
    assert list(stream[0]) != list(range(12))


def test_without_reshuffling_every_epoch_is_the_first_epochs_permutation(indexed_source):
    stream = _labels(_steps(indexed_source, 6, reshuffle_each_epoch=False)).reshape(-1, 12)
    reshuffled = _labels(_steps(indexed_source, 1)).reshape(12)
    assert sorted(stream[0]) == list(range(12)) and list(stream[0]) != list(range(12))
    for epoch in stream:  # 6 epochs, each the seeded first epoch of the reshuffled stream.
        np.testing.assert_array_equal(epoch, reshuffled)
    # From step 4 (epoch 4), as a resumed run.
    resumed = _steps(indexed_source, 1, start_step=4, reshuffle_each_epoch=False)
    np.testing.assert_array_equal(_labels(resumed).reshape(12), reshuffled)


def test_seed_changes_the_order(indexed_source):
    assert not np.array_equal(
        _labels(_steps(indexed_source, 2, seed=0)), _labels(_steps(indexed_source, 2, seed=1))
    )
    np.testing.assert_array_equal(
        _labels(_steps(indexed_source, 2, seed=5)), _labels(_steps(indexed_source, 2, seed=5))
    )


def test_start_step_skips_steps_and_counts_them_in_the_state(indexed_source):
    iterator = make_train_iterator(
        indexed_source,
        global_batch=6,
        batches_per_step=2,
        seed=0,
        start_step=3,
        process_index=1,
        process_count=2,
    )
    reference = _steps(indexed_source, 7, process_index=1, process_count=2)
    assert iterator.get_state() == {'next_index': 3}
    np.testing.assert_array_equal(_labels(itertools.islice(iterator, 4)), _labels(reference[3:]))


def test_state_round_trip_resumes_identically(indexed_source):
    options = dict(global_batch=6, batches_per_step=2, seed=0, num_threads=2)
    iterator = make_train_iterator(indexed_source, **options)
    next(iterator), next(iterator)
    state = iterator.get_state()
    expected = _labels(itertools.islice(iterator, 3))
    resumed = make_train_iterator(indexed_source, **options, start_step=1)
    resumed.set_state(state)
    np.testing.assert_array_equal(_labels(itertools.islice(resumed, 3)), expected)


def test_global_batch_must_divide_over_processes(indexed_source):
    with pytest.raises(ValueError, match='global_batch=6 .* process_count=4'):
        make_train_iterator(
            indexed_source, global_batch=6, batches_per_step=1, seed=0, process_count=4
        )


@pytest.mark.parametrize('process_count, local_devices', [(1, 4), (2, 2), (4, 1)])
def test_micro_batches_are_the_same_stream_positions_on_any_layout(
    indexed_source, process_count, local_devices
):
    # grad_accum=2 over 4 devices: device d holds, for micro-batch j, positions
    # j*8/2 + d*m ... of the plain single-process stream (m = 8 / (2*4)), in micro order.
    k, batch, devices = 2, 8, 4
    m = batch // (k * devices)
    single = _labels(_steps(indexed_source, 3, global_batch=batch))
    for p in range(process_count):
        share = _labels(
            _steps(
                indexed_source,
                3,
                global_batch=batch,
                process_index=p,
                process_count=process_count,
                grad_accum=k,
                local_devices=local_devices,
            )
        )
        for local in range(local_devices):
            d = p * local_devices + local
            rows = share[:, :, local * k * m : (local + 1) * k * m].reshape(*share.shape[:2], k, m)
            for j in range(k):
                start = j * batch // k + d * m
                np.testing.assert_array_equal(rows[:, :, j], single[:, :, start : start + m])


def test_global_batch_must_divide_into_micro_batches_over_devices(indexed_source):
    with pytest.raises(ValueError, match='global_batch=6 .* grad_accum=2 .* 2 devices'):
        make_train_iterator(
            indexed_source,
            global_batch=6,
            batches_per_step=1,
            seed=0,
            grad_accum=2,
            local_devices=2,
        )
