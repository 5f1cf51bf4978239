"""The judges: the networks whose features FID, KID and precision/recall compare, each named in every result.

A number is only comparable with numbers from the same judge, so `describe()` goes into `metrics.json`, the
card's model-index and the zoo report. Four judges, by name:
- `classifier`: hfgen's CNN trained on the dataset's class labels (labelled data; the zoo's tables);
- `self_supervised`: the same CNN trained on the dataset without labels (SimCLR), the offline default when the
  data has no labels;
- `dinov2`: FD-DINOv2 (Stein et al., NeurIPS 2023) - a transformers DINOv2 from the Hub or a local folder;
- `inception`: the standard FID/KID - torch-fidelity's Inception-v3 port of the original TensorFlow graph.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import torch
from torch import nn

from .feature_extractor import FeatureExtractor, has_labels, load_feature_extractor
from .splits import EvaluationData, evaluation_data

JudgeName = Literal["classifier", "self_supervised", "dinov2", "inception"]
JUDGES: tuple[str, ...] = get_args(JudgeName)
DINOV2_MODEL = "facebook/dinov2-large"
"""Stein et al.'s judge - dgm-eval's default `dinov2_vitl14` (ViT-L/14) - as its transformers Hub checkpoint."""
INCEPTION_WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
"""What torch-fidelity downloads when no local file is given: the 2015-12-05 TensorFlow graph's weights."""


def check_images(images: torch.Tensor, name: str = "images") -> None:
    """Refuse anything but a float tensor in [0, 1] (what pipelines return with `output_type="pt"`)."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a (N, C, H, W) float tensor in [0, 1], got {type(images).__name__}.")
    if not images.is_floating_point():
        raise TypeError(
            f"{name} must be a float tensor in [0, 1], got dtype {images.dtype}: convert 8-bit images with "
            "images.float() / 255."
        )
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(
            f"{name} must be in [0, 1], got values in [{images.min().item():.4g}, {images.max().item():.4g}]: map "
            "[-1, 1] images with (x + 1) / 2, 0..255 ones with x / 255."
        )


def to_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> (N, 3, H, W) uint8: rounded as diffusers' `output_type="pil"` rounds (so judging a
    tensor equals judging its saved PNGs), grey repeated to RGB as the pretrained judges expect."""
    pixels = (images * 255).round().to(torch.uint8)
    return pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels


