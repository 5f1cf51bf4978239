"""RGB at 32 and 64 px in every image family, end to end on the built-in photos (crops of scikit-learn's two sample
photos): train, sample, evaluate, push and load by repo id, the family's Space; and diffusers' --center_crop /
--random_flip, whose random draws resume exactly."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from gradio_client import Client
from PIL import Image
from safetensors.torch import load_file

from hfgen.cli import main
from hfgen.data import image_transform, load_image_dataset
from hfgen.data.transforms import ROW_GENERATORS, image_pixels
from hfgen.demo import build_demo, launch
from hfgen.evaluation.feature_extractor import train_feature_extractor
from hfgen.families import family_names, get_family
from hfgen.images import image_grid
from hfgen.loading import load_pipeline
from hfgen.training.batches import SeededRows, ShardedEpochBatches
from hfgen.widgets import grid

from helpers import free_port, safetensors_weights, sample_from_hub, sample_tensors

SIZES = (32, 64)
PIXEL_GPT_64 = ("autoregressive", 64)
"""12,288 tokens an image: one sample takes ~35 s of this CPU, so it has a test of its own (train, resume, sample)
rather than the evaluation, Hub and Space checks of the others, which need dozens of samples."""
CASES = [pytest.param((name, size), id=f"{name}-{size}") for size in SIZES for name in family_names() if (name, size) != PIXEL_GPT_64]
UNET = ("--block_out_channels", "8", "8", "16", "16")  # 32 and 64 px (and their 16/32 px latents) give 4 levels
RUN = ("--train_batch_size", "4", "--num_grid_images", "4", "--sample_steps", "1000", "--logging_steps", "1")


def model_flags(name: str) -> list[str]:
    """The family's tiny zoo flags; the UNets take four levels at these sizes."""
    return [*UNET, "--grid_inference_steps", "2"] if "diffusion" in name else list(get_family(name).zoo["tiny"].flags)


def train(name: str, size: int, out, *extra: str, prerequisite=None) -> list[str]:
    """`hfgen train` on photos<size>; returns its argv."""
    argv = ["train", name, "--dataset", f"photos{size}", "--output_dir", str(out), *RUN, *model_flags(name), *extra]
    if prerequisite is not None:
        argv += [get_family(name).zoo["tiny"].prerequisite.flag, str(prerequisite)]
    assert main(argv) == 0
    return argv


def test_photos_are_fixed_rgb_crops_with_one_class_per_photo():
    train32, test64 = load_image_dataset("photos32", "train"), load_image_dataset("photos64", "test")
    assert (len(train32), len(test64)) == (256, 64)
    assert train32.features["label"].names == ["china", "flower"] and sorted(set(train32["label"])) == [0, 1]
    assert train32[0]["image"].size == (32, 32) and test64[0]["image"].mode == "RGB" and test64[0]["image"].size == (64, 64)
    assert np.array_equal(np.asarray(load_image_dataset("photos32", "train")[5]["image"]), np.asarray(train32[5]["image"]))


def test_crop_and_flip_mean_what_they_mean_in_diffusers():
    wide = Image.fromarray(np.arange(4 * 8, dtype=np.uint8).reshape(4, 8))  # 8 wide, 4 high: no resize at 4
    center = image_pixels([wide], 4, 1)[0, 0]
    assert torch.equal(center, torch.from_numpy(np.array(wide)[:, 2:6]))
    crops = {tuple(image_pixels([wide], 4, 1, center_crop=False, generators=[np.random.default_rng(s)])[0, 0, 0].tolist()) for s in range(20)}
    assert len(crops) > 1  # a random square
    flips = [image_pixels([wide], 4, 1, random_flip=True, generators=[np.random.default_rng(s)])[0, 0] for s in range(20)]
    assert any(torch.equal(f, center.flip(-1)) for f in flips) and any(torch.equal(f, center) for f in flips)
    square = Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    assert torch.equal(image_pixels([square], 8, 3, center_crop=False).permute(0, 2, 3, 1)[0], torch.from_numpy(np.asarray(square)))


def test_row_generators_are_a_function_of_seed_and_stream_position():
    dataset = load_image_dataset("photos32", "train").with_transform(image_transform(32, 3, random_flip=True))
    rows = SeededRows(dataset, seed=0)
    stream = list(zip(range(6), ShardedEpochBatches(len(dataset), 64, seed=0).positioned()))
    resumed = list(zip(range(3), ShardedEpochBatches(len(dataset), 64, seed=0, start=3).positioned()))
    assert [key for _, key in resumed] == [key for _, key in stream[3:]]
    first, indices, batch = rows[stream[3][1]]
    assert first == 3 * 64 and indices == stream[3][1][0]
    assert torch.equal(rows[resumed[0][1]].batch["pixel_values"], batch["pixel_values"])
    plain = dataset[stream[3][1][0]]["pixel_values"]  # no generators: the deterministic view
    assert not torch.equal(batch["pixel_values"], plain)  # some of 64 rows are flipped
    assert ROW_GENERATORS not in dataset[[0]]


@dataclass(frozen=True)
class Trained:
    """A trained folder and what it was trained as."""

    name: str
    size: int
    folder: Path
    argv: list[str]


