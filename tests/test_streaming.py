"""`--streaming`: train from parquet shards (a folder, or a Hub dataset repo as `push_to_hub` writes it) read one shard
at a time, in an order that is a function of (seed, epoch, global sample index) - so it resumes exactly and on any
number of processes."""

from __future__ import annotations

import io
import itertools
import json
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import datasets
import numpy as np
import pytest

from helpers import free_port, logged_sample_ids, safetensors_weights, subprocess_env

from hfgen.arguments import TrainingArguments
from hfgen.cli import main
from hfgen.data import image_transform, load_image_dataset
from hfgen.data.shards import StreamedImages
from hfgen.training.batches import ShardedEpochBatches
from hfgen.training.trainer import train_loader

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
    assert load_image_dataset(str(shards))[:] == whole[:]  # the same folder without --streaming: datasets' parquet builder
    picks = [0, len(whole) - 1, 700, 3, 1200, 380]  # across every shard, out of order
    rows, expected = streamed[picks], whole[picks]
    assert rows["label"] == expected["label"]
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(rows["image"], expected["image"]))
    assert len(streamed._loaded) <= 2  # the least recently used shards were dropped


def write_tar_shards(folder: Path, dataset, count: int) -> None:
    """`dataset` as `count` webdataset tars: each sample a `KEY.png` and a `KEY.cls` member, as webdataset writes."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        with tarfile.open(folder / f"train-{index:06d}.tar", "w") as tar:
            for row, sample in enumerate(dataset.shard(count, index, contiguous=True)):
                png = io.BytesIO()
                sample["image"].save(png, format="PNG")
                for extension, data in (("png", png.getvalue()), ("cls", str(sample["label"]).encode())):
                    member = tarfile.TarInfo(f"{index:02d}{row:05d}.{extension}")
                    member.size = len(data)
                    tar.addfile(member, io.BytesIO(data))


def test_webdataset_tar_shards_stream_the_same_rows_and_train(tmp_path):
    whole = load_image_dataset("digits", "train")
    write_tar_shards(tmp_path / "tars", whole, 3)
    streamed = StreamedImages(str(tmp_path / "tars"), max_shards=1)
    read_whole = load_image_dataset(str(tmp_path / "tars"))  # datasets' webdataset builder, without --streaming
    assert len(streamed) == len(whole) == len(read_whole) and streamed.shard_sizes == [499, 499, 499]
    assert streamed.features == read_whole.features == datasets.Features({"image": datasets.Image()})
    picks = [1496, 0, 700, 498]
    rows, expected = streamed[picks], whole[picks]
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(rows["image"], read_whole[picks]["image"]))
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(rows["image"], expected["image"]))
    out = tmp_path / "out"
    assert main(["train", "diffusion", "--dataset", str(tmp_path / "tars"), "--streaming", "--output_dir", str(out),
                 *TINY_DIFFUSION, "--max_steps", "2"]) == 0
    assert (out / "model_index.json").is_file()


def test_a_wids_shard_index_gives_the_tar_sizes_without_reading_them(tmp_path, monkeypatch):
    write_tar_shards(tmp_path, load_image_dataset("digits", "train"), 3)
    index = {"name": "digits", "shardlist": [{"url": f"train-{i:06d}.tar", "nsamples": 499} for i in range(3)]}
    (tmp_path / "index.json").write_text(json.dumps(index))  # as `widsindex create` writes it
    (tmp_path / "other.json").write_text("[1, 2]")  # not an index: passed over
    monkeypatch.setattr(tarfile.TarFile, "getnames", lambda self: pytest.fail("counted the members of a tar"))
    assert StreamedImages(str(tmp_path)).shard_sizes == [499, 499, 499]


def with_a_bad_image(shards: Path, folder: Path) -> Path:
    """A copy of `shards` whose shard 1 holds bytes that are no image at its row 5."""
    shutil.copytree(shards, folder)
    path = folder / "data" / f"train-00001-of-{SHARDS:05d}.parquet"
    shard = datasets.Dataset.from_parquet(str(path)).cast_column("image", datasets.Image(decode=False))
    images = list(shard["image"])
    images[5] = {"bytes": b"not an image", "path": None}
    shard.remove_columns("image").add_column("image", images, feature=datasets.Image()).to_parquet(str(path))
    return folder


def test_a_corrupt_image_stops_the_run_naming_shard_and_sample_and_is_skipped_when_asked(shards, tmp_path, capsys, caplog):
    folder = with_a_bad_image(shards, tmp_path / "bad")
    capsys.readouterr()
    train = lambda out, *extra: main(["train", "diffusion", "--dataset", str(folder), "--streaming", "--output_dir",
                                      str(tmp_path / out), *TINY_DIFFUSION, "--train_batch_size", "128", "--max_steps", "6", *extra])
    assert train("stopped") == 75  # EX_TEMPFAIL, as a preempted run: the finished steps are checkpointed
    row = StreamedImages(str(folder)).shard_sizes[0] + 5
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hfgen")]  # below the progress bar
    assert len(err) == 1 and f"sample 5 (row {row} of the split) of shard" in err[0] and "train-00001-of-00004.parquet" in err[0], err
    assert "--skip_bad_samples" in err[0] and "resume with:" in err[0]
    step = int(err[0].split("the data stream failed after step ")[1].split()[0])
    assert (tmp_path / "stopped" / "checkpoints" / f"checkpoint-{step}").is_dir()
    assert train("skipped", "--skip_bad_samples") == 0
    assert f"skipped sample 5 (row {row} of the split)" in caplog.text


def test_a_corrupt_shard_is_one_line_naming_it(shards, tmp_path, capsys):
    folder = tmp_path / "bad"
    shutil.copytree(shards, folder)
    (folder / "data" / f"train-00002-of-{SHARDS:05d}.parquet").write_bytes(b"PAR1 but not parquet")
    assert main(["train", "diffusion", "--dataset", str(folder), "--streaming", "--output_dir", str(tmp_path / "out"),
                 "--max_steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train-00002-of-00004.parquet is not a readable parquet file" in err[0], err


def test_streamed_columns_are_named_as_when_read_whole(tmp_path):
    """A Hub dataset's image column may be `img`: streamed, as read whole, it becomes `image`; extra columns go."""
    renamed = load_image_dataset("digits", "train").rename_column("image", "img").add_column("extra", list(range(1497)))
    for index in range(2):
        renamed.shard(2, index, contiguous=True).to_parquet(str(tmp_path / f"train-{index:05d}-of-00002.parquet"))
    streamed = StreamedImages(str(tmp_path))
    assert streamed.features == load_image_dataset(str(tmp_path)).features == load_image_dataset("digits").features
    assert list(streamed[[0, 1000]]) == ["image", "label"] and list(streamed.sample(10).features) == ["image", "label"]