class Judge(nn.Module, ABC):
    """Images (N, C, H, W) in [0, 1] -> (N, num_features) float features on the CPU.

    A judge says how it prepares images (`preprocess`), embeds them (`embed`) and what it is (`describe`);
    `classifier` is set only by a judge that can also classify (the classifier score needs one).
    """

    name: ClassVar[str]
    batch_size: ClassVar[int] = 500
    """Images per forward pass: what fits in memory at the judge's input size."""
    num_features: int

    def __init__(self) -> None:
        super().__init__()
        # an instance attribute, not a class default: nn.Module looks a submodule up only when no attribute is found
        self.classifier: FeatureExtractor | None = None

    @abstractmethod
    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> the judge's input tensor (resized, normalised) on the CPU."""

    @abstractmethod
    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """The judge's inputs -> (N, num_features) features."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What the judge is, for every result that carries its numbers."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images)
        return self.embed(self.preprocess(images).to(self.device)).float().cpu()


class ExtractorJudge(Judge):
    """`classifier` and `self_supervised`: hfgen's CNN trained on the dataset, at the data's own resolution."""

    def __init__(self, extractor: FeatureExtractor) -> None:
        super().__init__()
        self.extractor = extractor.eval()
        self.num_features = extractor.config.feature_size
        self.is_classifier = extractor.config.objective == "classifier"
        self.classifier = extractor if self.is_classifier else None

    @property
    def name(self) -> str:  # one class, two judges: the objective it was trained with names it
        return "classifier" if self.is_classifier else "self_supervised"

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        config = self.extractor.config
        expected = (config.num_channels, config.image_size, config.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"Images of shape {tuple(images.shape)} do not fit the {config.dataset!r} feature extractor, which "
                f"takes (B, {', '.join(map(str, expected))}): evaluate against the dataset the model was trained on."
            )
        return images * 2 - 1  # the [-1, 1] it was trained on

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.extractor(inputs).features

    def describe(self) -> dict[str, Any]:
        config = self.extractor.config
        how = "its class labels" if self.is_classifier else "its images without labels (SimCLR contrastive)"
        # a judge trained on a streamed sample is another judge than the one trained on the whole split: say which
        streamed = config.streaming_images
        data = f"{streamed:,} streamed images of {config.dataset}" if streamed else config.dataset
        sample = f", sample seed {config.streaming_seed}" if streamed else ""
        return {
            "name": self.name,
            "title": f"hfgen CNN trained on {data} ({'classifier' if self.is_classifier else 'self-supervised'}, seed {config.seed}{sample})",
            "network": f"hfgen FeatureExtractor trained on {how}, {self.num_features}-d penultimate features",
            "dataset": config.dataset,
            "seed": config.seed,
            **({"streaming_images": streamed, "streaming_seed": config.streaming_seed} if streamed else {}),
            "test_accuracy": config.test_accuracy,
            "preprocessing": f"none: the data's own {config.image_size}x{config.image_size}, mapped to [-1, 1]",
        }


class DINOv2Judge(Judge):
    """FD-DINOv2: the final layer-normed CLS token of a transformers DINOv2 (`pooler_output`, what the torch.hub
    model returns), on images resized as dgm-eval does - the whole image to the processor's crop size (224x224 for
    the Hub checkpoints) with PIL bicubic, no centre crop, then ImageNet's mean and std."""

    name = "dinov2"
    batch_size = 64

    def __init__(self, model: str = DINOV2_MODEL) -> None:
        from transformers import AutoImageProcessor, AutoModel

        super().__init__()
        try:
            self.network = AutoModel.from_pretrained(model).eval()
            self.processor = AutoImageProcessor.from_pretrained(model)
        except OSError as error:
            raise OSError(
                f"Cannot load the DINOv2 judge {model!r} ({error.__class__.__name__}): go online once to cache it, pass "
                "--judge_model with a folder saved by save_pretrained, or judge offline with --judge self_supervised."
            ) from None
        self.model_id = model
        self.num_features = self.network.config.hidden_size
        crop = self.processor.crop_size
        self.size = {"height": crop.height, "width": crop.width}

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        pixels = list(to_uint8_rgb(images).permute(0, 2, 3, 1).numpy())  # (H, W, 3) uint8 each, as PIL sees them
        return self.processor(pixels, size=self.size, do_center_crop=False, return_tensors="pt")["pixel_values"]

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.network(pixel_values=inputs).pooler_output

    def describe(self) -> dict[str, Any]:
        height, width = self.size["height"], self.size["width"]
        return {
            "name": self.name,
            "title": f"DINOv2 ({self.model_id})",
            "network": f"{self.model_id}: final layer-normed CLS token, {self.num_features}-d (Stein et al. 2023)",
            "preprocessing": f"uint8 RGB (grey repeated), PIL bicubic resize of the whole image to {height}x{width} "
            "(dgm-eval's), ImageNet mean/std",
        }