@pytest.fixture(scope="module", params=CASES)
def trained(request, tmp_path_factory) -> Trained:
    """One model per (family, size), trained 3 steps (a checkpoint at 2) on RGB photos with --random_flip through
    `hfgen train`, and shared by every check below (train once, then resume, sample, evaluate, push and serve it)."""
    name, size = request.param
    root = tmp_path_factory.mktemp(f"{name}-{size}")
    prerequisite = None
    if (plan := get_family(name).zoo["tiny"].prerequisite) is not None:
        prerequisite = root / "vae"
        assert main(["train", plan.family, "--dataset", f"photos{size}", "--output_dir", str(prerequisite), "--max_steps", "2",
                     *RUN, *plan.plan.flags]) == 0
    extra = ("--cache_latents", "false") if prerequisite else ()
    argv = train(name, size, root / "model", "--max_steps", "3", "--checkpointing_steps", "2", "--random_flip", *extra,
                 prerequisite=prerequisite)
    return Trained(name, size, root / "model", argv)


@pytest.fixture(scope="module")
def judges(tmp_path_factory) -> dict[int, Path]:
    """Size -> a classifier judge of photos<size>, 20 steps (the default 800 would cost more than every model here;
    two photos are easy to tell apart)."""
    folders = {}
    for size in SIZES:
        folders[size] = tmp_path_factory.mktemp(f"judge-{size}")
        train_feature_extractor(f"photos{size}", steps=20).save_pretrained(folders[size])
    return folders


def test_every_family_trains_and_samples_rgb(trained, tmp_path):
    """Load the folder, sample RGB images of the right size, write a grid through `hfgen sample`."""
    pipe = load_pipeline(str(trained.folder))
    images = pipe(batch_size=2, generator=torch.manual_seed(0), output_type="pt",
                  **({"num_inference_steps": 2} if "diffusion" in trained.name else {})).images
    assert images.shape == (2, 3, trained.size, trained.size) and images.min() >= 0 and images.max() <= 1
    assert main(["sample", str(trained.folder), "--num_images", "2", "--output", str(tmp_path / "grid.png"),
                 *(["--steps", "2"] if "diffusion" in trained.name else [])]) == 0
    assert Image.open(tmp_path / "grid.png").mode == "RGB"


def test_every_family_evaluates_rgb(trained, judges, tmp_path):
    """`hfgen evaluate` on the photos it was trained on: the model and every reference row judged at RGB 32/64."""
    output = tmp_path / "metrics.json"
    assert main(["evaluate", str(trained.folder), "--num_samples", "16", "--batch_size", "16", "--likelihood", "false",
                 "--steps", "2", "--judge", "classifier", "--judge_model", str(judges[trained.size]), "--output", str(output)]) == 0
    results = json.loads(output.read_text())
    assert results["judge"]["name"] == "classifier" and results["dataset"] == f"photos{trained.size}"
    rows = {"model": results["metrics"], **results["reference_rows"]}
    assert len(rows) == 5 and all(math.isfinite(row[key]) for row in rows.values() for key in ("fid", "kid")), rows


@pytest.mark.slow
def test_every_family_pushes_and_loads_rgb_by_repo_id(trained, hub_client, tmp_path):
    """`hfgen push`, then `load_pipeline(repo id)` in the Hub client samples what the local folder samples."""
    repo = f"hfgen-test/{trained.name}-photos{trained.size}"
    code, _, stderr = hub_client.cli("push", trained.folder, repo)
    assert code == 0, stderr[-3000:]
    out = tmp_path / "hub.safetensors"
    local = load_pipeline(str(trained.folder))
    assert sample_from_hub(hub_client, trained.name, repo, out) == type(local).__name__
    torch.testing.assert_close(load_file(out)["images"], sample_tensors(local, trained.name), rtol=0, atol=1e-5)


@pytest.mark.slow
def test_every_family_space_serves_rgb(trained):
    """The family's Space on the RGB model: `/sample` of one image through gradio_client is an RGB PNG of the size
    the widgets give an RGB image of this side."""
    demo = build_demo(trained.name, str(trained.folder))
    port = free_port()
    launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    try:
        path = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(seed=0, num_images=1, api_name="/sample")
    finally:
        demo.close()
    served = Image.open(path)
    assert (served.format, served.mode) == ("PNG", "RGB")
    assert served.size == Image.open(grid(torch.zeros(1, 3, trained.size, trained.size))).size


def test_every_family_resumes_rgb_exactly(trained, tmp_path):
    """Step 3 again from the checkpoint at step 2, in a copy of the folder, ends with the same weights bit for bit:
    the flips and every noise are drawn per (seed, sample), not from a process's RNG (`hfgen.randomness`)."""
    copy = tmp_path / "resumed"
    shutil.copytree(trained.folder / "checkpoints" / "checkpoint-2", copy / "checkpoints" / "checkpoint-2")
    argv = [copy if value == str(trained.folder) else value for value in trained.argv]
    assert main([*map(str, argv), "--resume_from_checkpoint", "latest"]) == 0
    full, resumed = safetensors_weights(trained.folder), safetensors_weights(copy)
    assert full.keys() == resumed.keys() and all(torch.equal(full[k], resumed[k]) for k in full)


def test_the_pixel_gpt_trains_and_samples_at_64(tmp_path):
    """Its resume is the 32 px one's (test_every_family_resumes_rgb_exactly): the same code, a shorter sequence."""
    out = tmp_path / "model"
    train(*PIXEL_GPT_64, out, "--max_steps", "2", "--random_flip", "--num_grid_images", "1")
    written, expected = Image.open(out / "samples.png"), image_grid(torch.zeros(1, 3, 64, 64))  # one 64x64 sample
    assert (written.mode, written.size) == ("RGB", expected.size)
    assert load_pipeline(str(out)).model.config.max_position_embeddings >= 64 * 64 * 3  # 12,288 pixels and the start token
