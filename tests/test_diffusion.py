"""The diffusion pipeline: round trip, schedulers, guidance, and clear errors."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DModel

from hfgen import DiffusionImagePipeline
from hfgen.families.diffusion import default_unet_config


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
