"""The `Evaluator`: sample a trained model in batches (split across processes) and judge it; its results as a table.

Every number comes from one `Evaluator` per dataset - the same judge, reference set and seed - so rows of
different families (and the reference rows) compare; the judge is named in every result, so numbers from
different judges never are.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from diffusers import DiffusionPipeline

from ..loading import read_model_file
from .baselines import HELD_OUT_SHARE, evaluation_splits, floor_size, reference_samples
from .judges import JudgeName, load_judge
from .likelihood import bits_per_dim, bits_per_dim_error, has_likelihood, log_likelihood
from .metrics import MIN_IMAGES, GenerativeMetrics
from .splits import EvaluationData

COLUMNS = {
    "parameters": "parameters",
    "train_seconds": "train time (s)",
    "samples_per_second": "samples/s",
    "fid": "FID∞ ↓",
    "kid": "KID ↓",
    "precision": "precision ↑",
    "recall": "recall ↑",
    "nn_distance": "NN dist.",
    "classifier_score": "class score ↑",
    "bits_per_dim": "bits/dim ↓",
}
"""Metric key -> table header, in table order. NN dist. is the RMS pixel distance to the nearest training image.
A metric with an `<key>_error` in the row is shown as value ± error."""


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    images: torch.Tensor
    """(N, C, H, W) in [0, 1]: the samples that were judged."""


def count_parameters(pipe: DiffusionPipeline) -> int:
    """Parameters of the networks sampling uses; optional components (a GAN's discriminator, kept only to resume
    training) are left out."""
    return sum(
        p.numel()
        for name, component in pipe.components.items()
        if isinstance(component, torch.nn.Module) and name not in pipe._optional_components
        for p in component.parameters()
    )


def generate(
    pipe: DiffusionPipeline, num: int, batch_size: int, seed: int = 0, **options: Any
) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """(num, C, H, W) samples in [0, 1], their class labels (cycling, for conditional models) and wall seconds.

    Batches are split across processes and gathered in order; batch b uses seed + its first index, so the
    images are the same whatever the number of processes.
    """
    classes = pipe.num_classes
    starts = list(range(0, num, batch_size))
    started = time.perf_counter()
    with PartialState().split_between_processes(starts) as mine:
        batches = []
        for start in mine:
            size = min(batch_size, num - start)
            labels = {"class_labels": torch.arange(start, start + size) % classes} if classes else {}
            generator = torch.Generator(pipe.device).manual_seed(seed + start)
            batches.append(pipe(batch_size=size, generator=generator, output_type="pt", **labels, **options).images.cpu())
    images = torch.cat(gather_object(batches))
    return images, torch.arange(num) % classes if classes else None, time.perf_counter() - started


def held_out_bits_per_dim(
    pipe: DiffusionPipeline, test: torch.Tensor, batch_size: int, options: dict[str, Any], seed: int = 0
) -> tuple[float, float]:
    """Bits/dim of the test images (N, C, H, W) in [0, 1] and its standard error, batches split across processes;
    `options` go to the pipeline's `log_likelihood`."""
    with PartialState().split_between_processes(list(range(0, len(test), batch_size))) as mine:
        values = [
            log_likelihood(
                pipe, test[s : s + batch_size].to(pipe.device), torch.Generator(pipe.device).manual_seed(seed + s), **options
            )
            for s in mine
        ]
    log_likelihoods, dims = torch.cat(gather_object(values)), test[0].numel()
    return bits_per_dim(log_likelihoods, dims), bits_per_dim_error(log_likelihoods, dims)