class InceptionJudge(Judge):
    """The standard FID/KID: torch-fidelity's `FeatureExtractorInceptionV3` (2048-d pool features), fed uint8 RGB at
    the data's resolution; it resizes to 299x299 itself with its TensorFlow-1.x-compatible bilinear resize, as
    torch-fidelity and the original TTUR code do (clean-fid's PIL bicubic gives other numbers; torchmetrics' default
    anti-aliased resize too)."""

    name = "inception"
    batch_size = 100
    num_features = 2048

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        if weights is not None and not Path(weights).is_file():
            raise FileNotFoundError(f"Inception weights {weights!r} not found: pass the path of pt_inception-2015-12-05 weights.")
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ModuleNotFoundError:
            raise ValueError(
                "The inception judge needs torch-fidelity: `pip install -e \".[inception]\"` (keeps the torch pin), or "
                "use --judge dinov2 / self_supervised."
            ) from None
        self.weights = weights
        self.network = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=weights)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        return to_uint8_rgb(images)

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.network(inputs)[0]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": "Inception-v3 (torch-fidelity)",
            "network": "torch-fidelity inception-v3-compat, 2048-d pool3 features",
            "weights": self.weights or INCEPTION_WEIGHTS_URL,
            "preprocessing": "uint8 RGB (grey repeated), resized to 299x299 inside torch-fidelity (TensorFlow 1.x bilinear)",
        }


JUDGE_HELP = (
    "Whose features FID/KID/precision/recall compare: classifier (hfgen's CNN trained on the labels), self_supervised "
    "(the same CNN trained without labels), dinov2 (FD-DINOv2, Stein et al. 2023), inception (the standard FID, "
    "torch-fidelity's weights). Default: classifier on labelled data, else self_supervised - both offline."
)
JUDGE_MODEL_HELP = (
    "classifier / self_supervised: a saved FeatureExtractor folder (default: trained and cached); dinov2: a Hub id or "
    f"saved folder (default {DINOV2_MODEL}); inception: a local weights file (default: torch-fidelity downloads it)."
)
"""The help of the `--judge` and `--judge_model` options `hfgen evaluate` and `hfgen zoo` share."""


def check_judge_model(judge: JudgeName | None, model: str | None) -> None:
    """Refuse a `--judge_model` the judge cannot load before any work starts: a file where a folder goes, a
    missing path."""
    if model is None:
        return
    path = Path(model).expanduser()
    if judge == "dinov2":
        if path.is_file() or (not path.exists() and model.count("/") != 1):
            raise ValueError(
                f"--judge_model {model!r} is neither a folder nor a Hub id: pass a DINOv2 folder saved by "
                f"save_pretrained or a Hub id such as {DINOV2_MODEL}."
            )
        return
    kind = "file" if judge == "inception" else "folder"
    if not path.exists():
        raise FileNotFoundError(f"--judge_model {model!r} does not exist: pass an existing {kind}.")
    if path.is_file() != (kind == "file"):
        raise ValueError(f"--judge_model {model!r} is not a {kind}: pass the {judge or 'default'} judge's {kind}.")


def default_judge(dataset: str | EvaluationData, data_dir: str | None = None) -> JudgeName:
    """The classifier where the train split has class labels, else the self-supervised CNN: both offline."""
    return "classifier" if has_labels(dataset, data_dir) else "self_supervised"


def load_judge(
    name: JudgeName | None = None,
    dataset: str | EvaluationData = "digits",
    data_dir: str | None = None,
    seed: int = 0,
    model: str | None = None,
) -> Judge:
    """The judge `name` (default: `default_judge`); `model` is a saved extractor folder (classifier,
    self_supervised), a Hub id or folder (dinov2, default `DINOV2_MODEL`) or a weights file (inception). The
    classifier and self_supervised judges are trained on `dataset`'s train split as `EvaluationData` reads it."""
    data = evaluation_data(dataset, data_dir)
    name = name or default_judge(data)
    if name in ("classifier", "self_supervised"):
        objective = "classifier" if name == "classifier" else "contrastive"
        return ExtractorJudge(load_feature_extractor(data, seed=seed, path=model, objective=objective))
    if name == "dinov2":
        return DINOv2Judge(model or DINOV2_MODEL)
    if name == "inception":
        return InceptionJudge(model)
    raise ValueError(f"Unknown judge {name!r}: use one of {', '.join(JUDGES)}.")
