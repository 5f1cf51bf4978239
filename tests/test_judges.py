"""The judges: named in every result, loaded by one code path (Hub id or local folder), preprocessing as the
reference implementations do, and an offline self-supervised one for data without labels."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

from hfgen.cli import main
from hfgen.evaluation import GenerativeMetrics, load_judge, train_feature_extractor
from hfgen.evaluation.baselines import evaluation_splits, real_images, reference_samples
from hfgen.evaluation.feature_extractor import cache_dir
from hfgen.evaluation.judges import ExtractorJudge, default_judge, to_uint8_rgb
from hfgen.hub.cards import eval_results
from hfgen.zoo.run import ZooArguments, train_argv

IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


@pytest.fixture(scope="module")
def dinov2_folder(tmp_path_factory):
    """A randomly initialised DINOv2 with a 28x28 input and its processor, saved as a Hub checkpoint is."""
    folder = tmp_path_factory.mktemp("dinov2")
    torch.manual_seed(0)
    config = Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=28, patch_size=14)
    Dinov2Model(config).save_pretrained(folder)
    BitImageProcessor(  # facebook/dinov2-*'s processor settings, scaled from 256 -> 224 down to 32 -> 28
        size={"shortest_edge": 32}, crop_size={"height": 28, "width": 28}, resample=Image.Resampling.BICUBIC,
        image_mean=IMAGENET_MEAN.tolist(), image_std=IMAGENET_STD.tolist(),
    ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def unlabelled_folder(tmp_path_factory):
    """150 digits saved as PNGs in one folder: no class sub-folders, no test split."""
    folder = tmp_path_factory.mktemp("unlabelled")
    for index, image in enumerate(real_images("digits", "train")[:150]):
        Image.fromarray((image[0] * 255).round().to(torch.uint8).numpy()).save(folder / f"{index:03d}.png")
    return folder


def dgm_eval_preprocessing(images: torch.Tensor, size: int) -> torch.Tensor:
    """dgm-eval's DINOv2 transform written out: PIL bicubic resize of the whole RGB image, to [0, 1], ImageNet norm."""
    arrays = []
    for image in to_uint8_rgb(images).permute(0, 2, 3, 1).numpy():
        resized = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64) / 255
        arrays.append(((resized - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1))
    return torch.from_numpy(np.stack(arrays)).float()


def test_dinov2_judge_loads_a_folder_as_a_hub_id_and_preprocesses_as_dgm_eval(dinov2_folder):
    judge = load_judge("dinov2", model=str(dinov2_folder))  # AutoModel / AutoImageProcessor.from_pretrained
    generator = torch.Generator().manual_seed(0)
    for images in (torch.rand(3, 1, 8, 8, generator=generator), torch.rand(3, 3, 12, 12, generator=generator)):
        inputs = judge.preprocess(images)
        assert inputs.shape == (3, 3, 28, 28)
        assert torch.allclose(inputs, dgm_eval_preprocessing(images, 28), atol=1e-5)
        network = Dinov2Model.from_pretrained(dinov2_folder).eval()
        with torch.no_grad():
            expected = network(pixel_values=dgm_eval_preprocessing(images, 28)).pooler_output
        assert torch.allclose(judge(images), expected, atol=1e-4)
    assert judge.describe()["name"] == "dinov2" and str(dinov2_folder) in judge.describe()["title"]
    with pytest.raises(OSError, match="Cannot load the DINOv2 judge"):
        load_judge("dinov2", model=str(dinov2_folder / "nowhere"))


def test_inception_judge_feeds_torch_fidelity_rounded_rgb_uint8():
    images = torch.tensor([0.0, 0.5, 0.502, 1.0]).reshape(1, 1, 2, 2)
    pixels = to_uint8_rgb(images)
    assert pixels.dtype == torch.uint8 and pixels.shape == (1, 3, 2, 2)
    assert pixels[0, :, 0].tolist() == [[0, 128]] * 3 and pixels[0, :, 1].tolist() == [[128, 255]] * 3  # as PNGs save


def test_inception_judge_matches_torch_fidelity_on_saved_images(tmp_path):
    """Our features of a tensor = torch-fidelity's own of the PNGs it saves to (its 299x299 resize inside)."""
    pytest.importorskip("torch_fidelity", reason="the inception extra is not installed (make install-inception)")
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    weights = os.environ.get("HFGEN_INCEPTION_WEIGHTS")
    if not weights:
        pytest.skip("set HFGEN_INCEPTION_WEIGHTS to torch-fidelity's weights-inception-2015-12-05 file (offline tests)")
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    saved = []
    for index, pixels in enumerate(to_uint8_rgb(images).permute(0, 2, 3, 1).numpy()):
        Image.fromarray(pixels).save(tmp_path / f"{index}.png")
        saved.append(torch.from_numpy(np.asarray(Image.open(tmp_path / f"{index}.png"))).permute(2, 0, 1))
    reference = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=weights).eval()
    with torch.no_grad():
        expected = reference(torch.stack(saved))[0]
    assert torch.allclose(load_judge("inception", model=weights)(images), expected, atol=1e-4)


