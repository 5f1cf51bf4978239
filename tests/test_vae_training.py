"""`hfgen train vae` through the shared loop, then what the trained model must get right, and the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from hfgen import VAEPipeline
from hfgen.cli import main
from hfgen.data import image_transform, load_image_dataset

from helpers import launch_two_processes, run_hfgen, safetensors_weights

pytestmark = pytest.mark.slow  # trains through the CLI in subprocesses

STEPS = 120


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    output = tmp_path_factory.mktemp("vae-digits")
    run_hfgen(
        "train", "vae", "--dataset", "digits", "--output_dir", output, "--max_steps", STEPS, "--logging_steps", 1,
        "--sample_steps", 60, "--lr_warmup_steps", 10, "--kl_warmup_steps", 20, "--num_grid_images", 16,
        "--latent_mixture_components", 5,
    )
    return output


@pytest.fixture(scope="module")
def train_batch():
    dataset = load_image_dataset("digits", "train").with_transform(image_transform(8, 1))
    return dataset[list(range(64))]["pixel_values"]  # (64, 1, 8, 8)


def read_log(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]


def test_training_logs_every_term_and_the_elbo_improves(trained):
    steps = [row for row in read_log(trained) if "loss" in row]
    assert [row["step"] for row in steps] == list(range(1, STEPS + 1))
    assert all(row["kl"] >= 0 for row in steps)  # one logged batch per step: KL >= 0 for every batch
    for row in steps:
        assert row["elbo"] == pytest.approx(-(row["reconstruction"] + row["kl"]), rel=1e-5)
    # KL warm-up over 20 batches: beta = step / 20, then 1.
    assert steps[0]["beta"] == pytest.approx(1 / 20) and steps[9]["beta"] == pytest.approx(0.5)
    assert all(row["beta"] == 1.0 for row in steps[19:])
    first, last = (sum(row["elbo"] for row in rows) / 10 for rows in (steps[:10], steps[-10:]))
    assert last > first + 20  # nats per image
    validation = [row for row in read_log(trained) if "validation_elbo_bits_per_dim" in row]
    assert [row["step"] for row in validation] == [60, STEPS]
    assert validation[1]["validation_elbo_bits_per_dim"] < validation[0]["validation_elbo_bits_per_dim"]


def test_training_leaves_a_hub_ready_folder(trained):
    for name in ("model_index.json", "vae/config.json", "vae/model.safetensors", "samples.png", "training_args.json"):
        assert (trained / name).is_file(), name
    assert (trained / "samples" / "step-000060.png").is_file()
    config = json.loads((trained / "vae" / "config.json").read_text())
    assert (config["model_type"], config["image_size"], config["grey_levels"], config["likelihood"]) == ("hfgen_vae", 8, 17, "categorical")
    assert not list(trained.rglob("*.bin")) and not list(trained.rglob("*.pt"))


def test_iwae_bound_is_no_looser_than_the_elbo(trained, train_batch):
    pipe = VAEPipeline.from_pretrained(trained, use_safetensors=True)
    train_batch = (train_batch + 1) / 2  # the pipeline takes images in [0, 1]
    elbo = pipe.elbo(train_batch, generator=torch.manual_seed(0))
    iwae_64 = pipe.log_likelihood(train_batch, k=64, generator=torch.manual_seed(0))
    iwae_512 = pipe.log_likelihood(train_batch, k=512, batch_size=4096, generator=torch.manual_seed(0))
    # NLL_iwae <= -ELBO on average, and more importance samples never loosen the bound.
    assert -iwae_64.mean() <= -elbo.mean()
    assert iwae_512.mean() >= iwae_64.mean() - 0.05
    # k=1 is an ELBO (with a sampled KL): it must agree with the analytic-KL ELBO on average.
    iwae_1 = pipe.log_likelihood(train_batch, k=1, generator=torch.manual_seed(1))
    assert abs(iwae_1.mean() - elbo.mean()) < 1.5


def test_reconstructions_carry_each_image_not_just_the_average_digit(trained, train_batch):
    pipe = VAEPipeline.from_pretrained(trained, use_safetensors=True)
    reconstruction = pipe.reconstruct((train_batch + 1) / 2, output_type="pt").images * 2 - 1
    noise = torch.randint(0, 17, train_batch.shape, generator=torch.Generator().manual_seed(0)) / 16 * 2 - 1
    noise_reconstruction = pipe.reconstruct((noise + 1) / 2, output_type="pt").images * 2 - 1
    own = (reconstruction - train_batch).square().mean()
    assert own < (noise_reconstruction - noise).square().mean()
    assert own < (reconstruction - train_batch.roll(1, dims=0)).square().mean()  # another image's reconstruction


def test_sample_cli_writes_a_grid_a_reconstruction_and_an_interpolation(trained, train_batch, tmp_path, capsys):
    # In-process `hfgen` (the same `main` as the console script): one interpreter start-up instead of four.
    for index in (0, 1):
        Image.fromarray(((train_batch[index, 0] + 1) * 127.5).round().byte().numpy()).save(tmp_path / f"{index}.png")
    Image.open(tmp_path / "1.png").resize((16, 16)).save(tmp_path / "big.png")
    hfgen = lambda *args: main([str(arg) for arg in args])  # noqa: E731

    assert hfgen("sample", trained, "--num_images", 16, "--output", tmp_path / "grid.png") == 0
    assert Image.open(tmp_path / "grid.png").size == (4 * 68, 4 * 68)

    assert hfgen("sample", trained, "--reconstruct", tmp_path / "0.png", "--output", tmp_path / "rec.png") == 0
    assert Image.open(tmp_path / "rec.png").size == (2 * 68, 68)

    walk = ("--interpolate", tmp_path / "0.png", tmp_path / "big.png", "--num_frames", 6, "--output", tmp_path / "walk.png")
    assert hfgen("sample", trained, *walk) == 0
    assert Image.open(tmp_path / "walk.png").size == (6 * 68, 68)
    printed = capsys.readouterr().out.splitlines()[-1]
    assert "6 frames" in printed and "resized" in printed and "from 16x16 to 8x8" in printed

    assert hfgen("sample", trained, "--interpolate", tmp_path / "0.png", "--output", tmp_path / "x.png") == 2
    assert "exactly two image paths" in capsys.readouterr().err


def test_bad_training_options_fail_in_one_line(tmp_path, capsys):
    assert main(["train", "vae", "--output_dir", str(tmp_path), "--max_steps", "1", "--beta", "-1"]) == 2
    assert "--beta must be >= 0" in capsys.readouterr().err
    assert main(["train", "vae", "--output_dir", str(tmp_path), "--max_steps", "1", "--resolution", "10"]) == 2
    assert "image_size 10 is not divisible" in capsys.readouterr().err


def test_two_process_training_keeps_replicas_in_sync(tmp_path):
    launch_two_processes(
        "train", "vae", "--output_dir", tmp_path, "--max_steps", 6, "--train_batch_size", 16,
        "--logging_steps", 3, "--num_grid_images", 4, "--kl_warmup_steps", 4,
    )
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert (info["distributed_type"], info["num_processes"], info["backend"]) == ("MULTI_CPU", 2, "gloo")
    first, second = info["replica_checksums"]
    assert first == second
    assert safetensors_weights(tmp_path)
    assert VAEPipeline.from_pretrained(tmp_path, use_safetensors=True)(batch_size=2, output_type="pt").images.shape == (2, 1, 8, 8)


def test_a_latent_mixture_is_fitted_to_the_training_codes_and_sampled_from(trained):
    pipe = VAEPipeline.from_pretrained(trained, use_safetensors=True)
    mixture = pipe.vae.latent_mixture
    images = load_image_dataset("digits", "train").with_transform(image_transform(8, 1))[:]["pixel_values"]
    with torch.no_grad():
        codes = pipe.vae.encode(images).mean  # (1497, 16)
    # EM keeps the mixture's mean at the data's: fitted to these codes, not left at its initial N(0, I)s
    torch.testing.assert_close((mixture.weights[:, None] * mixture.means).sum(0), codes.mean(0), atol=1e-3, rtol=0)
    assert mixture.weights.shape == (5,) and not torch.equal(mixture.scale_tril[0], torch.eye(16))
    draw = lambda sampler: pipe(batch_size=8, generator=torch.manual_seed(0), latent_sampler=sampler, output_type="pt").images
    assert torch.equal(draw("mixture"), draw("mixture")) and not torch.equal(draw("mixture"), draw("prior"))
    assert torch.equal(draw(None), draw("mixture"))  # unset: the fitted density, where the model has one

