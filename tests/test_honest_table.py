"""The zoo table tells the truth: matched sizes, error bars, checked inputs, diffusion bits/dim, a DDIM that converges."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
from diffusers import DDIMScheduler

from hfgen.cli import main
from hfgen.evaluation import GenerativeMetrics, Evaluator, bits_per_dim, load_judge
from hfgen.evaluation.baselines import held_out_images, kde_images, real_images, smote_images
from hfgen.zoo.run import ZooArguments, train_argv
from hfgen.families.diffusion.likelihood import stratified_timesteps
from hfgen.loading import load_pipeline
from hfgen.training.launch import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def diffusion(tmp_path_factory):
    """A tiny digits diffusion model trained for 300 steps by the real loop, and the untrained one."""
    folder = tmp_path_factory.mktemp("diffusion") / "model"
    train("diffusion", train_argv(ZooArguments(budget="tiny", max_steps=300), "diffusion", folder))
    trained = load_pipeline(str(folder))
    untrained = load_pipeline(str(folder))
    torch.manual_seed(0)
    for module in untrained.unet.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    for pipe in (trained, untrained):
        pipe.set_progress_bar_config(disable=True)
    return trained, untrained


def test_floor_and_model_rows_share_n_and_carry_error_bars(extractor_cache, tmp_path):
    assert main(["zoo", "--budget", "tiny", "--families", "vae", "--output_dir", str(tmp_path), "--num_samples", "64"]) == 0
    results = json.loads((tmp_path / "metrics.json").read_text())
    rows = results["rows"]
    assert list(rows) == [
        "vae (decoder mean)", "vae (decoder sample)",
        "*real test images*", "*scikit-learn KDE*", "*SMOTE*", "*Gaussian noise*",
    ]
    assert {row["subset_size"] for row in rows.values()} == {32}  # half of the 64 samples, for the floor too
    assert rows["*real test images*"]["num_images"] == 200 and rows["vae (decoder mean)"]["num_images"] == 64
    for name, row in rows.items():
        for key in ("fid", "kid", "precision", "recall"):
            assert math.isfinite(row[key]) and row[f"{key}_error"] >= 0, (name, key)
        assert row["fid_error"] > 0 and row["kid_error"] > 0, name
    assert rows["*real test images*"]["fid"] < rows["*Gaussian noise*"]["fid"] - 3 * rows["*Gaussian noise*"]["fid_error"]
    # one model, two decodings: the same likelihood, other samples
    mean, sample = rows["vae (decoder mean)"], rows["vae (decoder sample)"]
    assert mean["bits_per_dim"] == sample["bits_per_dim"] > 0
    assert mean["bits_per_dim_error"] == sample["bits_per_dim_error"] > 0
    assert mean["bits_per_dim_images"] == 300 and rows["*SMOTE*"].get("bits_per_dim_images") is None  # the whole test split
    assert mean["nn_distance"] != sample["nn_distance"]
    assert " ± " in (tmp_path / "README.md").read_text()


def test_bits_per_dim_on_a_seeded_subset_of_the_test_split(extractor_cache):
    whole = Evaluator("digits", seed=0)
    subset = Evaluator("digits", seed=0, likelihood_images=50).likelihood_test
    assert len(subset) == 50 and torch.equal(subset, Evaluator("digits", seed=0, likelihood_images=50).likelihood_test)
    assert not torch.equal(subset, whole.test[:50])  # random, not the first 50
    indices = [int(torch.nonzero((whole.test == image).flatten(1).all(1))[0]) for image in subset]
    assert len(set(indices)) == 50  # test images, none twice
    assert not torch.equal(subset, Evaluator("digits", seed=1, likelihood_images=50).likelihood_test)
    assert whole.likelihood_test is whole.test


def test_the_floor_has_a_random_class_mix_and_no_duplicates():
    test = real_images("digits", "test")
    labels = torch.arange(len(test)) % 10  # stratified: exactly 30 per class
    floor = held_out_images(test, labels, 200, seed=0)
    assert len(floor) == 200 and len(torch.unique(floor.flatten(1), dim=0)) == 200
    indices = [int(torch.nonzero((test == image).flatten(1).all(1))[0]) for image in floor]
    counts = torch.bincount(labels[indices], minlength=10)
    assert counts.sum() == 200 and len(set(counts.tolist())) > 1  # not 20 per class: multinomial counts
    with pytest.raises(ValueError, match="num must be in"):
        held_out_images(test, labels, 301)


def test_baselines_and_the_kde_clamp():
    train = real_images("digits", "train")
    smote = smote_images(train, 500, seed=0)
    assert smote.shape == (500, 1, 8, 8) and 0 <= smote.min() and smote.max() <= 1  # in range with no clamp
    raw = kde_images(train, 500, seed=0, clamp=False)
    outside = ((raw < 0) | (raw > 1)).float().mean()
    assert outside > 0.05  # the KDE's PCA ringing: a clamp is doing real work
    assert torch.equal(kde_images(train, 500, seed=0), raw.clamp(0, 1))


@pytest.mark.parametrize(
    ("images", "error", "message"),
    [
        ((torch.rand(32, 1, 8, 8) * 255).to(torch.uint8), TypeError, "float tensor in \\[0, 1\\], got dtype torch.uint8.*/ 255"),
        (torch.rand(32, 1, 8, 8) * 255, ValueError, "must be in \\[0, 1\\].*x / 255"),
        (torch.rand(32, 1, 8, 8) * 2 - 1, ValueError, "must be in \\[0, 1\\].*\\(x \\+ 1\\) / 2"),
    ],
)
def test_metric_entry_points_refuse_uint8_and_out_of_range(extractor_cache, images, error, message):
    train = real_images("digits", "train")
    metrics = GenerativeMetrics(load_judge("classifier"), train[:100])
    with pytest.raises(error, match=message):
        metrics(images)
    with pytest.raises(error, match=message):
        GenerativeMetrics(metrics.judge, images)
    with pytest.raises(error, match=message):
        metrics.judge(images)


def test_stratified_timesteps_cover_every_stratum():
    draws = stratified_timesteps(1, 999, 10, torch.Generator().manual_seed(0))
    assert len(draws) == 10 and sum(weight for _, weight in draws) == 999  # the strata tile 1..999
    ends = [1] + [1 + sum(w for _, w in draws[: i + 1]) for i in range(10)]
    assert all(low <= t < high for (t, _), low, high in zip(draws, ends, ends[1:]))  # one draw inside each
    assert draws[0] == (1, 1.0) and draws[-1][1] > 100  # narrow at low noise, wide at high noise
    assert [t for t, _ in stratified_timesteps(1, 999, 999, None)] == list(range(1, 1000))  # all of them: exact


def test_diffusion_bits_per_dim_is_a_sane_bound(diffusion):
    trained, untrained = diffusion
    test = real_images("digits", "test")[:64]
    dims = test[0].numel()

    def bpd(pipe, timesteps, seed=0):
        nats = pipe.log_likelihood(test, generator=torch.Generator().manual_seed(seed), num_timesteps=timesteps, grey_levels=17)
        assert nats.shape == (64,) and torch.isfinite(nats).all()
        return bits_per_dim(nats, dims)

    ours, theirs = bpd(trained, 50), bpd(untrained, 50)
    assert 0 < ours < theirs
    trained.use_scheduler("dpmsolver")  # what evaluation does before the bound: the bound stays the trained process's
    assert bpd(trained, 50) == ours
    trained.use_scheduler("ddpm")
    full = bpd(trained, 999)  # every term: the bound itself
    assert ours == pytest.approx(full, rel=0.15)  # the 50-term subsample estimates it
    with pytest.raises(ValueError, match="must be in \\[0, 1\\]"):
        trained.log_likelihood(test * 2 - 1)
    with pytest.raises(ValueError, match="num_timesteps .* must be positive"):
        trained.log_likelihood(test, num_timesteps=0)


def test_ddim_does_not_clip_and_converges_on_ddpm(diffusion):
    pipe, _ = diffusion
    assert pipe.noise_schedule.config.clip_sample  # the saved DDPM config clips, as diffusers' default does
    pipe.use_scheduler("ddim")
    assert isinstance(pipe.scheduler, DDIMScheduler) and pipe.scheduler.config.clip_sample is False
    with pytest.raises(ValueError, match="eta is DDIM's"):
        pipe.use_scheduler("dpmsolver", eta=0.5)

    def samples(name: str, steps: int, eta: float = 0.0) -> torch.Tensor:
        pipe.use_scheduler(name, eta=eta)
        generator = torch.Generator().manual_seed(0)  # the same initial noise for every sampler
        return pipe(batch_size=64, generator=generator, num_inference_steps=steps, output_type="pt").images

    def distance(a: torch.Tensor, b: torch.Tensor) -> float:
        return (a - b).square().mean().sqrt().item()  # RMS over pixels of the same images

    # Deterministic DDIM (eta = 0) solves the same probability-flow ODE as DPM-Solver++: from the same noise, more
    # steps must bring it closer to the ODE's solution. With the saved clip_sample=True it drifts away instead
    # (RMS 0.29 at 10 steps, 0.39 at 100 on this model; unclipped 0.06 and 0.05).
    solution = samples("dpmsolver", 50)
    few, many = samples("ddim", 10), samples("ddim", 100)
    assert distance(many, solution) <= distance(few, solution) + 0.01
    assert distance(many, solution) < 0.15
    assert not torch.equal(samples("ddim", 10, eta=1.0), few)  # eta reaches the scheduler's step


def test_few_step_fid_comparison_runs(diffusion, extractor_cache):
    spec = importlib.util.spec_from_file_location("bench_diffusion", ROOT / "scripts" / "bench_diffusion.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    pipe, _ = diffusion
    samplers = (("ddpm", 50), ("ddim", 5), ("dpmsolver", 5))
    rows = bench.few_step_quality(pipe, Evaluator("digits"), num_samples=64, batch_size=64, samplers=samplers)
    assert list(rows) == ["ddpm 50", "ddim 5", "dpmsolver 5"]
    assert {row["num_images"] for row in rows.values()} == {64} and {row["subset_size"] for row in rows.values()} == {32}
    assert all(math.isfinite(row["fid"]) and row["fid_error"] > 0 for row in rows.values())


@pytest.mark.parametrize("likelihood", ["categorical", "logistic", "bernoulli", "gaussian"])
def test_vae_decode_modes(likelihood):
    from hfgen import VAEPipeline
    from hfgen.families.vae import VAEConfig, VAEModel

    torch.manual_seed(0)
    config = VAEConfig(image_size=8, grey_levels=5, latent_dim=4, likelihood=likelihood, hidden_dim=32, block_out_channels=(8, 16))
    pipe = VAEPipeline(vae=VAEModel(config).eval())

    def images(**options):
        return pipe(batch_size=8, generator=torch.Generator().manual_seed(0), output_type="pt", **options).images

    mean = images()
    assert torch.equal(mean, images(decode="mean"))  # the default is the decoder's mean, E[x | z]
    assert torch.allclose(mean, pipe.vae.sample(8, torch.Generator().manual_seed(0)) / 2 + 0.5)
    sample, mode = images(decode="sample"), images(decode="mode")
    assert torch.equal(sample, images(decode="sample"))  # seeded
    for decoded in (sample, mode):
        assert decoded.shape == mean.shape and 0 <= decoded.min() and decoded.max() <= 1
    if likelihood != "gaussian":  # discrete decoders put every sampled pixel on the grey-level grid
        levels = sample * (config.grey_levels - 1) if likelihood != "bernoulli" else sample
        assert torch.allclose(levels, levels.round(), atol=1e-5)
        assert not torch.equal(sample, mean)
    with pytest.raises(ValueError, match="Unknown decode 'median'"):
        images(decode="median")