def test_self_supervised_judge_is_deterministic_and_needs_no_labels(unlabelled_folder):
    first, second = (train_feature_extractor(str(unlabelled_folder), steps=20, objective="contrastive") for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert first.config.objective == "contrastive" and first.config.test_accuracy is None
    assert default_judge("digits") == "classifier" and default_judge(str(unlabelled_folder)) == "self_supervised"
    with pytest.raises(ValueError, match="no class labels.*--judge self_supervised"):
        train_feature_extractor(str(unlabelled_folder), steps=1)


def test_self_supervised_judge_ranks_the_reference_rows_on_digits():
    """A short training already ranks them as the classifier does (the full recipe: README's figures)."""
    judge = ExtractorJudge(train_feature_extractor("digits", steps=150, objective="contrastive"))
    assert judge.describe()["name"] == "self_supervised" and judge.classifier is None
    train, test, labels, _ = evaluation_splits("digits")
    metrics = GenerativeMetrics(judge, train)
    fid = {name: metrics(images, subset_size=100)["fid"] for name, images in reference_samples(train, test, labels, 500).items()}
    assert fid["real test images"] < fid["SMOTE"] < fid["scikit-learn KDE"] < fid["Gaussian noise"], fid


def test_a_folder_without_labels_evaluates_end_to_end(unlabelled_folder, extractor_cache, tmp_path, capsys):
    """With no option the self-supervised judge is chosen and loaded from its cache (a short training put there
    first, to keep the test short; the default recipe trains the same code longer)."""
    cached = cache_dir(str(unlabelled_folder), objective="contrastive")
    train_feature_extractor(str(unlabelled_folder), steps=30, objective="contrastive").save_pretrained(cached)
    model = tmp_path / "gan"
    assert main(["train", "gan", *train_argv(ZooArguments(dataset=str(unlabelled_folder), budget="tiny"), "gan", model)]) == 0
    output = tmp_path / "metrics.json"
    assert main(["evaluate", str(model), "--num_samples", "32", "--output", str(output), "--update_card"]) == 0
    results = json.loads(output.read_text())
    assert results["judge"]["name"] == "self_supervised" and results["dataset"] == str(unlabelled_folder)
    assert all(math.isfinite(results["metrics"][key]) for key in ("fid", "kid", "precision", "recall"))
    floor = results["reference_rows"]["real test images"]
    assert floor["num_images"] == 16  # two thirds of the 25 held out: a sixth of 150, not in the reference set
    assert floor["fid"] < results["reference_rows"]["Gaussian noise"]["fid"]
    out = capsys.readouterr().out
    assert "judge: hfgen CNN trained on" in out and "*Gaussian noise*" in out
    card = (model / "README.md").read_text()
    assert "fid-self_supervised" in card and "self-supervised" in card

    assert main(["evaluate", str(model), "--num_samples", "32", "--judge", "classifier"]) == 2
    assert "no class labels" in capsys.readouterr().err.strip().splitlines()[-1]


def test_model_index_names_the_judge():
    results = {"dataset": "digits", "num_samples": 64, "seed": 0, "metrics": {"fid": 1.0, "bits_per_dim": 2.0},
               "judge": {"name": "dinov2", "title": "DINOv2 (facebook/dinov2-large)"}}
    entries = {r.metric_type: r for r in eval_results(results, "m", "unconditional-image-generation")}
    assert set(entries) == {"fid-dinov2", "bits_per_dim"}
    assert entries["fid-dinov2"].metric_name == "FID∞ (dinov2)"
    assert entries["fid-dinov2"].metric_args["judge"] == "DINOv2 (facebook/dinov2-large)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--judge", "dinov2", "--judge_model", "not/a/hub id"], "neither a folder nor a Hub id"),
        (["--judge", "inception", "--judge_model", "."], "is not a file"),
        (["--judge", "self_supervised", "--judge_model", "./missing"], "does not exist"),
    ],
)
def test_judge_model_is_checked_before_work(argv, message, capsys):
    assert main(["evaluate", "some/model", *argv]) == 2
    assert message in capsys.readouterr().err
