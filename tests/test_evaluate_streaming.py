"""`hfgen evaluate --streaming`: the reference (train) and held-out (test) splits - and a judge trained on the data -
read as a seeded sample of parquet shards (`EvaluationData`): the very numbers of reading the dataset whole when the
sample holds every row, part of the shards when it is smaller."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from hfgen.cli import main
from hfgen.data import load_image_dataset
from hfgen.data.shards import StreamedImages
from hfgen.evaluation.baselines import evaluation_splits, real_images
from hfgen.evaluation.feature_extractor import cache_dir, train_feature_extractor
from hfgen.evaluation.judges import ExtractorJudge
from hfgen.evaluation.splits import EvaluationData
from hfgen.training.launch import train
from hfgen.zoo.run import ZooArguments, train_argv

SHARDS = {"train": 4, "test": 2}  # digits: 1,497 train rows (374-375 a shard), 300 test rows (150 a shard)
EVALUATE = ("--num_samples", "48", "--batch_size", "48")


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """digits' train and test splits as parquet shards in push_to_hub's layout (data/test-00001-of-00002.parquet)."""
    folder = tmp_path_factory.mktemp("digits-shards")
    for split, count in SHARDS.items():
        rows = load_image_dataset("digits", split)
        for index in range(count):
            rows.shard(count, index, contiguous=True).to_parquet(str(folder / "data" / f"{split}-{index:05d}-of-{count:05d}.parquet"))
    return folder


@pytest.fixture(scope="module")
def gan(tmp_path_factory) -> Path:
    """The zoo's tiny GAN, trained 2 steps on digits: sampling is one generator call, and it has no likelihood."""
    folder = tmp_path_factory.mktemp("models") / "gan"
    train("gan", train_argv(ZooArguments(budget="tiny"), "gan", folder))
    return folder


@pytest.fixture(scope="module")
def judge_model(tmp_path_factory) -> str:
    """A 20-step classifier judge, passed as --judge_model so no run trains the full recipe."""
    folder = tmp_path_factory.mktemp("judge")
    train_feature_extractor("digits", steps=20).save_pretrained(folder)
    return str(folder)


def evaluate(*args: str) -> dict:
    output = Path(args[args.index("--output") + 1])
    assert main(["evaluate", *args]) == 0
    return json.loads(output.read_text())


def test_streaming_every_row_gives_the_numbers_of_the_whole_dataset(shards, gan, judge_model, tmp_path):
    common = (str(gan), *EVALUATE, "--judge_model", judge_model)
    whole = evaluate(*common, "--dataset", "digits", "--output", str(tmp_path / "whole.json"))
    streamed = evaluate(*common, "--dataset", str(shards), "--streaming", "--output", str(tmp_path / "streamed.json"))
    assert whole["data"] == {
        "dataset": "digits", "streamed": False, "streaming_images": None, "reference_images": 1497, "held_out_images": 300,
        "resolution": None, "channels": None,
    }
    assert streamed["data"] == {
        "dataset": str(shards), "streamed": True, "streaming_images": 10_000, "reference_images": 1497, "held_out_images": 300,
        "resolution": None, "channels": None,
    }
    assert_same_numbers(streamed["metrics"], whole["metrics"])
    for row, metrics in whole["reference_rows"].items():  # floor, KDE, SMOTE, noise: the same rows, the same numbers
        assert_same_numbers(streamed["reference_rows"][row], metrics)
    assert streamed["judge"] == whole["judge"]


def assert_same_numbers(metrics: dict, expected: dict) -> None:
    """Equal but for the timing - and the last bit of FID∞: MKL's `torch.linalg.lstsq` (its line fit) answers
    bitwise-identical inputs with results a few ulps apart from call to call in one process, whatever the data."""
    assert metrics.keys() == expected.keys()
    for key, value in expected.items():
        if key == "samples_per_second":
            continue
        assert metrics[key] == (pytest.approx(value, rel=1e-12, abs=1e-12) if key.startswith("fid") else value), key


