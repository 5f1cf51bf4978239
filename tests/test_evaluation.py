"""Evaluation: the feature extractor, FID/KID/precision-recall, bits/dim and `hfgen evaluate` (1 and 2 processes)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from diffusers import DDPMScheduler, UNet2DModel

from hfgen import DiffusionImagePipeline
from hfgen.cli import main
from hfgen.data import load_image_dataset
from hfgen.evaluation import GenerativeMetrics, bits_per_dim, load_feature_extractor, load_judge, log_likelihood, train_feature_extractor
from hfgen.evaluation.baselines import kde_images, noise_images, real_images
from hfgen.evaluation.evaluator import generate
from hfgen.evaluation.feature_extractor import CACHE_ENV, FeatureExtractor, accuracy, cache_dir
from hfgen.evaluation.metrics import frechet_distance, precision_recall
from hfgen.evaluation.splits import EvaluationData
from hfgen.zoo.run import ZooArguments, train_argv
from hfgen.loading import load_pipeline
from hfgen.families.diffusion import default_unet_config
from hfgen.training.launch import train

from helpers import launch_two_processes


@pytest.fixture(scope="module")
def digits():
    return real_images("digits", "train"), real_images("digits", "test")


@pytest.fixture(scope="module")
def metrics(extractor_cache, digits):
    return GenerativeMetrics(load_judge("classifier"), digits[0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Tiny diffusion, VAE and pixel-autoregressive folders trained for 2 steps by the real loop."""
    root = tmp_path_factory.mktemp("models")
    zoo = ZooArguments(budget="tiny")
    for family in ("diffusion", "vae", "autoregressive"):
        train(family, train_argv(zoo, family, root / family))
    return root


def test_extractor_is_deterministic_and_accurate_on_digits(tmp_path, monkeypatch):
    first, second = (train_feature_extractor("digits", seed=0, steps=40) for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    other = train_feature_extractor("digits", seed=1, steps=40)
    assert not torch.equal(first.classifier.weight, other.classifier.weight)

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    model = load_feature_extractor("digits")  # trains the full recipe and caches it
    assert (cache_dir("digits") / "model.safetensors").is_file()
    assert model.config.test_accuracy >= 0.95
    test = real_images("digits", "test") * 2 - 1
    labels = torch.as_tensor(load_image_dataset("digits", "test")["label"])
    assert accuracy(model, test, labels) == pytest.approx(model.config.test_accuracy)
    reloaded = FeatureExtractor.from_pretrained(cache_dir("digits"))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()))
    with pytest.raises(FileNotFoundError, match="No feature extractor"):
        load_feature_extractor(path=str(tmp_path / "nowhere"))


def test_fid_orders_real_kde_noise(metrics, digits):
    train, test = digits
    real = metrics(test)
    kde = metrics(kde_images(train, 1000))
    noise = metrics(noise_images(1000, (1, 8, 8)))
    assert real["fid"] < kde["fid"] < noise["fid"]
    assert real["kid"] < kde["kid"] < noise["kid"]
    assert noise["precision"] < kde["precision"] and noise["recall"] < real["recall"]
    assert real["nn_distance"] < noise["nn_distance"]


def test_a_set_against_itself(metrics, digits):
    same = GenerativeMetrics(metrics.judge, digits[1])
    features = same.reference_features
    assert abs(frechet_distance(features, same.reference_statistics)) < 1e-3
    assert precision_recall(features, features) == (1.0, 1.0)
    assert same(digits[1])["nn_distance"] < 1e-3  # every image finds itself


def test_subset_larger_than_half_the_samples_is_a_clear_error(metrics, digits):
    with pytest.raises(ValueError, match="subset_size 500 does not fit half the 300 samples"):
        GenerativeMetrics(metrics.judge, digits[0], subset_size=500)(digits[1])
    with pytest.raises(ValueError, match="fit the 'digits' feature extractor"):
        metrics(torch.rand(16, 3, 8, 8))


def test_classifier_score_and_conditional_sampling(metrics, digits):
    labels = torch.as_tensor(load_image_dataset("digits", "test")["label"])
    scored = metrics(digits[1], labels)
    assert scored["classifier_score"] == pytest.approx(metrics.judge.classifier.config.test_accuracy)

    torch.manual_seed(0)
    unet = UNet2DModel(**default_unet_config(8, 1, num_classes=10, block_out_channels=(8, 16, 16)))
    pipe = DiffusionImagePipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=50))
    pipe.set_progress_bar_config(disable=True)
    images, classes, seconds = generate(pipe, 13, 5, seed=0, num_inference_steps=2)
    assert images.shape == (13, 1, 8, 8) and 0 <= images.min() and images.max() <= 1 and seconds > 0
    assert classes.tolist() == [i % 10 for i in range(13)]
    again, _, _ = generate(pipe, 13, 4, seed=0, num_inference_steps=2)  # other batches, other seeds
    assert not torch.equal(images, again)
    assert torch.equal(images, generate(pipe, 13, 5, seed=0, num_inference_steps=2)[0])


def test_inception_judge_needs_local_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="Inception weights"):
        load_judge("inception", model=str(tmp_path / "pt_inception.pth"))


