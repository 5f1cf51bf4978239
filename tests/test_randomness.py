"""The RNG contract (`hfgen.randomness`): a sample's random numbers depend on (seed, its stream index, purpose) only,
no family draws from torch's global RNG, and so the weights do not depend on how the global batch is split.

The multi-process side - a checkpoint of N processes resumed on M - is `test_elastic.py`.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from helpers import assert_same_training

from hfgen.families import families, get_family
from hfgen.objective import PreparedModules
from hfgen.randomness import SampleRandomness
from hfgen.training.batches import ShardedEpochBatches
from hfgen.training.launch import parse_run, train
from hfgen.training.trainer import train_loader
from hfgen.zoo.run import ZooArguments, training_runs

STEPS = 4
SPLITS = ((16, 1), (8, 2), (4, 4))
"""(per-process batch, accumulation steps) of the same global batch of 16."""
BATCH_NORM_FREE = {"gan": ("--generator_norm", "layer")}
"""The flags that make a family's default model free of BatchNorm, whose statistics are a micro-batch's own."""


def family_names() -> list[str]:
    return [family.name for family in families()]


def tiny_runs(family: str, folder: Path) -> tuple[list[tuple[str, list[str]]], tuple[str, list[str]]]:
    *first, own = training_runs(ZooArguments(budget="tiny", max_steps=STEPS), family, folder / "model")
    return first, own


def test_a_samples_numbers_depend_on_seed_index_and_purpose_only():
    whole = SampleRandomness(0, range(8, 16), step=3)
    halves = [SampleRandomness(0, range(8, 12), step=0), SampleRandomness(0, range(12, 16), step=9)]
    for draw in (lambda r: r.normal("noise", (3, 2)), lambda r: r.uniform("drop"), lambda r: r.integers("t", 1000, (2,))):
        assert torch.equal(draw(whole), torch.cat([draw(half) for half in halves]))
    assert not torch.equal(whole.normal("noise", (4,)), whole.normal("other", (4,)))
    assert not torch.equal(whole.normal("noise", (4,)), SampleRandomness(1, range(8, 16), step=3).normal("noise", (4,)))
    noise = SampleRandomness(0, range(4096), step=0).normal("noise")
    assert abs(noise.mean()) < 0.05 and abs(noise.std() - 1) < 0.05  # nearby indices: unrelated, standard normal


@pytest.mark.parametrize(("processes", "accumulation"), [(1, 4), (2, 2), (4, 1)])
def test_every_split_of_a_global_batch_reads_the_same_samples(processes, accumulation):
    """50 examples, a global batch of 8: 6 steps an epoch, the last 2 examples dropped; crossing epochs."""
    expected = list(itertools.islice(ShardedEpochBatches(50, 8, seed=3).positioned(), 14))
    batch = 8 // processes // accumulation
    streams = [ShardedEpochBatches(50, batch, processes, rank, 3, 0, accumulation).positioned() for rank in range(processes)]
    for step in range(14):
        rows: list[tuple[int, int]] = []
        for _ in range(accumulation):
            for stream in streams:  # micro-step a, process p: samples (a * P + p) * batch ... of the step
                indices, first = next(stream)
                rows += [(first + k, index) for k, index in enumerate(indices)]
        assert rows == [(expected[step][1] + k, index) for k, index in enumerate(expected[step][0])]
    resumed = ShardedEpochBatches(50, 4, 2, 1, 3, start=5 * 1 * 1, accumulation_steps=1)  # step 5 on 2 x 4 x 1
    assert next(resumed.positioned()) == (expected[5][0][4:], expected[5][1] + 4)


@pytest.mark.parametrize("family", family_names())
def test_no_family_draws_from_the_global_rng(family, tmp_path):
    """The detector for a family that breaks the contract: any `compute_loss` of every phase on a real batch leaves
    torch's global RNG where it was (dropout is off in every default)."""
    first, (name, argv) = tiny_runs(family, tmp_path)
    for prerequisite, prerequisite_argv in first:
        train(prerequisite, prerequisite_argv)
    training, data, model = parse_run(name, argv)
    objective = get_family(name).objective(model, data)
    torch.manual_seed(0)
    modules = PreparedModules(objective.build_modules(), unwrap=lambda module: module)
    start, _, batch = next(iter(train_loader(objective.train_dataset(), training)))
    for phase in objective.optimizers():
        before = torch.get_rng_state()
        objective.compute_loss(phase, batch, modules, SampleRandomness(0, range(start, start + training.train_batch_size), step=0))
        assert torch.equal(torch.get_rng_state(), before), (
            f"{family}'s compute_loss ({phase}) drew from torch's global RNG: draw from its `randomness` argument"
        )


@pytest.mark.parametrize("family", family_names())
def test_the_weights_do_not_depend_on_how_the_global_batch_is_split(family, tmp_path):
    first, (name, argv) = tiny_runs(family, tmp_path)
    for prerequisite, prerequisite_argv in first:
        train(prerequisite, prerequisite_argv)
    for batch, accumulation in SPLITS:
        train(name, [*argv, *BATCH_NORM_FREE.get(family, ()), "--output_dir", str(tmp_path / f"{batch}x{accumulation}"),
                     "--train_batch_size", str(batch), "--gradient_accumulation_steps", str(accumulation), "--logging_steps", "1",
                     "--log_sample_ids"])
    for batch, accumulation in SPLITS[1:]:
        assert_same_training(tmp_path / f"{batch}x{accumulation}", tmp_path / "{}x{}".format(*SPLITS[0]))