class Evaluator:
    """The fixed judge of one dataset: its judge (`load_judge`: by default the classifier on labelled data, else the
    self-supervised CNN), the train split as reference set, the test split (or a held-out sixth of train) - each
    split read whole, or with `streaming_images` a seeded sample of at most that many rows of its shards
    (`EvaluationData`), the same for the judge's training as for the reference set; at `resolution` and `channels`
    where given (a model trained on resized images: `hfgen evaluate` passes its training sizes).

    Every row of one sample count shares one `subset_size` (KID subsets, precision/recall manifolds): by default
    the most that the smallest row allows - half its images (the jackknife's halves), the floor's or the models'.
    """

    def __init__(
        self,
        dataset: str = "digits",
        data_dir: str | None = None,
        seed: int = 0,
        subset_size: int | None = None,
        likelihood_images: int | None = None,
        judge: JudgeName | None = None,
        judge_model: str | None = None,
        streaming_images: int | None = None,
        resolution: int | None = None,
        channels: int | None = None,
    ) -> None:
        self.dataset, self.seed = dataset, seed
        self.data = EvaluationData(dataset, data_dir, streaming_images, seed, resolution, channels)
        self.judge = load_judge(judge, self.data, model=judge_model).to(PartialState().device)
        # (N, C, H, W) in [0, 1] each; (N,) test labels or None; the grid every bits/dim is counted on
        self.train, self.test, self.test_labels, self.grey_levels = evaluation_splits(self.data, seed=seed)
        self.subset_size = subset_size
        self.metrics = GenerativeMetrics(self.judge, self.train, seed=seed)
        # The test images every bits/dim is measured on: all of them, or the same seeded random `likelihood_images`
        # of them for every family (a CPU budget's bounds on 10,000 images take too long).
        self.likelihood_test = self.test
        if likelihood_images is not None and likelihood_images < len(self.test):
            chosen = torch.randperm(len(self.test), generator=torch.Generator().manual_seed(seed))[:likelihood_images]
            self.likelihood_test = self.test[chosen.sort().values]

    def matched_subset_size(self, num_samples: int) -> int:
        """The one subset size of every row judged with `num_samples` samples per model."""
        return self.subset_size or min(1000, floor_size(len(self.test)) // 2, num_samples // 2)

    @property
    def judge_info(self) -> dict[str, Any]:
        """What every result says about its judge (`"judge"` in metrics.json, the card, the zoo report)."""
        return self.judge.describe()

    @property
    def data_info(self) -> dict[str, Any]:
        """What every result says about the real images (`"data"` in metrics.json): whether they were streamed, and
        how many were judged against - the reference set (train) and the held-out images (test, or train's sixth)."""
        return {**self.data.describe(), "reference_images": len(self.train), "held_out_images": len(self.test)}

    def evaluate_pipeline(
        self,
        pipe: DiffusionPipeline,
        num_samples: int = 2000,
        batch_size: int = 250,
        options: dict[str, Any] | None = None,
        likelihood_options: dict[str, Any] | None = None,
    ) -> Evaluation | None:
        """Sample, time and judge `pipe`; the main process gets the `Evaluation`, the others None.

        `options` go to each pipeline call; bits/dim is computed when the pipeline has a likelihood and
        `likelihood_options` (the keyword arguments of its `log_likelihood`) are given.
        """
        pipe.set_progress_bar_config(disable=True)
        images, labels, seconds = generate(pipe, num_samples, batch_size, self.seed, **(options or {}))
        scored = likelihood_options is not None and has_likelihood(pipe)
        bpd, bpd_error = (
            held_out_bits_per_dim(pipe, self.likelihood_test, batch_size, likelihood_options, self.seed) if scored else (None, None)
        )
        if not PartialState().is_main_process:
            return None
        metrics = {
            "parameters": count_parameters(pipe),
            "samples_per_second": num_samples / seconds,
            **self.metrics(images, labels, self.matched_subset_size(num_samples)),
            "bits_per_dim": bpd,
            "bits_per_dim_error": bpd_error,
            "bits_per_dim_images": len(self.likelihood_test) if scored else None,
        }
        return Evaluation(metrics, images)

    def reference_rows(self, num_samples: int = 2000) -> dict[str, Evaluation]:
        """Real test images (the floor), the KDE and SMOTE samplers (the bars to beat), Gaussian noise (the ceiling)."""
        if floor_size(len(self.test)) < MIN_IMAGES:
            raise ValueError(
                f"{self.dataset!r} has {len(self.test)} held-out images; the floor row takes two thirds of them and needs "
                f"at least {MIN_IMAGES}: add images (a test/ folder of at least {MIN_IMAGES * 3 // 2}, or at least "
                f"{MIN_IMAGES * 3 // 2 * HELD_OUT_SHARE} in all), or pass --no_reference_rows."
            )
        samples = reference_samples(self.train, self.test, self.test_labels, num_samples, self.seed)
        size = self.matched_subset_size(num_samples)
        return {name: Evaluation(self.metrics(images, subset_size=size), images) for name, images in samples.items()}


def format_value(key: str, value: Any, error: float | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if key == "parameters":
        return f"{value / 1e6:.2f}M" if value >= 1e5 else f"{value:,}"
    if key in ("train_seconds", "samples_per_second"):
        return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    if error is not None and not math.isnan(error):  # the value to the error bar's precision: 2 significant digits of the error
        decimals = max(0, 1 - math.floor(math.log10(error))) if error > 0 else 3
        return f"{value:.{decimals}f} ± {error:.{decimals}f}"
    return f"{value:.3f}" if key in ("precision", "recall", "classifier_score") else f"{value:.4g}"


def markdown_table(rows: dict[str, dict[str, Any]], first_column: str = "model") -> str:
    """Rows by name -> a Markdown table of the COLUMNS any row has (value ± error where the row has an error);
    missing values read n/a."""
    keys = [k for k in COLUMNS if any(k in row for row in rows.values())]
    lines = [
        "| " + " | ".join([first_column, *(COLUMNS[k] for k in keys)]) + " |",
        "| " + " | ".join(["---"] + ["---:"] * len(keys)) + " |",
    ]
    lines += [
        "| " + " | ".join([name, *(format_value(k, row.get(k), row.get(f"{k}_error")) for k in keys)]) + " |"
        for name, row in rows.items()
    ]
    return "\n".join(lines)


def evaluation_results(model: str, pipe: DiffusionPipeline, evaluator: Evaluator, num_samples: int, evaluation: Evaluation) -> dict[str, Any]:
    """What one model's evaluation saves (`--output`, the card's model-index): its numbers and how they were judged."""
    return {
        "model": model,
        "pipeline": type(pipe).__name__,
        "dataset": evaluator.dataset,
        "num_samples": num_samples,
        "seed": evaluator.seed,
        "data": evaluator.data_info,
        "judge": evaluator.judge_info,
        "metrics": evaluation.metrics,
    }


def trained_data(model: str, revision: str | None = None) -> dict[str, Any]:
    """The data options in the model's training_args.json (written by `hfgen train`; a folder or Hub repo): `dataset`,
    `streaming`, ...; empty when it has none."""
    arguments = read_model_file(model, "training_args.json", revision)
    return arguments.get("data", {}) if arguments else {}


def trained_dataset(model: str, revision: str | None = None) -> str | None:
    """The dataset the model was trained on, if its training_args.json says."""
    return trained_data(model, revision).get("dataset")