def test_a_small_sample_reads_part_of_the_shards(shards, gan, judge_model, tmp_path, monkeypatch):
    read: list[tuple[str, int]] = []
    whole_read = StreamedImages._read
    monkeypatch.setattr(StreamedImages, "_read", lambda self, index: read.append((self.split, index)) or whole_read(self, index))
    results = evaluate(
        str(gan), *EVALUATE, "--judge_model", judge_model, "--dataset", str(shards), "--streaming", "--streaming_images",
        "200", "--reference_rows", "false", "--output", str(tmp_path / "small.json"),
    )
    assert results["data"] | {"dataset": None} == {
        "dataset": None, "streamed": True, "streaming_images": 200, "reference_images": 200, "held_out_images": 200,
        "resolution": None, "channels": None,
    }
    assert [index for split, index in read if split == "train"] == [2]  # one seeded shard of four holds 200 rows
    assert sorted(index for split, index in read if split == "test") == [0, 1]  # 150 + 50: two shards, the second cut
    assert results["metrics"]["subset_size"] == 24  # half the 48 samples, below half the 133-image floor


def test_without_test_shards_a_seeded_sixth_of_the_sample_is_held_out(shards, tmp_path):
    train_only = tmp_path / "train-only"
    shutil.copytree(shards, train_only, ignore=shutil.ignore_patterns("test-*"))
    data = EvaluationData(str(train_only), streaming_images=600, seed=3)
    assert not data.has_split("test") and EvaluationData(str(shards), streaming_images=600).has_split("test")
    train, test, labels, _ = evaluation_splits(data, seed=3)
    sample = real_images(data, "train")  # the 600 rows streamed: two whole-or-cut shards in a seeded order
    held_out = torch.zeros(600, dtype=torch.bool)
    held_out[torch.randperm(600, generator=torch.Generator().manual_seed(3))[:100]] = True
    assert torch.equal(test, sample[held_out]) and torch.equal(train, sample[~held_out]) and len(labels) == 100


def test_a_judge_trained_on_a_streamed_sample_is_cached_and_named_apart(shards, extractor_cache):
    everything = EvaluationData(str(shards), streaming_images=10_000)
    streamed, whole = train_feature_extractor(everything, steps=20), train_feature_extractor("digits", steps=20)
    assert all(torch.equal(a, b) for a, b in zip(streamed.parameters(), whole.parameters()))  # the same rows, in order
    title = ExtractorJudge(streamed).describe()["title"]
    assert title == f"hfgen CNN trained on 1,497 streamed images of {shards} (classifier, seed 0, sample seed 0)"
    folders = {
        cache_dir(str(shards)), cache_dir(everything), cache_dir(EvaluationData(str(shards), streaming_images=500)),
        cache_dir(EvaluationData(str(shards), streaming_images=500, seed=1)),
    }
    assert len(folders) == 4 and all(f.parent == extractor_cache for f in folders)


def test_streaming_a_built_in_dataset_or_no_images_per_split_is_a_one_line_error(gan, capsys):
    assert main(["evaluate", str(gan), "--dataset", "digits", "--streaming"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("hfgen: error: --streaming reads shards, and 'digits' is built in") and "drop --streaming" in error
    assert main(["evaluate", str(gan), "--dataset", "digits", "--streaming_images", "0"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "hfgen: error: --streaming_images must be a positive integer, got 0."


def test_a_model_trained_streaming_is_evaluated_streaming(shards, judge_model, tmp_path):
    """Without --dataset, evaluate reads the data as the model was trained on it: the shards, streamed."""
    folder = tmp_path / "gan"
    train("gan", [*train_argv(ZooArguments(budget="tiny", dataset=str(shards)), "gan", folder), "--streaming"])
    results = evaluate(str(folder), *EVALUATE, "--judge_model", judge_model, "--reference_rows", "false",
                       "--streaming_images", "200", "--output", str(tmp_path / "results.json"))
    assert results["data"] | {"dataset": None} == {
        "dataset": None, "streamed": True, "streaming_images": 200, "reference_images": 200, "held_out_images": 200,
        "resolution": None, "channels": None,
    }
