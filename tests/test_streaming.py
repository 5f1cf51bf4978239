"""`--streaming`: train from parquet shards (a folder, or a Hub dataset repo as `push_to_hub` writes it) read one shard
at a time, in an order that is a function of (seed, epoch, global sample index) - so it resumes exactly and on any
number of processes."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import kill_mid_run_and_resume, logged_sample_ids, safetensors_weights

from hfgen.cli import main
from hfgen.data import load_image_dataset
from hfgen.data.shards import StreamedImages
from hfgen.training.batches import ShardedEpochBatches

SHARDS = 4
TINY_DIFFUSION = ("--block_out_channels", "16", "16", "32", "--train_batch_size", "16", "--num_grid_images", "4",
                  "--grid_inference_steps", "2", "--sample_steps", "1000", "--lr_warmup_steps", "0")


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """digits' training split as 4 parquet shards in push_to_hub's layout (data/train-0000i-of-00004.parquet)."""
    folder = tmp_path_factory.mktemp("digits-shards")
    train = load_image_dataset("digits", "train")
    for index in range(SHARDS):
        train.shard(SHARDS, index, contiguous=True).to_parquet(str(folder / "data" / f"train-{index:05d}-of-{SHARDS:05d}.parquet"))
    return folder


def test_streamed_rows_are_the_datasets_rows_with_a_few_shards_in_memory(shards):
    whole, streamed = load_image_dataset("digits", "train"), StreamedImages(str(shards), max_shards=2)
    assert len(streamed) == len(whole) and len(streamed.shard_sizes) == SHARDS and streamed.features == whole.features
    picks = [0, len(whole) - 1, 700, 3, 1200, 380]  # across every shard, out of order
    rows, expected = streamed[picks], whole[picks]
    assert rows["label"] == expected["label"]
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(rows["image"], expected["image"]))
    assert len(streamed._loaded) <= 2  # the least recently used shards were dropped


def take(stream, n):
    return list(itertools.islice(stream, n))


def test_the_shardwise_order_covers_every_sample_once_an_epoch_reads_a_shard_at_a_time_and_resumes():
    sizes = [30, 30, 30, 13]  # 103 rows, global batch 8: 12 steps an epoch, 7 rows dropped
    stream = take(ShardedEpochBatches(103, 8, seed=5, shard_sizes=sizes).positioned(), 30)  # crosses two epochs
    first_epoch = [index for indices, _ in stream[:12] for index in indices]
    assert len(set(first_epoch)) == 96 and max(first_epoch) < 103
    starts = np.cumsum([0, *sizes])
    shards_read = [len(set(np.searchsorted(starts, indices, side="right") - 1)) for indices, _ in stream]
    assert max(shards_read) <= 2 and sum(n == 1 for n in shards_read) >= 20  # one shard a batch, two at a boundary
    assert [i for i, _ in stream[:12]] != [i for i, _ in stream[12:24]]  # epochs reshuffle
    resumed = take(ShardedEpochBatches(103, 8, seed=5, start=17, shard_sizes=sizes).positioned(), 13)
    assert resumed == stream[17:]  # an exact resume, mid-epoch and across the next epoch boundary
    assert take(ShardedEpochBatches(103, 8, seed=5, start=23, shard_sizes=sizes).positioned(), 7) == stream[23:]  # resumed again
    ranks = [ShardedEpochBatches(103, 4, 2, rank, 5, shard_sizes=sizes).positioned() for rank in (0, 1)]
    assert [a + b for (a, _), (b, _) in zip(take(ranks[0], 30), take(ranks[1], 30))] == [i for i, _ in stream]  # elastic


def test_a_streamed_run_killed_mid_way_resumes_to_the_same_samples_and_weights(shards, tmp_path):
    command = lambda out, *extra: [
        sys.executable, "-m", "hfgen", "train", "diffusion", "--dataset", str(shards), "--streaming", "--output_dir", str(out),
        *TINY_DIFFUSION, "--train_batch_size", "32", "--max_steps", "60", "--checkpointing_steps", "20", "--log_sample_ids",
        *extra,
    ]  # 60 steps of 32, epochs of 46 steps: the resumed run crosses an epoch boundary
    reference, interrupted = kill_mid_run_and_resume(command, tmp_path)
    expected, consumed = logged_sample_ids(reference), logged_sample_ids(interrupted)  # the resumed run re-logs the steps it redid
    assert sorted(expected) == sorted(consumed) == list(range(1, 61)) and consumed == expected
    first_epoch = [index for step in range(1, 47) for index in expected[step]]
    assert len(first_epoch) == len(set(first_epoch)) == 46 * 32  # no sample of an epoch twice
    expected, resumed = safetensors_weights(reference), safetensors_weights(interrupted)
    assert expected.keys() == resumed.keys() and expected
    assert all((resumed[k] - expected[k]).abs().max() <= 1e-6 for k in expected)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "digits"], "--streaming reads parquet shards, and 'digits' is built in"),
        (["--dataset", "{empty}"], "has no parquet shards of split 'train'"),
    ],
)
def test_streaming_bad_input_is_one_line(argv, message, tmp_path, capsys):
    argv = [value.format(empty=tmp_path) for value in argv]
    assert main(["train", "diffusion", "--streaming", *argv, "--output_dir", str(tmp_path / "out"), "--max_steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.slow
def test_streaming_from_a_hub_dataset_repo(shards, hub_client, tmp_path):
    """The shards, in push_to_hub's layout, uploaded to a dataset repo of the local Hub server; then train with
    `--dataset owner/name --streaming`, reading them through `HfFileSystem`. (datasets' own `push_to_hub` uploads
    through a temporary file that this server reads after it is gone, hence `upload_folder`.)"""
    code, _, stderr = hub_client.run(f"""
from huggingface_hub import HfApi, get_session, hf_hub_url
api = HfApi()
api.create_repo("hfgen-test/digits-shards", repo_type="dataset", exist_ok=True)
api.upload_folder(folder_path={str(shards)!r}, repo_id="hfgen-test/digits-shards", repo_type="dataset")
url = hf_hub_url("hfgen-test/digits-shards", "data/train-00000-of-00004.parquet", repo_type="dataset")
head, tail = (get_session().get(url, headers={{"Range": r}}) for r in ("bytes=0-3", "bytes=-4"))
assert (head.status_code, head.content, tail.content) == (206, b"PAR1", b"PAR1"), (head.status_code, head.headers)
""")  # a ranged read, as the Hub answers it: parquet starts and ends with its magic bytes
    assert code == 0, stderr[-3000:]
    out = tmp_path / "out"
    code, _, stderr = hub_client.cli("train", "diffusion", "--dataset", "hfgen-test/digits-shards", "--streaming",
                                     "--output_dir", out, *TINY_DIFFUSION, "--max_steps", "3")
    assert code == 0, stderr[-3000:]
    assert (out / "model_index.json").is_file()
