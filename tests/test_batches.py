"""The batch stream is a pure function of (seed, micro-step): resume continues it exactly."""

import itertools

import pytest

from hfgen.training.batches import ShardedEpochBatches


def take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_resume_continues_the_same_stream():
    full = take(ShardedEpochBatches(50, 8, seed=3), 20)  # crosses epochs (6 batches per epoch)
    assert take(ShardedEpochBatches(50, 8, seed=3, start=13), 7) == full[13:]


def test_epochs_reshuffle_and_seeds_differ():
    stream = take(ShardedEpochBatches(48, 8, seed=0), 12)
    assert stream[:6] != stream[6:]
    assert sorted(sum(stream[:6], [])) == list(range(48))  # one epoch covers every example once
    assert take(ShardedEpochBatches(48, 8, seed=1), 6) != stream[:6]


def test_processes_get_disjoint_slices_of_one_global_order():
    ranks = [take(ShardedEpochBatches(40, 5, num_processes=2, process_index=r, seed=0), 4) for r in (0, 1)]
    single = take(ShardedEpochBatches(40, 10, seed=0), 4)
    assert [a + b for a, b in zip(*ranks)] == single


def test_dataset_smaller_than_a_global_batch():
    with pytest.raises(ValueError, match="lower --train_batch_size"):
        ShardedEpochBatches(10, 8, num_processes=2)
