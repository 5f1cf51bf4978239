"""The rest of diffusers' pipeline contract for hfgen's step-by-step pipelines: `output_type="latent"`,
`num_timesteps`, and guidance (or, for pixel sampling, temperature) that a step-end callback can change - checked
the way diffusers' `PipelineTesterMixin.test_callback_inputs` / `test_callback_cfg` check them."""

from __future__ import annotations

import pytest
import torch

from hfgen.callbacks import ClassCFGCutoffCallback
from hfgen.images import postprocess
from tiny_pipelines import tiny_diffusion, tiny_gan, tiny_latent_diffusion, tiny_pixel_gpt, tiny_vae

DENOISERS = {"diffusion": tiny_diffusion, "latent_diffusion": tiny_latent_diffusion}
CONDITIONS = {"unconditional": {}, "class-conditional": {"class_labels": [0, 2]}}


def run(pipe, **kwargs):
    return pipe(generator=torch.manual_seed(0), **({"batch_size": 2, "num_inference_steps": 3} | kwargs)).images


@pytest.mark.parametrize("condition", CONDITIONS)
@pytest.mark.parametrize("family", DENOISERS)
def test_latent_output_decodes_to_the_pt_images_and_num_timesteps_counts_the_steps(family, condition):
    pipe = DENOISERS[family](num_classes=3 if CONDITIONS[condition] else None)
    kwargs = CONDITIONS[condition]
    latents = run(pipe, output_type="latent", **kwargs)
    assert pipe.num_timesteps == 3 == len(pipe.scheduler.timesteps)
    side = pipe.unet.config.sample_size
    assert latents.shape == (2, pipe.unet.config.in_channels, side, side)  # latent diffusion: the VAE's latent map
    torch.testing.assert_close(postprocess(pipe.decode_latents(latents), "pt"), run(pipe, output_type="pt", **kwargs))
    if family == "latent_diffusion":  # the same latents through the VAE itself, undoing the UNet's scaling
        decoded = pipe.vae.decode(latents / pipe.vae.config.scaling_factor)
        torch.testing.assert_close(postprocess(decoded, "pt"), run(pipe, output_type="pt", **kwargs))


@pytest.mark.parametrize("condition", CONDITIONS)
@pytest.mark.parametrize("family", DENOISERS)
def test_callback_inputs_as_diffusers_tests_them(family, condition):
    """diffusers' `PipelineTesterMixin.test_callback_inputs`, with its `output_type="latent"`."""
    pipe = DENOISERS[family](num_classes=3 if CONDITIONS[condition] else None)
    kwargs = CONDITIONS[condition] | {"output_type": "latent"}

    def subset(pipe, i, t, callback_kwargs):
        assert all(name in pipe._callback_tensor_inputs for name in callback_kwargs)
        return callback_kwargs

    def everything(pipe, i, t, callback_kwargs):
        assert sorted(callback_kwargs) == sorted(pipe._callback_tensor_inputs)
        return callback_kwargs

    def zero_last(pipe, i, t, callback_kwargs):
        if i == pipe.num_timesteps - 1:
            callback_kwargs["latents"] = torch.zeros_like(callback_kwargs["latents"])
        return callback_kwargs

    run(pipe, callback_on_step_end=subset, callback_on_step_end_tensor_inputs=["latents"], **kwargs)
    run(pipe, callback_on_step_end=everything, callback_on_step_end_tensor_inputs=pipe._callback_tensor_inputs, **kwargs)
    output = run(pipe, callback_on_step_end=zero_last, callback_on_step_end_tensor_inputs=pipe._callback_tensor_inputs, **kwargs)
    assert output.abs().sum() == 0


@pytest.mark.parametrize("family", DENOISERS)
def test_callback_cfg_as_diffusers_tests_it(family):
    """diffusers' `PipelineTesterMixin.test_callback_cfg`: a callback raises guidance by 1 each step."""
    pipe = DENOISERS[family](num_classes=3)

    def increase_guidance(pipe, i, t, callback_kwargs):
        pipe._guidance_scale += 1.0
        return callback_kwargs

    run(pipe, class_labels=1, guidance_scale=2.0, callback_on_step_end=increase_guidance,
        callback_on_step_end_tensor_inputs=pipe._callback_tensor_inputs)
    assert pipe.guidance_scale == 2.0 + pipe.num_timesteps


