"""The VAE model and pipeline: round trip, likelihoods that normalise, latent walks, and clear errors."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image
from transformers import AutoConfig, AutoModel

from hfgen import VAEConfig, VAEModel, VAEPipeline
from hfgen.families.vae.distributions import LIKELIHOODS, DiagonalGaussian
from hfgen.families.vae.latent_mixture import LatentMixture
from hfgen.families.vae.objective import VAEArguments


def tiny_pipeline(**config) -> VAEPipeline:
    torch.manual_seed(0)
    config = {"image_size": 8, "grey_levels": 17, "latent_dim": 4, "block_out_channels": (8, 16), "hidden_dim": 32} | config
    return VAEPipeline(vae=VAEModel(VAEConfig(**config)).eval())


def digits_like(batch: int = 6, seed: int = 0) -> torch.Tensor:
    """(B, 1, 8, 8) pixels on the 17 grey levels of the digits data, in [-1, 1]."""
    levels = torch.randint(0, 17, (batch, 1, 8, 8), generator=torch.Generator().manual_seed(seed))
    return levels / 16 * 2 - 1


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    pipe = tiny_pipeline()
    images = digits_like()
    samples = pipe(batch_size=3, generator=torch.manual_seed(7), output_type="pt").images
    bound = pipe.log_likelihood((images + 1) / 2, k=8, generator=torch.manual_seed(1))
    pipe.save_pretrained(tmp_path)
    assert (tmp_path / "vae" / "model.safetensors").is_file()
    loaded = VAEPipeline.from_pretrained(tmp_path, use_safetensors=True)
    assert loaded.vae.config.to_diff_dict() | {"_name_or_path": ""} == pipe.vae.config.to_diff_dict() | {"_name_or_path": ""}
    assert torch.equal(loaded(batch_size=3, generator=torch.manual_seed(7), output_type="pt").images, samples)
    assert torch.equal(loaded.log_likelihood((images + 1) / 2, k=8, generator=torch.manual_seed(1)), bound)
    assert not torch.equal(loaded(batch_size=3, generator=torch.manual_seed(8), output_type="pt").images, samples)
    # The transformers Auto classes know the model too (registered when hfgen is imported).
    assert isinstance(AutoConfig.from_pretrained(tmp_path / "vae"), VAEConfig)
    assert isinstance(AutoModel.from_pretrained(tmp_path / "vae"), VAEModel)


@pytest.mark.parametrize("likelihood", ["categorical", "logistic", "bernoulli"])
def test_discrete_likelihoods_sum_to_one_over_the_grey_levels(likelihood):
    config = VAEConfig(image_size=8, grey_levels=5, likelihood=likelihood)
    decoder_likelihood = LIKELIHOODS[likelihood](config)
    params = torch.randn(7, config.parameters_per_pixel, 1, 1, 1, generator=torch.Generator().manual_seed(0)) * 3
    levels = range(5) if likelihood != "bernoulli" else (0, 4)  # Bernoulli models binarised pixels: 2 values
    log_probs = torch.stack([decoder_likelihood.log_prob(params, torch.full((7, 1, 1, 1), level / 4 * 2 - 1)) for level in levels])
    torch.testing.assert_close(torch.logsumexp(log_probs, 0), torch.zeros(7), atol=1e-5, rtol=0)


def test_kl_matches_a_monte_carlo_estimate_and_is_never_negative():
    generator = torch.Generator().manual_seed(0)
    posterior = DiagonalGaussian(torch.randn(3, 5, generator=generator), torch.randn(3, 5, generator=generator))
    z = posterior.sample(generator, num_samples=200_000)  # (S, 3, 5)
    prior_log_prob = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    monte_carlo = (posterior.log_prob(z) - prior_log_prob).mean(0)
    torch.testing.assert_close(posterior.kl().sum(1), monte_carlo, atol=0.05, rtol=0.02)
    assert (posterior.kl() >= 0).all()


def test_kl_of_bf16_statistics_is_float32_and_never_negative():
    """Under bf16 autocast the encoder's statistics are bf16; near logvar = 0, exp(logvar) - 1 - logvar cancels."""
    mean, logvar = torch.zeros(2, 4, dtype=torch.bfloat16), torch.full((2, 4), 0.01, dtype=torch.bfloat16)
    kl = DiagonalGaussian(mean, logvar).kl()
    assert kl.dtype == torch.float32 and (kl > 0).all()
    torch.testing.assert_close(kl, DiagonalGaussian(mean.float(), logvar.float()).kl())


