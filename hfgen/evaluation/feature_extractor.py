"""The offline judges' network: a small CNN trained on the dataset itself, with labels or without.

Inception-v3 and DINOv2 need weights from the Internet and are poor judges of 8x8 digits anyway, so the offline
judges use the penultimate features of a CNN trained - deterministically, in seconds on a CPU - on the dataset's
train split: as a classifier of its labels (`objective="classifier"`), or, when it has none, contrastively
(SimCLR, Chen et al. 2020: two random crops and intensity jitters of one image are pulled together, other images
pushed apart), which needs no labels. It is saved as a `PreTrainedModel` (safetensors) and cached, so every model
of the zoo is judged by the very same weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import datasets
import torch
from accelerate import PartialState
from huggingface_hub import constants
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedConfig, PreTrainedModel, get_scheduler
from transformers import initialization as init
from transformers.utils import ModelOutput

from ..data import describe_images, images_to_tensor
from .splits import EvaluationData, evaluation_data

CACHE_ENV = "HFGEN_FEATURE_EXTRACTORS"
"""Environment variable: the folder of cached extractors (default `$HF_HOME/hfgen/feature-extractors`)."""
Objective = Literal["classifier", "contrastive"]
PROJECTION_SIZE = 64
"""Width of the contrastive head (SimCLR's projection), which plays the classifier's part; features stay 128-d."""
TEMPERATURE = 0.5
"""SimCLR's NT-Xent temperature (its CIFAR-10 value)."""


class FeatureExtractorConfig(PreTrainedConfig):
    r"""
    Configuration of [`FeatureExtractor`], the CNN whose penultimate features FID/KID are computed on.

    Args:
        num_channels (`int`, *optional*, defaults to 1):
            Image channels (1 grey, 3 RGB).
        image_size (`int`, *optional*, defaults to 8):
            Side of the square input images in pixels.
        num_classes (`int`, *optional*, defaults to 10):
            Outputs of the head: the dataset's classes, or the projection's width for the contrastive objective.
        hidden_sizes (`list[int]`, *optional*, defaults to `[32, 64, 128]`):
            Channels of the 3x3 convolutions; every one after the first halves the resolution.
        feature_size (`int`, *optional*, defaults to 128):
            Width of the penultimate layer: the feature vector metrics compare.
        dataset (`str`, *optional*, defaults to `"digits"`):
            The dataset it was trained on (cache key and provenance).
        seed (`int`, *optional*, defaults to 0):
            Seed of initialisation and data order: same seed, same weights.
        test_accuracy (`float`, *optional*):
            Accuracy on the dataset's test split, recorded after training (classifiers only).
        objective (`str`, *optional*, defaults to `"classifier"`):
            `"classifier"` (cross-entropy on the labels) or `"contrastive"` (SimCLR's NT-Xent, no labels).
        streaming_images (`int`, *optional*):
            Trained on a streamed sample of this many train images (`EvaluationData`); None: on the whole split.
        streaming_seed (`int`, *optional*):
            The seed of that sample's shard order.

    Example:
    ```py
    >>> from hfgen.evaluation import FeatureExtractor, FeatureExtractorConfig
    >>> model = FeatureExtractor(FeatureExtractorConfig(image_size=8))
    >>> model(torch.zeros(4, 1, 8, 8)).features.shape
    torch.Size([4, 128])
    ```
    """

    model_type = "hfgen-feature-extractor"

    def __init__(
        self,
        num_channels: int = 1,
        image_size: int = 8,
        num_classes: int = 10,
        hidden_sizes: list[int] | None = None,
        feature_size: int = 128,
        dataset: str = "digits",
        seed: int = 0,
        test_accuracy: float | None = None,
        objective: Objective = "classifier",
        streaming_images: int | None = None,
        streaming_seed: int | None = None,
        **kwargs,
    ) -> None:
        self.num_channels = num_channels
        self.image_size = image_size
        self.num_classes = num_classes
        self.hidden_sizes = list(hidden_sizes or (32, 64, 128))
        self.feature_size = feature_size
        self.dataset = dataset
        self.seed = seed
        self.test_accuracy = test_accuracy
        self.objective = objective
        self.streaming_images = streaming_images
        self.streaming_seed = streaming_seed
        super().__init__(**kwargs)


@dataclass
class FeatureExtractorOutput(ModelOutput):
    """`features` (B, feature_size) are what metrics compare; `logits` (B, num_classes) classify."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    features: torch.Tensor | None = None


class FeatureExtractor(PreTrainedModel):
    """conv3x3 -> ReLU, then stride-2 conv3x3 -> ReLU per further level, global average pool, feature layer, classifier."""

    config_class = FeatureExtractorConfig
    base_model_prefix = "feature_extractor"
    main_input_name = "pixel_values"

    def __init__(self, config: FeatureExtractorConfig) -> None:
        super().__init__(config)
        layers, channels = [], config.num_channels
        for level, width in enumerate(config.hidden_sizes):
            layers += [nn.Conv2d(channels, width, 3, stride=1 if level == 0 else 2, padding=1), nn.ReLU()]
            channels = width
        self.convolutions = nn.Sequential(*layers)
        self.features = nn.Linear(channels, config.feature_size)
        self.classifier = nn.Linear(config.feature_size, config.num_classes)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            init.kaiming_normal_(module.weight, nonlinearity="relu")
            init.zeros_(module.bias)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> FeatureExtractorOutput:
        """`pixel_values` (B, C, H, W) in [-1, 1] as `hfgen.data.image_transform` makes them."""
        hidden = self.convolutions(pixel_values).mean(dim=(2, 3))  # (B, hidden_sizes[-1])
        features = F.relu(self.features(hidden))  # (B, feature_size)
        logits = self.classifier(features)  # (B, num_classes)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return FeatureExtractorOutput(loss=loss, logits=logits, features=features)


def class_labels(data: datasets.Dataset, name: str) -> torch.Tensor | None:
    """The (N,) class labels of one split, or None when a classifier could not learn them: no ClassLabel column,
    a missing label, or a single class (an image folder's split names are not classes)."""
    if describe_images(data, name).num_classes is None:
        return None
    labels = data["label"]
    return None if None in labels or len(set(labels)) < 2 else torch.as_tensor(labels)


def has_labels(dataset: str | EvaluationData, data_dir: str | None = None) -> bool:
    """Whether the train split of `dataset` has class labels a classifier can learn."""
    data = evaluation_data(dataset, data_dir)
    return class_labels(data.load("train"), data.dataset) is not None


def _split_tensors(data: EvaluationData, split: str) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """(N, C, H, W) in [-1, 1], the (N,) labels (or None) and the class count of one split."""
    rows = data.load(split)
    info = data.image_info(rows)
    return images_to_tensor(rows["image"], info.resolution, info.channels), class_labels(rows, data.dataset), info.num_classes or 0


@torch.no_grad()
def accuracy(model: FeatureExtractor, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Share of `images` (N, C, H, W) in [-1, 1] classified as their `labels` (N,)."""
    model.eval()
    correct = sum(
        (model(images[i : i + batch_size]).logits.argmax(-1) == labels[i : i + batch_size]).sum().item()
        for i in range(0, len(images), batch_size)
    )
    return correct / len(images)


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """SimCLR's views, for images of any size and channel count: (B, C, H, W) in [-1, 1] -> the same shape.

    A random resized crop (40-100 % of the area, aspect 3/4-4/3, anywhere in the image) resampled to the full size,
    then a random contrast (x0.6-1.4) and brightness (+-0.4) per image; RGB images also get a random gain per
    channel (+-20 %) and, one time in five, turn grey - without colour jitter, colour histograms alone would tell
    views apart (Chen et al. 2020, fig. 5).
    """
    count, channels = images.shape[:2]

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(count, *shape, generator=generator)

    area, aspect = uniform(0.4, 1.0), uniform(-0.29, 0.29).exp()  # log-uniform aspect in [3/4, 4/3]
    width, height = (area * aspect).sqrt().clamp(max=1), (area / aspect).sqrt().clamp(max=1)  # shares of the side
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = width, height
    theta[:, 0, 2], theta[:, 1, 2] = (1 - width) * uniform(-1, 1), (1 - height) * uniform(-1, 1)  # stay inside
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    views = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    views = views * uniform(0.6, 1.4, 1, 1, 1) + uniform(-0.4, 0.4, 1, 1, 1)
    if channels == 3:
        views = views * uniform(0.8, 1.2, 3, 1, 1)
        grey = uniform(0, 1, 1, 1, 1) < 0.2
        views = torch.where(grey, views.mean(1, keepdim=True).expand_as(views), views)
    return views.clamp(-1, 1)


def contrastive_loss(model: FeatureExtractor, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """SimCLR's NT-Xent of two augmented views of each image (B, C, H, W): each view must pick its twin among the
    2B - 1 others by cosine similarity of the projections (the head's outputs)."""
    count = len(images)
    projections = F.normalize(model(torch.cat([augment(images, generator), augment(images, generator)])).logits, dim=-1)
    similarity = projections @ projections.T / TEMPERATURE  # (2B, 2B)
    similarity = similarity.masked_fill(torch.eye(2 * count, dtype=torch.bool), float("-inf"))  # not itself
    twins = torch.cat([torch.arange(count, 2 * count), torch.arange(count)])
    return F.cross_entropy(similarity, twins)


def train_feature_extractor(
    dataset: str | EvaluationData = "digits",
    data_dir: str | None = None,
    seed: int = 0,
    steps: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 3e-3,
    objective: Objective = "classifier",
) -> FeatureExtractor:
    """Train the CNN on the train split (`dataset` read whole, or as `EvaluationData` says); same seed, same
    weights (the global RNG is left untouched).

    `steps` defaults to 800 or one epoch, whichever is more: 800 steps (~34 epochs) for digits, 937 for
    Fashion-MNIST - a judge needs stable features, not the last point of accuracy. `batch_size` defaults to 64 for
    the classifier and 128 images (256 views) for the contrastive objective, whose negatives are the batch's
    other images.
    """
    data = evaluation_data(dataset, data_dir)
    images, labels, num_classes = _split_tensors(data, "train")
    if objective == "classifier" and labels is None:
        raise ValueError(
            f"Dataset {data.dataset!r} has no class labels, so no classifier can judge it: use --judge self_supervised "
            "(trained without labels), dinov2 or inception."
        )
    batch_size = min(batch_size or (64 if objective == "classifier" else 128), len(images))
    steps = steps or max(800, len(images) // batch_size)
    config = FeatureExtractorConfig(
        num_channels=images.shape[1], image_size=images.shape[-1], dataset=data.dataset, seed=seed, objective=objective,
        num_classes=num_classes if objective == "classifier" else PROJECTION_SIZE, streaming_images=len(images) if data.streaming else None,
        streaming_seed=data.seed if data.streaming else None,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = FeatureExtractor(config)
    order = torch.Generator().manual_seed(seed)  # data order and the contrastive views
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-4)
    schedule = get_scheduler("cosine", optimizer, num_warmup_steps=steps // 20, num_training_steps=steps)
    model.train()
    permutation, position = torch.randperm(len(images), generator=order), 0
    for _ in range(steps):
        if position + batch_size > len(images):  # a fresh epoch: reshuffle
            permutation, position = torch.randperm(len(images), generator=order), 0
        index = permutation[position : position + batch_size]
        position += batch_size
        if objective == "classifier":
            loss = model(images[index], labels=labels[index]).loss
        else:
            loss = contrastive_loss(model, images[index], order)
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    if objective == "classifier" and data.has_split("test"):  # a folder without a test split: no accuracy to record
        test_images, test_labels, _ = _split_tensors(data, "test")
        model.config.test_accuracy = accuracy(model, test_images, test_labels)
    return model.eval()


def cache_dir(dataset: str | EvaluationData, seed: int = 0, objective: Objective = "classifier") -> Path:
    """Where the extractor of `dataset` is cached: `$HFGEN_FEATURE_EXTRACTORS` or `$HF_HOME/hfgen/feature-extractors`,
    in a folder of its own per streamed sample (`EvaluationData.cache_name`)."""
    root = Path(os.environ.get(CACHE_ENV) or Path(constants.HF_HOME) / "hfgen" / "feature-extractors")
    suffix = "" if objective == "classifier" else f"-{objective}"  # the classifiers' folders predate the objectives
    return root.expanduser() / f"{evaluation_data(dataset).cache_name}{suffix}-seed{seed}"


def load_feature_extractor(
    dataset: str | EvaluationData = "digits",
    data_dir: str | None = None,
    seed: int = 0,
    path: str | None = None,
    objective: Objective = "classifier",
) -> FeatureExtractor:
    """The cached extractor of `dataset` (trained and cached on first use), or the one saved at `path`.

    Under `accelerate launch` the main process trains it while the others wait, then all load the same file.
    """
    if path is not None:
        if not (Path(path) / "config.json").is_file():
            raise FileNotFoundError(f"No feature extractor at {path!r}: pass a folder written by FeatureExtractor.save_pretrained.")
        model = FeatureExtractor.from_pretrained(path, use_safetensors=True).eval()
        if model.config.objective != objective:
            raise ValueError(f"{path!r} holds a {model.config.objective} extractor, not a {objective} one: pass the matching --judge.")
        return model
    data = evaluation_data(dataset, data_dir)
    folder = cache_dir(data, seed, objective)
    with PartialState().main_process_first():
        if not (folder / "model.safetensors").is_file():
            train_feature_extractor(data, seed=seed, objective=objective).save_pretrained(folder, safe_serialization=True)
        return FeatureExtractor.from_pretrained(folder, use_safetensors=True).eval()
