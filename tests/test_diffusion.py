"""The diffusion pipeline: round trip, schedulers, guidance, and clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DModel
from diffusers.training_utils import compute_snr

from hfgen import DiffusionImagePipeline
from hfgen.arguments import DataArguments
from hfgen.families.diffusion import default_unet_config
from hfgen.families.diffusion.pipeline_diffusion import SCHEDULERS
from hfgen.families.diffusion.objective import DiffusionArguments, DiffusionObjective
from hfgen.objective import PreparedModules
from hfgen.randomness import SampleRandomness


def tiny_pipeline(num_classes: int | None = None, prediction_type: str = "epsilon") -> DiffusionImagePipeline:
    torch.manual_seed(0)
    unet = UNet2DModel(**default_unet_config(8, 1, num_classes, block_out_channels=(8, 16, 16))).eval()
    scheduler = DDPMScheduler(num_train_timesteps=50, prediction_type=prediction_type)
    pipe = DiffusionImagePipeline(unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_save_load_round_trip_gives_identical_samples(tmp_path):
    pipe = tiny_pipeline()
    before = pipe(batch_size=3, generator=torch.manual_seed(7), num_inference_steps=5, output_type="pt").images
    pipe.save_pretrained(tmp_path)
    assert (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = DiffusionImagePipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    after = loaded(batch_size=3, generator=torch.manual_seed(7), num_inference_steps=5, output_type="pt").images
    assert torch.equal(before, after)
    different = loaded(batch_size=3, generator=torch.manual_seed(8), num_inference_steps=5, output_type="pt").images
    assert not torch.equal(before, different)


@pytest.mark.parametrize("scheduler_class", [DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_schedulers_swap_the_diffusers_way(scheduler_class, prediction_type):
    pipe = tiny_pipeline(prediction_type=prediction_type)
    pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config)
    images = pipe(batch_size=2, generator=torch.manual_seed(0), num_inference_steps=4, output_type="np").images
    assert images.shape == (2, 8, 8, 1) and images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_named_samplers_keep_the_trained_schedule_and_change_only_the_noise_levels(prediction_type):
    pipe = tiny_pipeline(prediction_type=prediction_type)
    calls = []
    pipe.unet.register_forward_hook(lambda module, args, output: calls.append(1))
    images = {}
    for name in SCHEDULERS:
        pipe.use_scheduler(name)
        assert pipe.scheduler.config.num_train_timesteps == 50 and pipe.scheduler.config.prediction_type == prediction_type
        calls.clear()
        images[name] = pipe(batch_size=2, generator=torch.manual_seed(0), num_inference_steps=4, output_type="pt").images
        assert torch.isfinite(images[name]).all() and images[name].min() >= 0 and images[name].max() <= 1
        assert len(calls) == (7 if name == "heun" else 4)  # Heun: two UNet calls per step but the last
    assert pipe.noise_schedule.config.num_train_timesteps == 50  # the bound still uses the trained process
    assert pipe.scheduler.config.use_karras_sigmas
    assert not torch.equal(images["dpmsolver"], images["dpmsolver-karras"])  # same solver, other σs


def test_output_types():
    pipe = tiny_pipeline()
    pil = pipe(batch_size=2, generator=torch.manual_seed(0), num_inference_steps=2).images
    assert len(pil) == 2 and pil[0].size == (8, 8) and pil[0].mode == "L"
    tensor, = pipe(batch_size=1, generator=torch.manual_seed(0), num_inference_steps=2, output_type="pt", return_dict=False)
    assert tensor.shape == (1, 1, 8, 8)
    with pytest.raises(ValueError, match="output_type"):
        pipe(num_inference_steps=1, output_type="jpeg")


def test_classifier_free_guidance_changes_samples_per_class():
    pipe = tiny_pipeline(num_classes=10)
    assert pipe.num_classes == 10
    run = lambda **kw: pipe(batch_size=2, generator=torch.manual_seed(0), num_inference_steps=3, output_type="pt", **kw).images
    plain, guided = run(class_labels=3), run(class_labels=3, guidance_scale=3.0)
    assert not torch.equal(plain, guided)
    assert torch.equal(run(class_labels=3, guidance_scale=1.0), plain)  # scale 1 is exactly the conditional model
    assert not torch.equal(run(class_labels=[3, 4]), plain)


@pytest.mark.parametrize(
    ("num_classes", "kwargs", "message"),
    [
        (None, {"guidance_scale": 2.0}, "needs a class-conditional model"),
        (None, {"class_labels": 1}, "this model is unconditional"),
        (10, {"class_labels": 10}, r"class_labels must be in \[0, 9\]"),
        (10, {"class_labels": -1}, r"class_labels must be in \[0, 9\]"),
        (10, {"guidance_scale": 2.0}, "needs class_labels"),
        (10, {"class_labels": [1, 2, 3]}, "one label or one per image"),
        (None, {"num_inference_steps": 0}, "num_inference_steps must be positive"),
        (None, {"batch_size": 0}, "batch_size must be positive"),
    ],
)
def test_bad_inputs_get_clear_errors(num_classes, kwargs, message):
    pipe = tiny_pipeline(num_classes)
    kwargs = {"batch_size": 2, "num_inference_steps": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        pipe(**kwargs)


def test_default_unet_levels_follow_resolution():
    assert default_unet_config(8, 1)["block_out_channels"] == (32, 64, 64)
    assert default_unet_config(28, 1)["block_out_channels"] == (32, 64, 64)
    assert len(default_unet_config(32, 3)["block_out_channels"]) == 4
    with pytest.raises(ValueError, match="pass 3 channel counts"):
        default_unet_config(8, 1, block_out_channels=(8, 16))


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_min_snr_weighting_is_diffusers_and_off_is_the_plain_loss(prediction_type):
    """--snr_gamma weighs each sample's error by min(SNR, γ) / SNR (v: / (SNR + 1)), as diffusers'
    train_text_to_image.py does; unset, the loss is the plain mean squared error, bit for bit."""
    def objective_and_loss(snr_gamma: float | None) -> tuple[DiffusionObjective, torch.Tensor]:
        arguments = DiffusionArguments(block_out_channels=[16, 16, 32], prediction_type=prediction_type, snr_gamma=snr_gamma)
        objective = DiffusionObjective(arguments, DataArguments())
        torch.manual_seed(0)
        modules = PreparedModules(objective.build_modules(), unwrap=lambda module: module)
        batch = objective.train_dataset()[list(range(8))]
        return objective, objective.compute_loss("model", batch, modules, SampleRandomness(0, range(8), step=0)).loss

    objective, plain = objective_and_loss(None)
    randomness = SampleRandomness(0, range(8), step=0)  # the draws compute_loss made, made again
    noise = randomness.normal("noise", (1, 8, 8))
    timesteps = randomness.integers("timestep", objective.scheduler.config.num_train_timesteps)
    images = objective.train_dataset()[list(range(8))]["pixel_values"]
    torch.manual_seed(0)
    prediction = objective.build_modules()["unet"](objective.scheduler.add_noise(images, noise, timesteps), timesteps).sample
    target = noise if prediction_type == "epsilon" else objective.scheduler.get_velocity(images, noise, timesteps)
    assert torch.equal(plain, F.mse_loss(prediction, target))
    snr = compute_snr(objective.scheduler, timesteps)
    weights = torch.minimum(snr, torch.full_like(snr, 5.0)) / (snr if prediction_type == "epsilon" else snr + 1)
    weighted = objective_and_loss(5.0)[1]
    torch.testing.assert_close(weighted, ((prediction - target).square().mean(dim=(1, 2, 3)) * weights).mean(), rtol=1e-6, atol=0)
    assert not torch.allclose(weighted, plain)