@pytest.mark.parametrize(
    ("config", "extra"),
    [
        ({"likelihood": "categorical"}, {}),
        ({"likelihood": "logistic"}, {}),
        ({"likelihood": "bernoulli"}, {}),
        ({"likelihood": "gaussian"}, {}),
        ({"likelihood": "gaussian", "gaussian_variance": "learned"}, {}),
        ({"image_size": 28, "grey_levels": 256}, {}),
        ({"image_size": 16, "num_channels": 3, "block_out_channels": (8, 8, 16)}, {}),
        ({"beta": 4.0}, {"free_bits": 0.5}),
    ],
)
def test_forward_gives_every_loss_term(config, extra):
    vae = tiny_pipeline(**config).vae.train()
    c = vae.config
    images = (torch.rand(5, c.num_channels, c.image_size, c.image_size) * 2 - 1)
    out = vae(images, **extra)
    assert out.reconstruction.shape == images.shape and out.latents.shape == (5, c.latent_dim)
    assert out.reconstruction.min() >= -1 and out.reconstruction.max() <= 1
    assert out.kl >= 0 and out.loss.ndim == 0
    if not extra:
        torch.testing.assert_close(out.loss, out.reconstruction_loss + c.beta * out.kl)
    out.loss.backward()
    assert all(p.grad is not None for p in vae.parameters())


def test_free_bits_only_lift_small_kl_terms():
    vae = tiny_pipeline().vae
    images = digits_like()
    plain = vae(images, generator=torch.manual_seed(0))
    lifted = vae(images, free_bits=10.0, generator=torch.manual_seed(0))
    # Each of the 4 latent dimensions of a fresh model has KL far below 10 nats: the KL term becomes 4 * 10.
    torch.testing.assert_close(lifted.loss, plain.reconstruction_loss + 4 * 10.0)
    torch.testing.assert_close(lifted.kl, plain.kl)  # the logged KL is the true one


def test_bernoulli_binarises_the_data_it_models():
    vae = tiny_pipeline(likelihood="bernoulli").vae
    grey = digits_like()
    binary = torch.where(grey > 0, 1.0, -1.0)
    torch.testing.assert_close(vae.elbo(grey, torch.manual_seed(0)), vae.elbo(binary, torch.manual_seed(0)))


def test_iwae_bound_is_finite_and_chunking_only_changes_the_samples_drawn():
    vae = tiny_pipeline().vae
    images = digits_like(4)
    bound = vae.log_likelihood(images, k=50, batch_size=1000, generator=torch.manual_seed(0))
    assert bound.shape == (4,) and torch.isfinite(bound).all()
    # 7 (image, sample) pairs per decoder call instead of 200: other random draws, the same estimate.
    chunked = vae.log_likelihood(images, k=50, batch_size=7, generator=torch.manual_seed(0))
    torch.testing.assert_close(chunked, bound, atol=0.1, rtol=0)


def test_pipeline_output_types_and_latent_walks():
    pipe = tiny_pipeline()
    pil = pipe(batch_size=2, generator=torch.manual_seed(0)).images
    assert len(pil) == 2 and pil[0].size == (8, 8) and pil[0].mode == "L"
    array = pipe(batch_size=2, generator=torch.manual_seed(0), output_type="np").images
    assert array.shape == (2, 8, 8, 1) and 0 <= array.min() and array.max() <= 1
    (tensor,) = pipe(batch_size=1, generator=torch.manual_seed(0), output_type="pt", return_dict=False)
    assert tensor.shape == (1, 1, 8, 8)

    a, b = (digits_like(2) + 1) / 2  # the pipeline takes images in [0, 1], the range it outputs
    strip = pipe.interpolate(a, b, num_frames=5, output_type="pt").images
    assert strip.shape == (5, 1, 8, 8)
    ends = pipe.reconstruct(torch.stack([a, b]), output_type="pt").images
    torch.testing.assert_close(strip[[0, -1]], ends)
    # PIL input goes through hfgen.data.images_to_tensor at the model's size and channels.
    from_pil = pipe.reconstruct([Image.new("RGB", (32, 32), (255, 255, 255))], output_type="pt").images
    assert from_pil.shape == (1, 1, 8, 8)
    elbo = pipe.elbo(torch.stack([a, b]))
    assert elbo.shape == (2,) and (elbo < 0).all()
    with pytest.raises(ValueError, match=r"must be in \[0, 1\].*\(x \+ 1\) / 2"):
        pipe.reconstruct(torch.stack([a, b]) * 2 - 1)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda vae: vae.encode(torch.zeros(2, 3, 8, 8)), ValueError, r"takes images of shape \(B, 1, 8, 8\)"),
        (lambda vae: vae(torch.zeros(2, 1, 28, 28)), ValueError, r"got \(2, 1, 28, 28\)"),
        (lambda vae: vae.log_likelihood(torch.zeros(1, 8, 8)), ValueError, "images_to_tensor"),
        (lambda vae: vae.encode(torch.full((1, 1, 8, 8), 255.0)), ValueError, r"must be in \[-1, 1\]"),
        (lambda vae: vae.encode([[0.0]]), TypeError, "must be a torch.Tensor"),
        (lambda vae: vae.decode(torch.zeros(2, 5)), ValueError, r"latents of shape \(batch, 4\)"),
        (lambda vae: vae.decode(torch.zeros(4)), ValueError, r"latents of shape \(batch, 4\)"),
        (lambda vae: vae.log_likelihood(torch.zeros(1, 1, 8, 8), k=0), ValueError, "k .* must be positive"),
        (lambda vae: vae.log_likelihood(torch.zeros(1, 1, 8, 8), batch_size=0), ValueError, "batch_size"),
        (lambda vae: vae(torch.zeros(1, 1, 8, 8), beta=-1.0), ValueError, "beta and free_bits must be >= 0"),
        (lambda vae: vae.sample(0), ValueError, "num must be positive"),
    ],
)
def test_bad_model_inputs_get_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call(tiny_pipeline().vae)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beta": -0.5}, "beta must be >= 0"),
        ({"image_size": 30}, "not divisible by 2 \\*\\* 2 = 4"),
        ({"likelihood": "poisson"}, "likelihood must be"),
        ({"num_channels": 2}, "num_channels must be 1"),
        ({"grey_levels": 1}, "grey_levels must be at least 2"),
        ({"gaussian_variance": "per_image"}, "gaussian_variance must be"),
    ],
)
def test_bad_configs_get_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VAEConfig(**kwargs)