def test_the_next_shard_is_read_once_in_the_background_while_the_current_one_trains(shards, tmp_path, monkeypatch):
    reads = []
    read = StreamedImages._read
    monkeypatch.setattr(StreamedImages, "_read", lambda self, index: (reads.append((index, threading.current_thread().name)), read(self, index))[1])
    streamed = StreamedImages(str(shards)).with_transform(image_transform(8, 1))
    loader = train_loader(streamed, TrainingArguments(output_dir=str(tmp_path), train_batch_size=32))
    epoch = list(itertools.islice(loader, 1497 // 32))
    assert sorted(index for index, _ in reads[:SHARDS]) == list(range(SHARDS))  # each shard once an epoch, none twice
    assert len(reads) <= SHARDS + 1  # and, near the end, the next epoch's first shard
    assert all(thread.startswith("hfgen-shard-prefetch") for _, thread in reads[1:])  # all but the first, ahead
    assert len({i for micro in epoch for i in micro.indices}) == len(epoch) * 32


def test_a_streamed_vae_validates_on_the_test_shards_it_needs_only(shards, tmp_path, monkeypatch):
    folder = tmp_path / "shards"
    shutil.copytree(shards, folder)
    test = load_image_dataset("digits", "test")  # 300 rows: 3 shards of 100
    for index in range(3):
        test.shard(3, index, contiguous=True).to_parquet(str(folder / "data" / f"test-{index:05d}-of-00003.parquet"))
    monkeypatch.setattr("hfgen.families.vae.objective.VALIDATION_IMAGES", 150)
    reads = []
    read = StreamedImages._read
    monkeypatch.setattr(StreamedImages, "_read", lambda self, index: (reads.append((self.split, index)), read(self, index))[1])
    out = tmp_path / "vae"
    assert main(["train", "vae", "--dataset", str(folder), "--streaming", "--output_dir", str(out), "--max_steps", "2",
                 "--block_out_channels", "8", "--num_grid_images", "4"]) == 0
    logged = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert any("validation_elbo" in record for record in logged)
    assert {index for split, index in reads if split == "test"} == {0, 1}  # the shards of its first 150 rows


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


def test_a_streamed_run_killed_then_stopped_resumes_twice_to_the_same_samples_and_weights(shards, tmp_path):
    """SIGKILL once the first checkpoint exists, resume; SIGTERM (a graceful stop) once the second does, resume again:
    every step's samples and the weights are an uninterrupted run's - after a second resume (where datasets' stream
    state restarted from zero, datasets #8308) and across the epoch boundary it crosses."""
    command = lambda out, *extra: [
        sys.executable, "-m", "hfgen", "train", "diffusion", "--dataset", str(shards), "--streaming", "--output_dir", str(out),
        *TINY_DIFFUSION, "--train_batch_size", "32", "--max_steps", "60", "--checkpointing_steps", "20", "--log_sample_ids",
        *extra,
    ]  # 60 steps of 32, epochs of 46 steps: the second resumed run crosses an epoch boundary
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    subprocess.run(command(reference), check=True, capture_output=True, env=subprocess_env(), timeout=300)

    def interrupt_once_saved(checkpoint: str, signum: signal.Signals, *extra: str) -> int:
        process = subprocess.Popen(command(interrupted, *extra), env=subprocess_env(), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        while not (interrupted / "checkpoints" / checkpoint).is_dir():
            assert process.poll() is None, "the run ended before it could be interrupted"
            time.sleep(0.02)
        process.send_signal(signum)
        return process.wait(timeout=120)

    assert interrupt_once_saved("checkpoint-20", signal.SIGKILL) == -signal.SIGKILL
    assert interrupt_once_saved("checkpoint-40", signal.SIGTERM, "--resume_from_checkpoint", "latest") == 75
    assert not (interrupted / "model_index.json").exists()
    subprocess.run(command(interrupted, "--resume_from_checkpoint", "latest"), check=True, capture_output=True,
                   env=subprocess_env(), timeout=300)
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
        (["--dataset", "digits"], "--streaming reads shards, and 'digits' is built in"),
        (["--dataset", "{empty}"], "has no parquet or .tar shards of split 'train'"),
    ],
)
def test_streaming_bad_input_is_one_line(argv, message, tmp_path, capsys):
    argv = [value.format(empty=tmp_path) for value in argv]
    assert main(["train", "diffusion", "--streaming", *argv, "--output_dir", str(tmp_path / "out"), "--max_steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.slow
def test_streaming_from_a_hub_dataset_repo(shards, hub_client, tmp_path):
    """The shards, in push_to_hub's layout, uploaded to a dataset repo of the local Hub server, and webdataset tars to
    another; then train with `--dataset owner/name --streaming` on each, reading them through `HfFileSystem`.
    (datasets' own `push_to_hub` uploads through a temporary file that this server reads after it is gone, hence
    `upload_folder`.)"""
    write_tar_shards(tmp_path / "tars", load_image_dataset("digits", "train"), 3)
    code, _, stderr = hub_client.run(f"""
from huggingface_hub import HfApi, get_session, hf_hub_url
api = HfApi()
for name, folder in (("digits-shards", {str(shards)!r}), ("digits-tars", {str(tmp_path / "tars")!r})):
    api.create_repo(f"hfgen-test/{{name}}", repo_type="dataset", exist_ok=True)
    api.upload_folder(folder_path=folder, repo_id=f"hfgen-test/{{name}}", repo_type="dataset")
url = hf_hub_url("hfgen-test/digits-shards", "data/train-00000-of-00004.parquet", repo_type="dataset")
head, tail = (get_session().get(url, headers={{"Range": r}}) for r in ("bytes=0-3", "bytes=-4"))
assert (head.status_code, head.content, tail.content) == (206, b"PAR1", b"PAR1"), (head.status_code, head.headers)
""")  # a ranged read, as the Hub answers it: parquet starts and ends with its magic bytes
    assert code == 0, stderr[-3000:]
    for name in ("digits-shards", "digits-tars"):
        out = tmp_path / name
        code, _, stderr = hub_client.cli("train", "diffusion", "--dataset", f"hfgen-test/{name}", "--streaming",
                                         "--output_dir", out, *TINY_DIFFUSION, "--max_steps", "3")
        assert code == 0, stderr[-3000:]
        assert (out / "model_index.json").is_file()


@pytest.mark.slow
def test_a_hub_outage_is_retried_and_one_that_lasts_ends_with_a_checkpoint_and_the_resume_line(shards, tmp_path):
    """The shards served by a Hub server of the test's own, which it stops mid-run: restarted within the backoff,
    the run goes on; down for good, the run ends with one line, a checkpoint and the resume command. Both give the
    samples and weights of a run that never saw an outage."""
    from hub_server import HubServer

    root, port = tmp_path / "hub", free_port()
    command = lambda dataset, out, *extra: [
        sys.executable, "-m", "hfgen", "train", "diffusion", "--dataset", dataset, "--streaming", "--streaming_shards", "1",
        "--output_dir", str(out), *TINY_DIFFUSION, "--train_batch_size", "128", "--max_steps", "24", "--checkpointing_steps", "1000",
        "--log_sample_ids", *extra,
    ]  # one shard in memory: the stream reads the Hub every 3 steps (374 rows, 128 a step), over two epochs
    reference = tmp_path / "reference"
    subprocess.run(command(str(shards), reference), check=True, capture_output=True, env=subprocess_env(), timeout=300)

    def start_mid_run(out: Path, server: HubServer, *extra: str) -> subprocess.Popen:
        process = subprocess.Popen(command("hfgen-test/digits-shards", out, *extra), env=subprocess_env(**server.client_env()),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while len(logged_sample_ids(out)) < 5 if (out / "sample_ids.jsonl").is_file() else True:
            assert process.poll() is None, process.stderr.read()[-3000:]
            time.sleep(0.05)
        return process

    def assert_like_reference(out: Path) -> None:
        assert logged_sample_ids(out) == logged_sample_ids(reference)
        expected, trained = safetensors_weights(reference), safetensors_weights(out)
        assert expected.keys() == trained.keys() and all((trained[k] - expected[k]).abs().max() <= 1e-6 for k in expected)

    server, process = HubServer(root, port).__enter__(), None
    try:
        files = {str(path.relative_to(shards)): path.read_bytes() for path in shards.rglob("*.parquet")}
        server.create_repo("hfgen-test/digits-shards", files, repo_type="dataset")
        process = start_mid_run(tmp_path / "outage", server)
        server.__exit__()
        time.sleep(2)
        server = HubServer(root, port).__enter__()  # back within the backoff
        assert process.wait(timeout=300) == 0
        assert "retrying in" in process.stderr.read().lower()  # huggingface_hub's backoff for a ranged read, or ours around it
        assert_like_reference(tmp_path / "outage")

        process = start_mid_run(tmp_path / "down", server, "--streaming_retries", "0")
        server.__exit__()  # for good
        assert process.wait(timeout=300) == 75
        # the hfgen line, wherever huggingface_hub's retry log of the shard prefetched in the background lands
        last = next(line for line in process.stderr.read().splitlines() if line.startswith("hfgen: "))
        assert last.startswith("hfgen: the data stream failed after step ") and "could not read shard" in last, last
        step = int(last.split("after step ")[1].split()[0])
        assert (tmp_path / "down" / "checkpoints" / f"checkpoint-{step}").is_dir() and 5 <= step < 24
        resume = shlex.split(last.split("resume with: ")[1])
        assert resume[resume.index("--resume_from_checkpoint") + 1] == "latest"
        server = HubServer(root, port).__enter__()
        subprocess.run([sys.executable, "-m", *resume], check=True, capture_output=True,
                       env=subprocess_env(**server.client_env()), timeout=300)  # resume: hfgen train diffusion ...
        assert_like_reference(tmp_path / "down")
    finally:  # nothing left running when an assertion fails
        server.__exit__()
        if process is not None and process.poll() is None:
            process.kill()