def unet_batch_sizes(pipe) -> list[int]:
    """The batch of every UNet call from now on: 2B while guiding (both halves), B after."""
    sizes = []
    pipe.unet.register_forward_pre_hook(lambda module, args, kwargs: sizes.append(len(args[0])), with_kwargs=True)
    return sizes


@pytest.mark.parametrize("family", DENOISERS)
def test_the_cfg_cutoff_callback_switches_guidance_off_at_its_step(family):
    pipe = DENOISERS[family](num_classes=3)
    sizes = unet_batch_sizes(pipe)
    guided = lambda **kw: run(pipe, class_labels=[0, 2], guidance_scale=3.0, num_inference_steps=5, output_type="pt", **kw)

    full = guided()
    cut = guided(callback_on_step_end=ClassCFGCutoffCallback(cutoff_step_ratio=0.4))  # int(5 * 0.4) = step 2
    assert sizes == [4] * 5 + [4, 4, 4, 2, 2]  # steps 0-2 guide; after step 2's callback only the conditional half
    assert pipe.guidance_scale == 0.0
    assert not torch.equal(cut, full)

    # The same as turning guidance off by hand at that step: the callback drops the labels' unconditional half...
    def off_after_step_2(pipe, i, t, callback_kwargs):
        if i == 2:
            pipe._guidance_scale = 0.0  # ...and a callback that only sets the scale gets the same result
        return callback_kwargs

    torch.testing.assert_close(guided(callback_on_step_end=off_after_step_2), cut, rtol=0, atol=0)
    torch.testing.assert_close(guided(callback_on_step_end=ClassCFGCutoffCallback(cutoff_step_ratio=None, cutoff_step_index=2)), cut, rtol=0, atol=0)
    torch.testing.assert_close(guided(callback_on_step_end=ClassCFGCutoffCallback(cutoff_step_ratio=1.0)), full, rtol=0, atol=0)  # never reached

    def bad_labels(pipe, i, t, callback_kwargs):
        return {"class_labels": callback_kwargs["class_labels"][:1]}

    with pytest.raises(ValueError, match="class_labels holds 1 labels for 2 images"):
        guided(callback_on_step_end=bad_labels, callback_on_step_end_tensor_inputs=["class_labels"])


def test_a_pixel_callback_sees_num_timesteps_and_can_change_the_temperature():
    pipe = tiny_pixel_gpt()
    sample = lambda **kw: pipe(batch_size=2, generator=torch.manual_seed(0), output_type="pt", **kw).images.flatten(1)
    plain = sample()
    assert pipe.num_timesteps == 64 and pipe.temperature == 1.0

    def greedy_after_half(pipe, i, position, callback_kwargs):
        if i == pipe.num_timesteps // 2 - 1:
            pipe._temperature = 1e-4
        return callback_kwargs

    cooled = sample(callback_on_step_end=greedy_after_half)
    assert pipe.temperature == 1e-4
    torch.testing.assert_close(cooled[:, :32], plain[:, :32], rtol=0, atol=0)  # the same draws up to the change
    assert not torch.equal(cooled[:, 32:], plain[:, 32:])
    torch.testing.assert_close(cooled, sample(temperature=1.0, callback_on_step_end=greedy_after_half), rtol=0, atol=0)

    def invalid(pipe, i, position, callback_kwargs):
        pipe._temperature = float("nan")
        return callback_kwargs

    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        sample(callback_on_step_end=invalid)


@pytest.mark.parametrize("build", [tiny_gan, tiny_vae, tiny_pixel_gpt])
def test_pipelines_without_latents_refuse_latent_output_by_name(build):
    with pytest.raises(ValueError, match=f"output_type must be .* got 'latent': {build().__class__.__name__} has no latents"):
        build()(batch_size=1, output_type="latent")