def test_bad_training_options_and_pipeline_calls_get_clear_errors():
    with pytest.raises(ValueError, match="--beta must be >= 0"):
        VAEArguments(beta=-1.0)
    with pytest.raises(ValueError, match="--kl_warmup_steps"):
        VAEArguments(kl_warmup_steps=-1)
    with pytest.raises(ValueError, match="--free_bits"):
        VAEArguments(free_bits=-0.1)
    pipe = tiny_pipeline()
    with pytest.raises(ValueError, match="batch_size must be positive"):
        pipe(batch_size=0)
    with pytest.raises(ValueError, match="num_frames must be at least 2"):
        pipe.interpolate(digits_like(1)[0], digits_like(1)[0], num_frames=1)
    with pytest.raises(TypeError, match="PIL images or a"):
        pipe.reconstruct("digit.png")
    assert math.isclose(pipe.vae.num_dimensions, 64)


def test_the_latent_mixture_recovers_two_clusters_and_samples_them_by_weight():
    generator = torch.Generator().manual_seed(0)
    spread = torch.tensor([[1.0, 0.0], [0.8, 0.3]])  # a correlated cluster: the Cholesky factor must carry it
    left = torch.randn(600, 2, generator=generator) @ spread.T * 0.2 + torch.tensor([-3.0, 0.0])
    right = torch.randn(200, 2, generator=generator) * 0.2 + torch.tensor([3.0, 1.0])
    mixture = LatentMixture(2, 2)
    mixture.fit(torch.cat([left, right]))
    draws = mixture.sample(4000, torch.Generator().manual_seed(1))
    assert torch.equal(draws, mixture.sample(4000, torch.Generator().manual_seed(1)))
    from_left = draws[draws[:, 0] < 0]
    assert abs(len(from_left) / 4000 - 0.75) < 0.03
    torch.testing.assert_close(from_left.mean(0), left.mean(0), atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(from_left.T), torch.cov(left.T), atol=0.01, rtol=0)
    with pytest.raises(ValueError, match="needs at least as many training images"):
        LatentMixture(5, 2).fit(left[:3])


def test_latent_mixture_bad_input_names_the_fix():
    pipe = VAEPipeline(vae=VAEModel(VAEConfig(image_size=8, grey_levels=17, block_out_channels=(8,))))
    with pytest.raises(ValueError, match="train it with --latent_mixture_components 10"):
        pipe(batch_size=2, latent_sampler="mixture")
    with pytest.raises(ValueError, match="Unknown latent_sampler 'gmm'"):
        pipe(batch_size=2, latent_sampler="gmm")
    with pytest.raises(ValueError, match="0 with a spatial latent"):
        VAEConfig(image_size=8, block_out_channels=(8,), spatial_latent=True, latent_mixture_components=3)
    assert VAEModel(VAEConfig(image_size=8, grey_levels=17, block_out_channels=(8,), latent_mixture_components=3)).latent_mixture.means.shape == (3, 16)
    # a model without one (older folders, --latent_mixture_components 0) samples the prior when none is asked for
    pipe(batch_size=2)


@pytest.mark.parametrize(("options", "components"), [({}, 10), ({"spatial_latent": True}, 0), ({"latent_mixture_components": 0}, 0)])
def test_training_fits_a_latent_mixture_by_default_for_vector_latents(options, components):
    assert VAEArguments(**options).vae_config(8, 1, 17).latent_mixture_components == components
    assert VAEArguments(**options).vae_config(8, 1, 17, training_images=8).latent_mixture_components == 0  # too few: the prior
    with pytest.raises(ValueError, match="--latent_mixture_components 12 needs at least as many training images, got 8"):
        VAEArguments(latent_mixture_components=12).vae_config(8, 1, 17, training_images=8)