def test_precision_recall_on_points_worked_by_hand():
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0]])  # k=1 radii: 1 each
    fake = torch.tensor([[0.5], [1.5], [100.0], [101.0], [102.0]])  # k=1 radii: 1 each
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == pytest.approx(2 / 5)  # 0.5 and 1.5 lie in real balls
    assert recall == pytest.approx(3 / 5)  # 0, 1, 2 lie in the balls around 0.5 and 1.5
    with pytest.raises(ValueError, match="nearest_k"):
        precision_recall(real, fake, k=5)


def test_bits_per_dim_formula():
    dims = 64
    nats = torch.tensor([-dims * math.log(2), -3 * dims * math.log(2)])
    assert bits_per_dim(nats, dims) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="dims"):
        bits_per_dim(nats, 0)


def test_bits_per_dim_of_vae_and_autoregressive_match_their_likelihoods(trained, digits):
    test = digits[1][:32]  # (32, 1, 8, 8) in [0, 1]
    dims = test[0].numel()
    vae = load_pipeline(str(trained / "vae"))
    nats = log_likelihood(vae, test, generator=torch.Generator().manual_seed(0), k=8)
    expected = vae.vae.log_likelihood(test * 2 - 1, k=8, generator=torch.Generator().manual_seed(0))  # the model takes [-1, 1]
    assert torch.allclose(nats, expected)
    assert 0 < bits_per_dim(nats, dims) < 100
    assert bits_per_dim(nats, dims) == pytest.approx(float(-expected.mean() / (vae.vae.num_dimensions * math.log(2))))

    pixels = load_pipeline(str(trained / "autoregressive"))
    nats = log_likelihood(pixels, test)
    assert nats.shape == (32,) and torch.isfinite(nats).all()
    assert bits_per_dim(nats, dims) == pytest.approx(pixels.bits_per_dim(test))
    assert 0 < bits_per_dim(nats, dims) <= math.log2(17) + 1  # a 2-step model is near uniform over 17 grey levels

    with pytest.raises(ValueError, match="gives no log-likelihood"):
        log_likelihood(object(), test)


def test_evaluate_command_writes_json(trained, extractor_cache, tmp_path, capsys):
    output = tmp_path / "metrics.json"
    args = [str(trained / "vae"), "--num_samples", "40", "--batch_size", "16", "--iwae_samples", "4"]
    assert main(["evaluate", *args, "--output", str(output)]) == 0
    results = json.loads(output.read_text())
    assert results["pipeline"] == "VAEPipeline" and results["dataset"] == "digits"  # read from training_args.json
    assert results["judge"]["name"] == "classifier" and results["judge"]["test_accuracy"] >= 0.95
    metrics = results["metrics"]
    for key in ("fid", "kid", "precision", "recall", "nn_distance", "bits_per_dim", "samples_per_second", "parameters"):
        assert math.isfinite(metrics[key]), key
    assert metrics["num_images"] == 40 and metrics["subset_size"] == 20  # half the samples: the jackknife's halves
    assert metrics["fid_error"] > 0 and metrics["kid_error"] > 0  # a 2-step VAE has no precision to spread
    assert metrics["precision_error"] >= 0 and metrics["recall_error"] >= 0
    assert "| FID∞ ↓ |" in capsys.readouterr().out

    assert main(["evaluate", *args, "--subset_size", "100"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the loading progress bars
    assert error.startswith("hfgen: error: subset_size 100 does not fit half the 40 samples")


@pytest.mark.slow
def test_two_processes_split_sampling_and_gather_the_same_images(trained, extractor_cache, tmp_path):
    args = [str(trained / "diffusion"), "--num_samples", "48", "--batch_size", "8", "--steps", "2", "--bpd_timesteps", "2"]
    assert main(["evaluate", *args, "--output", str(tmp_path / "one.json")]) == 0
    launch_two_processes("evaluate", *args, "--output", str(tmp_path / "two.json"))
    one, two = (json.loads(Path(tmp_path / f"{n}.json").read_text())["metrics"] for n in ("one", "two"))
    for key in ("fid", "kid", "precision", "recall", "nn_distance", "bits_per_dim"):
        assert two[key] == pytest.approx(one[key], rel=1e-4), key


def test_evaluation_imports_with_the_inception_extra():
    """`make install-inception` must keep torchmetrics importable: a torchvision built for another torch breaks it
    ("operator torchvision::nms does not exist"), and with it all of hfgen.evaluation."""
    pytest.importorskip("torch_fidelity", reason="the inception extra is not installed (make install-inception)")
    import subprocess
    import sys

    code = "import hfgen.evaluation, torchvision.ops, torch_fidelity; from torchmetrics.image.fid import FrechetInceptionDistance"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_folder_is_read_at_the_size_its_model_makes_and_the_kde_fits_a_few_images(tmp_path):
    """A model trained with --resolution/--channels is judged against its training images at those sizes (their
    judge cached apart), and the KDE baseline fits a set of fewer images than its 15 PCA components."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for index in range(6):
            Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(tmp_path / label / f"{index}.png")
    native, resized = EvaluationData(str(tmp_path)), EvaluationData(str(tmp_path), resolution=8, channels=1)
    assert real_images(native, "train").shape == (12, 3, 12, 12)
    assert real_images(resized, "train").shape == (12, 1, 8, 8)
    assert resized.cache_name == f"{native.cache_name}-8px-1ch" and resized.describe()["resolution"] == 8
    samples = kde_images(real_images(resized, "train"), 5)
    assert samples.shape == (5, 1, 8, 8) and 0 <= samples.min() and samples.max() <= 1

