"""GAN models, pipeline and losses in-process: save/load, latent walks, truncation, bad inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hfgen import GANConfig, GANDiscriminator, GANGenerator, GANPipeline
from hfgen.loading import load_pipeline
from hfgen.arguments import DataArguments
from hfgen.objective import PreparedModules
from hfgen.randomness import SampleRandomness
from hfgen.families.gan.diffaugment import diff_augment, parse_policy
from hfgen.families.gan.objective import LOSSES, GANArguments, GANObjective

TINY = {"latent_dim": 16, "generator_channels": 16, "discriminator_channels": 8}


def tiny_pipeline(num_classes: int | None = None, with_discriminator: bool = True, **config) -> GANPipeline:
    torch.manual_seed(0)
    config = GANConfig(**TINY, num_classes=num_classes, **config)
    # eval(): batch norm then uses its running statistics, as a loaded pipeline does
    discriminator = GANDiscriminator(config).eval() if with_discriminator else None
    return GANPipeline(gan_generator=GANGenerator(config).eval(), discriminator=discriminator)


def test_save_load_round_trip_gives_identical_samples_and_both_networks(tmp_path):
    pipe = tiny_pipeline(num_classes=10)
    pipe.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"model_index.json", "gan_generator", "discriminator"}
    assert sorted(p.name for p in (tmp_path / "discriminator").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_pipeline(str(tmp_path))
    assert isinstance(loaded, GANPipeline)

    expected = pipe(batch_size=6, generator=torch.manual_seed(3), class_labels=[1, 2, 3, 4, 5, 6], output_type="pt").images
    got = loaded(batch_size=6, generator=torch.manual_seed(3), class_labels=[1, 2, 3, 4, 5, 6], output_type="pt").images
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)

    for name in ("gan_generator", "discriminator"):
        before, after = getattr(pipe, name).state_dict(), getattr(loaded, name).state_dict()
        assert before.keys() == after.keys()
        for key in before:  # spectral norm's power-iteration vectors included
            assert torch.equal(before[key], after[key]), f"{name}.{key} changed in the round trip"
    images = torch.rand(4, 1, 8, 8) * 2 - 1
    labels = torch.tensor([0, 3, 5, 9])
    expected_logits = pipe.discriminator(images, labels).logits
    torch.testing.assert_close(loaded.discriminator(images, labels).logits, expected_logits, rtol=0, atol=1e-6)


def test_generator_only_pipeline_saves_and_loads_without_discriminator(tmp_path):
    tiny_pipeline(with_discriminator=False).save_pretrained(tmp_path)
    loaded = GANPipeline.from_pretrained(tmp_path)
    assert loaded.discriminator is None
    assert len(loaded(batch_size=2, generator=torch.manual_seed(0)).images) == 2


@pytest.mark.parametrize("image_size,channels", [(8, 1), (28, 1), (32, 3)])
def test_networks_size_themselves_from_the_config(image_size, channels):
    config = GANConfig(**TINY, image_size=image_size, num_channels=channels)
    images = GANGenerator(config)(torch.randn(3, 16)).sample
    assert images.shape == (3, channels, image_size, image_size)
    assert images.min() >= -1 and images.max() <= 1
    assert GANDiscriminator(config)(images).logits.shape == (3,)


def test_output_types_and_seeded_determinism():
    pipe = tiny_pipeline()
    pil = pipe(batch_size=2, generator=torch.manual_seed(0)).images
    array = pipe(batch_size=2, generator=torch.manual_seed(0), output_type="np").images
    tensor = pipe(batch_size=2, generator=torch.manual_seed(0), output_type="pt").images
    assert pil[0].size == (8, 8) and array.shape == (2, 8, 8, 1) and tensor.shape == (2, 1, 8, 8)
    assert 0 <= tensor.min() and tensor.max() <= 1
    torch.testing.assert_close(torch.from_numpy(array).permute(0, 3, 1, 2), tensor)
    assert not torch.equal(tensor, pipe(batch_size=2, generator=torch.manual_seed(1), output_type="pt").images)


def test_truncation_scales_the_latent_towards_the_mean():
    pipe = tiny_pipeline()
    latents = pipe.prepare_latents(4, torch.manual_seed(0))
    plain = pipe(batch_size=4, generator=torch.manual_seed(0), output_type="pt").images
    torch.testing.assert_close(pipe(batch_size=4, latents=latents, output_type="pt").images, plain)
    torch.testing.assert_close(pipe(batch_size=4, generator=torch.manual_seed(0), truncation=1.0, output_type="pt").images, plain)
    truncated = pipe(batch_size=4, generator=torch.manual_seed(0), truncation=0.5, output_type="pt").images
    torch.testing.assert_close(truncated, pipe(batch_size=4, latents=latents * 0.5, output_type="pt").images)
    assert not torch.allclose(truncated, plain)


def test_interpolation_walks_from_one_latent_to_the_other():
    pipe = tiny_pipeline(num_classes=10)
    start, end = pipe.prepare_latents(2, torch.manual_seed(0))
    frames = pipe.interpolate(start, end, num_frames=5, class_labels=7, output_type="pt").images
    assert frames.shape == (5, 1, 8, 8)
    ends = pipe(batch_size=2, latents=torch.stack([start, end]), class_labels=7, output_type="pt").images
    torch.testing.assert_close(frames[[0, -1]], ends, rtol=0, atol=1e-5)
    steps = (frames[1:] - frames[:-1]).abs().mean(dim=(1, 2, 3))
    assert (steps > 0).all()  # every frame moves on


def test_conditional_pipeline_uses_the_class():
    pipe = tiny_pipeline(num_classes=10)
    threes = pipe(batch_size=2, generator=torch.manual_seed(0), class_labels=3, output_type="pt").images
    sevens = pipe(batch_size=2, generator=torch.manual_seed(0), class_labels=7, output_type="pt").images
    assert not torch.allclose(threes, sevens)


def test_discriminator_loss_is_bce_with_logits_on_real_fake_labels():
    config = GANConfig(**TINY)
    discriminator = GANDiscriminator(config)
    images, labels = torch.rand(6, 1, 8, 8) * 2 - 1, torch.tensor([1, 1, 1, 0, 0, 0])
    output = discriminator(images, labels=labels)
    torch.testing.assert_close(output.loss, F.binary_cross_entropy_with_logits(output.logits, labels.float()))


def test_losses_on_logits():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    non_saturating = LOSSES["non_saturating"]
    expected = F.binary_cross_entropy_with_logits(real, torch.ones(2)) + F.binary_cross_entropy_with_logits(fake, torch.zeros(2))
    torch.testing.assert_close(non_saturating.discriminator(real, fake), expected)
    torch.testing.assert_close(non_saturating.generator(fake), F.binary_cross_entropy_with_logits(fake, torch.ones(2)))
    torch.testing.assert_close(LOSSES["hinge"].discriminator(real, fake), torch.tensor((0 + 2 + 1.5 + 0) / 2))
    torch.testing.assert_close(LOSSES["wgan_gp"].discriminator(real, fake), fake.mean() - real.mean())


def test_phases_have_their_own_learning_rates_and_betas():
    arguments = GANArguments(generator_learning_rate=1e-4, discriminator_learning_rate=4e-4, adam_betas=[0.0, 0.99])
    specs = GANObjective(arguments, DataArguments()).optimizers()
    assert list(specs) == ["discriminator", "generator"]
    assert specs["discriminator"].learning_rate == 4e-4 and specs["generator"].learning_rate == 1e-4
    assert specs["generator"].betas == (0.0, 0.99) and specs["discriminator"].modules == ("discriminator",)


@pytest.mark.parametrize(
    "num_classes,call,message",
    [
        (None, {"class_labels": 3}, "unconditional"),
        (10, {"class_labels": 10}, r"in \[0, 9\]"),
        (10, {"class_labels": [1, 2, 3]}, "Got 3 class_labels for batch_size 2: pass one label or one per image"),
        (None, {"truncation": 0.0}, r"truncation must be in \(0, 1\]"),
        (None, {"truncation": -0.5}, r"truncation must be in \(0, 1\]"),
        (None, {"latents": torch.randn(2, 17)}, r"latents must have shape \(batch_size, latent_dim\) = \(2, 16\)"),
        (None, {"output_type": "jpeg"}, "output_type must be"),
    ],
)
def test_bad_sampling_inputs_get_clear_errors(num_classes, call, message):
    with pytest.raises(ValueError, match=message):
        tiny_pipeline(num_classes=num_classes)(batch_size=2, **call)


def test_bad_network_and_walk_inputs_get_clear_errors():
    pipe = tiny_pipeline(num_classes=10)
    with pytest.raises(ValueError, match=r"latents must have shape \(batch_size, 16\)"):
        pipe.gan_generator(torch.randn(2, 8), class_labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="class-conditional .* pass class_labels"):
        pipe.gan_generator(torch.randn(2, 16))
    with pytest.raises(ValueError, match="resize the images to 8 pixels"):
        pipe.discriminator(torch.randn(2, 1, 28, 28), class_labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"start must be one latent of shape \(16,\)"):
        pipe.interpolate(torch.randn(3, 16), torch.randn(16))
    with pytest.raises(ValueError, match="num_frames must be at least 2"):
        pipe.interpolate(torch.randn(16), torch.randn(16), num_frames=1)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"loss": "least_squares"}, "Unknown loss 'least_squares': use one of non_saturating, hinge, wgan_gp"),
        ({"r1_gamma": -1.0}, "--r1_gamma must be >= 0"),
        ({"adam_betas": [0.5]}, "--adam_betas needs two values"),
        ({"generator_learning_rate": 0.0}, "--generator_learning_rate must be positive"),
        ({"loss": "wgan_gp", "discriminator_norm": "batch"}, "use --discriminator_norm layer or none"),
    ],
)
def test_bad_training_options_get_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GANArguments(**kwargs)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_channels": 2}, "1 \\(grey\\) or 3 \\(RGB\\)"),
        ({"latent_dim": 0}, "latent_dim must be a positive integer"),
        ({"num_classes": 1}, "num_classes must be None"),
        ({"generator_norm": "instance"}, "generator_norm must be one of batch, layer, none"),
    ],
)
def test_bad_configs_get_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GANConfig(**kwargs)


def _objective(**kwargs) -> tuple[GANObjective, PreparedModules, dict[str, torch.Tensor]]:
    objective = GANObjective(GANArguments(**TINY, **kwargs), DataArguments())
    torch.manual_seed(0)
    modules = PreparedModules(objective.build_modules(), unwrap=lambda module: module)
    batch = objective.train_dataset()[list(range(8))]
    return objective, modules, batch


def test_penalties_are_logged_and_r1_is_the_squared_gradient_norm_on_real_images():
    objective, modules, batch = _objective(loss="wgan_gp", r1_gamma=2.0, discriminator_norm="layer", class_conditional=True)
    output = objective.compute_loss("discriminator", batch, modules, SampleRandomness(0, range(8), step=0))
    assert {"d_real_logit", "d_fake_logit", "d_accuracy", "r1_penalty", "gradient_penalty"} <= output.logs.keys()
    assert all(torch.isfinite(v) for v in output.logs.values()) and torch.isfinite(output.loss)

    real = batch["pixel_values"].clone().requires_grad_(True)
    modules["discriminator"].eval()  # reuse spectral norm's current estimate instead of iterating it once more
    (gradient,) = torch.autograd.grad(modules["discriminator"](real, class_labels=batch["labels"]).logits.sum(), real)
    torch.testing.assert_close(output.logs["r1_penalty"], gradient.flatten(1).square().sum(1).mean())
    output.loss.backward()  # the penalties are differentiable (double backward)
    assert all(p.grad is not None for p in modules["discriminator"].parameters())


def test_generator_phase_scores_fakes_with_the_discriminator():
    objective, modules, batch = _objective(loss="non_saturating")
    modules["discriminator"].requires_grad_(False)  # as the Trainer freezes the other phase
    output = objective.compute_loss("generator", batch, modules, SampleRandomness(0, range(8), step=0))
    output.loss.backward()
    assert all(p.grad is not None for p in modules["generator"].parameters())
    assert all(p.grad is None for p in modules["discriminator"].parameters())


def test_init_from_a_saved_gan_continues_both_networks(tmp_path):
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path / "gan")
    objective = GANObjective(GANArguments(init_from=str(tmp_path / "gan")), DataArguments())
    modules = objective.build_modules()
    for name, saved in (("generator", pipe.gan_generator), ("discriminator", pipe.discriminator)):
        assert all(torch.equal(a, b) for a, b in zip(modules[name].state_dict().values(), saved.state_dict().values()))
        assert modules[name].training
    tiny_pipeline(with_discriminator=False).save_pretrained(tmp_path / "generator-only")
    with pytest.raises(ValueError, match="saved without its discriminator"):
        GANObjective(GANArguments(init_from=str(tmp_path / "generator-only")), DataArguments())


def test_diffaugment_translation_shifts_whole_pixels_and_cutout_zeroes_a_half_side_square():
    randomness = SampleRandomness(0, range(16), step=0)
    images = torch.rand(16, 3, 8, 8) * 2 - 1
    shifted = diff_augment(images, ["translation"], randomness, "test")
    dy = randomness.integers("test/translation/y", 3, (1, 1)).flatten() - 1  # 8 px: shifts of up to 1 pixel
    dx = randomness.integers("test/translation/x", 3, (1, 1)).flatten() - 1
    padded = F.pad(images, [1, 1, 1, 1])
    for b in range(16):  # output pixel (i, j) reads input (i + dy, j + dx), zero outside
        assert torch.equal(shifted[b], padded[b, :, 1 + dy[b] : 9 + dy[b], 1 + dx[b] : 9 + dx[b]])
    assert len({(int(y), int(x)) for y, x in zip(dy, dx)}) > 1
    cut = diff_augment(torch.ones(16, 1, 8, 8), ["cutout"], randomness, "test")
    zeros = (cut == 0).sum(dim=(1, 2, 3))
    assert ((cut == 0) | (cut == 1)).all() and (zeros <= 16).all() and (zeros > 0).all() and (zeros == 16).any()


def test_diffaugment_is_drawn_per_sample_differentiable_and_resumable():
    images = (torch.rand(4, 3, 8, 8) * 2 - 1).requires_grad_()
    policy = parse_policy("color,translation,cutout")
    first = diff_augment(images, policy, SampleRandomness(0, range(4), step=0), "d/real")
    again = diff_augment(images, policy, SampleRandomness(0, range(4), step=7), "d/real")  # the draws follow the samples
    halves = torch.cat([diff_augment(images[:2], policy, SampleRandomness(0, range(2), step=0), "d/real"),
                        diff_augment(images[2:], policy, SampleRandomness(0, range(2, 4), step=0), "d/real")])
    assert torch.equal(first, again) and torch.equal(first, halves)
    assert not torch.equal(first, diff_augment(images, policy, SampleRandomness(0, range(4), step=0), "d/fake"))
    first.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_diffaugment_changes_what_the_discriminator_sees_in_both_losses():
    losses = {}
    for policy in ("", "color,translation,cutout"):
        objective, modules, batch = _objective(diffaugment=policy, discriminator_norm="layer")
        losses[policy] = [objective.compute_loss(phase, batch, modules, SampleRandomness(0, range(8), step=0)).loss
                          for phase in ("discriminator", "generator")]
    assert all(not torch.equal(a, b) for a, b in zip(losses[""], losses["color,translation,cutout"]))
    with pytest.raises(ValueError, match="unknown 'flip'; use a comma-separated subset of color,translation,cutout"):
        GANArguments(diffaugment="color,flip")
