"""The judge every family shares: a small CNN classifier trained on the dataset itself.

Inception-v3 cannot be downloaded here and would be a poor judge of 8x8 digits anyway, so FID/KID/precision-
recall use the penultimate features of a classifier trained - deterministically, in seconds on a CPU - on the
dataset's train split. It is saved as a `PreTrainedModel` (safetensors) and cached, so every model of the zoo
is judged by the very same weights.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import PartialState
from huggingface_hub import constants
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedConfig, PreTrainedModel, get_scheduler
from transformers import initialization as init
from transformers.utils import ModelOutput

from ..data import describe_images, images_to_tensor, load_image_dataset

CACHE_ENV = "HFGEN_FEATURE_EXTRACTORS"
"""Environment variable: the folder of cached extractors (default `$HF_HOME/hfgen/feature-extractors`)."""


class FeatureExtractorConfig(PreTrainedConfig):
    r"""
    Configuration of [`FeatureExtractor`], the classifier whose penultimate features FID/KID are computed on.

    Args:
        num_channels (`int`, *optional*, defaults to 1):
            Image channels (1 grey, 3 RGB).
        image_size (`int`, *optional*, defaults to 8):
            Side of the square input images in pixels.
        num_classes (`int`, *optional*, defaults to 10):
            Classes of the dataset the classifier is trained on.
        hidden_sizes (`list[int]`, *optional*, defaults to `[32, 64, 128]`):
            Channels of the 3x3 convolutions; every one after the first halves the resolution.
        feature_size (`int`, *optional*, defaults to 128):
            Width of the penultimate layer: the feature vector metrics compare.
        dataset (`str`, *optional*, defaults to `"digits"`):
            The dataset it was trained on (cache key and provenance).
        seed (`int`, *optional*, defaults to 0):
            Seed of initialisation and data order: same seed, same weights.
        test_accuracy (`float`, *optional*):
            Accuracy on the dataset's test split, recorded after training.

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


def _labelled_tensors(dataset: str, split: str, data_dir: str | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(N, C, H, W) in [-1, 1], (N,) labels and the class count of one split."""
    data = load_image_dataset(dataset, split, data_dir)
    info = describe_images(data, dataset)
    if info.num_classes is None:
        raise ValueError(
            f"Dataset {dataset!r} has no class labels, so no feature extractor can be trained on it: "
            "evaluate against a labelled dataset (digits, fashion_mnist or a folder with one sub-folder per class)."
        )
    images = images_to_tensor(data["image"], info.resolution, info.channels)
    return images, torch.as_tensor(data["label"]), info.num_classes


@torch.no_grad()
def accuracy(model: FeatureExtractor, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Share of `images` (N, C, H, W) in [-1, 1] classified as their `labels` (N,)."""
    model.eval()
    correct = sum(
        (model(images[i : i + batch_size]).logits.argmax(-1) == labels[i : i + batch_size]).sum().item()
        for i in range(0, len(images), batch_size)
    )
    return correct / len(images)


def train_feature_extractor(
    dataset: str = "digits",
    data_dir: str | None = None,
    seed: int = 0,
    steps: int | None = None,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
) -> FeatureExtractor:
    """Train the classifier on the train split; same seed, same weights (the global RNG is left untouched).

    `steps` defaults to 800 or one epoch, whichever is more: 800 steps (~34 epochs) for digits, 937 for
    Fashion-MNIST - a judge needs stable features, not the last point of accuracy.
    """
    images, labels, num_classes = _labelled_tensors(dataset, "train", data_dir)
    steps = steps or max(800, len(images) // batch_size)
    config = FeatureExtractorConfig(
        num_channels=images.shape[1], image_size=images.shape[-1], num_classes=num_classes, dataset=dataset, seed=seed
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = FeatureExtractor(config)
    order = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-4)
    schedule = get_scheduler("cosine", optimizer, num_warmup_steps=steps // 20, num_training_steps=steps)
    model.train()
    permutation, position = torch.randperm(len(images), generator=order), 0
    for _ in range(steps):
        if position + batch_size > len(images):  # a fresh epoch: reshuffle
            permutation, position = torch.randperm(len(images), generator=order), 0
        index = permutation[position : position + batch_size]
        position += batch_size
        loss = model(images[index], labels=labels[index]).loss
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    test_images, test_labels, _ = _labelled_tensors(dataset, "test", data_dir)
    model.config.test_accuracy = accuracy(model, test_images, test_labels)
    return model.eval()


def cache_dir(dataset: str, seed: int = 0) -> Path:
    """Where the extractor of `dataset` is cached: `$HFGEN_FEATURE_EXTRACTORS` or `$HF_HOME/hfgen/feature-extractors`."""
    root = Path(os.environ.get(CACHE_ENV) or Path(constants.HF_HOME) / "hfgen" / "feature-extractors")
    return root.expanduser() / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', dataset).strip('_')}-seed{seed}"


def load_feature_extractor(dataset: str = "digits", data_dir: str | None = None, seed: int = 0, path: str | None = None) -> FeatureExtractor:
    """The cached extractor of `dataset` (trained and cached on first use), or the one saved at `path`.

    Under `accelerate launch` the main process trains it while the others wait, then all load the same file.
    """
    if path is not None:
        if not (Path(path) / "config.json").is_file():
            raise FileNotFoundError(f"No feature extractor at {path!r}: pass a folder written by FeatureExtractor.save_pretrained.")
        return FeatureExtractor.from_pretrained(path, use_safetensors=True).eval()
    folder = cache_dir(dataset, seed)
    with PartialState().main_process_first():
        if not (folder / "model.safetensors").is_file():
            train_feature_extractor(dataset, data_dir, seed).save_pretrained(folder, safe_serialization=True)
        return FeatureExtractor.from_pretrained(folder, use_safetensors=True).eval()
