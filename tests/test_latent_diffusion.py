"""Latent diffusion: a spatial VAE, the pipeline's round trip and scale factor, training (cached or on the fly,
two processes, kill-and-resume), and one-line errors for a wrong --vae."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from diffusers import DDPMScheduler, UNet2DModel

from helpers import kill_mid_run_and_resume, launch_two_processes, safetensors_weights

from hfgen import VAEConfig, VAEModel
from hfgen.cli import main
from hfgen.data import image_transform, load_image_dataset
from hfgen.families.diffusion import default_unet_config
from hfgen.families.latent_diffusion import LatentDiffusionPipeline
from hfgen.loading import load_pipeline

UNET = ["--block_out_channels", "16", "16", "--num_train_timesteps", "50"]
TINY = [*UNET, "--train_batch_size", "16", "--num_grid_images", "4", "--sample_steps", "1000", "--grid_inference_steps", "2"]


def tiny_vae(latent_channels: int = 2) -> VAEModel:
    torch.manual_seed(0)
    config = VAEConfig(image_size=8, grey_levels=17, block_out_channels=(8,), spatial_latent=True, latent_channels=latent_channels)
    return VAEModel(config).eval()


def tiny_pipeline(num_classes: int | None = None, scaling_factor: float = 0.5) -> LatentDiffusionPipeline:
    vae = tiny_vae()
    vae.config.scaling_factor = scaling_factor
    unet = UNet2DModel(**default_unet_config(4, 2, num_classes, block_out_channels=(16, 16))).eval()
    pipe = LatentDiffusionPipeline(vae=vae, unet=unet, scheduler=DDPMScheduler(num_train_timesteps=50))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def spatial_vae(tmp_path_factory) -> Path:
    """`hfgen train vae --spatial_latent`: the autoencoder every training test below builds on."""
    out = tmp_path_factory.mktemp("vae") / "spatial"
    assert main(["train", "vae", "--spatial_latent", "--block_out_channels", "8", "--latent_channels", "2",
                 "--output_dir", str(out), "--max_steps", "20", "--train_batch_size", "32", "--num_grid_images", "4",
                 "--lr_warmup_steps", "0"]) == 0
    return out


@pytest.fixture(scope="module")
def trained(spatial_vae, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ldm") / "run"
    assert main(["train", "latent-diffusion", "--vae", str(spatial_vae), "--output_dir", str(out), "--max_steps", "4",
                 "--class_conditional", *TINY]) == 0
    return out


def test_spatial_vae_has_a_latent_feature_map():
    vae = tiny_vae(latent_channels=3)
    assert vae.config.latent_shape == (3, 4, 4) and vae.config.latent_dim == 48
    images = torch.rand(2, 1, 8, 8) * 2 - 1
    latents = vae.encode(images).mean.view(-1, *vae.config.latent_shape)  # (2, 3, 4, 4)
    assert torch.equal(vae.decode(latents), vae.decode(latents.flatten(1)))  # map or flattened: the same decoder
    assert vae.log_likelihood(images, k=3).shape == (2,)  # the VAE family's bounds work unchanged
    assert VAEConfig().latent_shape == (16,) and not VAEConfig().spatial_latent  # the vector latent stays the default
    with pytest.raises(ValueError, match="latent_dim 10 contradicts the spatial latent 3 x 4 x 4 = 48"):
        VAEConfig(image_size=8, block_out_channels=(8,), spatial_latent=True, latent_channels=3, latent_dim=10)


def test_save_load_round_trip_gives_identical_samples(tmp_path):
    pipe = tiny_pipeline()
    before = pipe(batch_size=3, generator=torch.manual_seed(7), num_inference_steps=4, output_type="pt").images
    assert before.shape == (3, 1, 8, 8) and 0 <= before.min() and before.max() <= 1
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["vae"] == ["hfgen.families.vae.modeling_vae", "VAEModel"] and (tmp_path / "vae" / "model.safetensors").is_file()
    loaded = load_pipeline(str(tmp_path))
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded, LatentDiffusionPipeline) and loaded.vae.config.scaling_factor == 0.5
    assert not any(p.requires_grad for p in loaded.vae.parameters())  # frozen
    after = loaded(batch_size=3, generator=torch.manual_seed(7), num_inference_steps=4, output_type="pt").images
    assert torch.equal(before, after)
    assert not torch.equal(before, loaded(batch_size=3, generator=torch.manual_seed(8), num_inference_steps=4, output_type="pt").images)


def test_decoding_divides_by_the_scale_factor():
    latents = torch.randn(2, 2, 4, 4)
    half, one = tiny_pipeline(scaling_factor=0.5), tiny_pipeline(scaling_factor=1.0)
    assert torch.allclose(half.decode_latents(latents), one.decode_latents(latents * 2))
    assert torch.allclose(one.decode_latents(latents), one.vae.decode(latents))


def test_classifier_free_guidance_comes_from_pixel_diffusion():
    pipe = tiny_pipeline(num_classes=10)
    run = lambda **kw: pipe(batch_size=2, generator=torch.manual_seed(0), num_inference_steps=3, output_type="pt", **kw).images
    plain = run(class_labels=3)
    assert not torch.equal(plain, run(class_labels=3, guidance_scale=3.0))
    assert torch.equal(run(class_labels=3, guidance_scale=1.0), plain)


def test_training_measures_and_saves_the_scale_factor(trained, spatial_vae, tmp_path):
    for name in ["model_index.json", "vae/config.json", "vae/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
                 "scheduler/scheduler_config.json", "samples.png", "training_args.json"]:
        assert (trained / name).is_file(), name
    saved = json.loads((trained / "vae" / "config.json").read_text())["scaling_factor"]
    pipe = load_pipeline(str(trained))
    assert pipe.vae.config.scaling_factor == saved != 1.0
    assert type(pipe.scheduler).__name__ == "DPMSolverMultistepScheduler" and pipe.num_classes == 10
    # Independently: scaled samples z ~ q(z | x) of the training set have unit standard deviation.
    vae = load_pipeline(str(spatial_vae)).vae
    images = load_image_dataset("digits", "train").with_transform(image_transform(8, 1))[:]["pixel_values"]
    posterior = vae.encode(images)
    z = posterior.mean + posterior.std * torch.randn((20, *posterior.mean.shape), generator=torch.Generator().manual_seed(0))
    assert abs((z * saved).std().item() - 1.0) < 0.02
    # `hfgen sample` and a guided class both run on it.
    output = tmp_path / "grid.png"
    assert main(["sample", str(trained), "--num_images", "4", "--steps", "3", "--class_label", "2",
                 "--guidance_scale", "2", "--output", str(output)]) == 0
    assert output.stat().st_size > 0


def test_cached_latents_train_like_encoding_each_batch(spatial_vae, tmp_path):
    """Caching q(z | x) only saves the encoder calls: the same seed gives the same UNet either way."""
    weights = {}
    for mode in ("True", "False"):
        out = tmp_path / mode
        assert main(["train", "latent-diffusion", "--vae", str(spatial_vae), "--output_dir", str(out), "--max_steps", "3",
                     "--cache_latents", mode, *TINY]) == 0
        weights[mode] = safetensors_weights(out / "unet")
    for key, value in weights["True"].items():
        torch.testing.assert_close(weights["False"][key], value, rtol=0, atol=1e-5)


def test_streamed_training_measures_the_scale_on_the_streamed_images(spatial_vae, trained, tmp_path):
    """With --streaming the scale comes from a sample of whole shards: here all of digits, so it is the scale
    measured on the dataset read whole."""
    train = load_image_dataset("digits", "train")
    for index in range(2):
        train.shard(2, index, contiguous=True).to_parquet(str(tmp_path / "shards" / f"train-{index:05d}-of-00002.parquet"))
    out = tmp_path / "streamed"
    assert main(["train", "latent-diffusion", "--vae", str(spatial_vae), "--dataset", str(tmp_path / "shards"), "--streaming",
                 "--cache_latents", "false", "--output_dir", str(out), "--max_steps", "2", *TINY]) == 0
    scale = lambda run: json.loads((run / "vae" / "config.json").read_text())["scaling_factor"]
    assert scale(out) == pytest.approx(scale(trained), rel=1e-6)


@pytest.mark.slow
def test_two_processes_train_in_sync(spatial_vae, tmp_path):
    out = tmp_path / "ddp"
    launch_two_processes("train", "latent-diffusion", "--vae", spatial_vae, "--output_dir", out, "--max_steps", "4",
                         "--checkpointing_steps", "2", *TINY)
    info = json.loads((out / "run_info.json").read_text())
    assert info["num_processes"] == 2 and info["backend"] == "gloo"
    first, second = info["replica_checksums"]
    assert first == second
    assert (out / "checkpoints" / "checkpoint-2" / "random_states_1.pkl").is_file()


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(spatial_vae, tmp_path):
    def command(out: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "hfgen", "train", "latent-diffusion", "--vae", str(spatial_vae), "--output_dir", str(out),
                "--max_steps", "60", "--checkpointing_steps", "10", "--checkpoints_total_limit", "3", *TINY, *extra]

    reference, interrupted = kill_mid_run_and_resume(command, tmp_path)
    expected, resumed = safetensors_weights(reference), safetensors_weights(interrupted)
    assert expected.keys() == resumed.keys() and expected
    for key in expected:
        torch.testing.assert_close(resumed[key], expected[key], rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "pass --vae PATH_OR_REPO, e.g. train one first with `hfgen train vae --spatial_latent"),
        (["--vae", "{spatial_vae}/unet-less"], "does not exist"),
        (["--vae", "{trained}/unet"], "holds no hfgen VAE"),
        (["--vae", "{vector}"], "has a vector latent (4 numbers)"),
        (["--vae", "{spatial_vae}", "--channels", "3"], "The VAE takes 1-channel 8x8 images but the data is 3-channel 8x8"),
        (["--vae", "{spatial_vae}", "--unet_config", "{unet_config}"], "The UNet takes 3 -> 3 channels at 4x4, but the VAE's latent is 2 x 4 x 4"),
        (["--vae", "{spatial_vae}", "--dataset", "{spatial_vae}", "--streaming"], "add --cache_latents false"),
    ],
)
def test_bad_vae_is_one_clear_line(extra, message, spatial_vae, trained, tmp_path, capsys):
    vector = tmp_path / "vector"
    VAEModel(VAEConfig(image_size=8, grey_levels=17, block_out_channels=(8,), latent_dim=4)).save_pretrained(vector)
    unet_config = tmp_path / "unet.json"
    unet_config.write_text(json.dumps(default_unet_config(4, 3, block_out_channels=(16, 16))))
    paths = {"spatial_vae": spatial_vae, "trained": trained, "vector": vector, "unet_config": unet_config}
    argv = ["train", "latent-diffusion", "--output_dir", str(tmp_path / "out"), "--max_steps", "1", *TINY]
    capsys.readouterr()  # the fixtures' progress bars
    assert main([*argv, *(arg.format(**paths) for arg in extra)]) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]  # after transformers' "Loading weights" bar
    assert last_line.startswith("hfgen: error:") and message in last_line, last_line


def test_zoo_trains_the_vae_it_needs_first(extractor_cache, tmp_path, capsys):
    assert main(["zoo", "--budget", "tiny", "--families", "latent-diffusion", "--output_dir", str(tmp_path), "--num_samples", "32"]) == 0
    models = tmp_path / "models"
    vae, ldm = models / "latent-diffusion-vae", models / "latent-diffusion"
    assert sorted(p.name for p in models.iterdir()) == [ldm.name, vae.name]
    assert json.loads((vae / "vae" / "config.json").read_text())["spatial_latent"] is True
    readme = (tmp_path / "README.md").read_text()
    assert f"hfgen train vae --dataset digits --output_dir {vae}" in readme
    assert f"--vae {vae}" in readme and "| latent-diffusion |" in readme
    for folder in (vae, ldm):  # both folders load and sample like any hfgen model
        load_pipeline(str(folder))
        assert main(["sample", str(folder), "--num_images", "2", "--steps", "2", "--output", str(tmp_path / f"{folder.name}.png")]) == 0
