"""`hfgen evaluate <model>`: FID, KID, precision/recall and bits/dim of a trained model in the features of a named
judge, printed as a table, optionally saved (`--output`) and added to the model's card (`--update_card`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accelerate import PartialState

from ..arguments import (
    ArgumentParser, require_dataset, require_device, require_existing, require_positive, require_seed, require_streamable,
    require_writable,
)
from ..evaluation.evaluator import Evaluator, evaluation_results, markdown_table, trained_data
from ..evaluation.judges import JUDGE_HELP, JUDGE_MODEL_HELP, JudgeName, check_judge_model
from ..evaluation.splits import STREAMING_IMAGES
from ..families import LikelihoodSettings, family_of_pipeline
from ..hub.cards import update_card
from ..loading import load_pipeline
from ..call_checks import SchedulerName
from . import positional_model


@dataclass
class EvaluateArguments:
    model: str = field(metadata={"help": "A folder written by `hfgen train`, or a Hub repo id."})
    revision: str | None = field(default=None, metadata={"help": "Hub repo ids: the branch, tag or commit to evaluate."})
    dataset: str | None = field(default=None, metadata={"help": "Dataset to judge against (default: the one it was trained on)."})
    data_dir: str | None = field(default=None, metadata={"help": "Folder with the Fashion-MNIST IDX files."})
    streaming: bool = field(
        default=False,
        metadata={"help": "Read the train (reference) and test (held-out) splits as a seeded sample of their shards (a "
                          "folder or Hub dataset repo of parquet or .tar shards), without downloading the dataset (default: "
                          "on when the model was trained with --streaming and --dataset is not given)."},
    )
    streaming_images: int = field(
        default=STREAMING_IMAGES,
        metadata={"help": "With --streaming: images read of each split at most, whole shards in a seeded order (default "
                          "10,000: FID-10k's reference size, and MNIST's and CIFAR-10's test splits'; 0.5 GB as floats at "
                          "64x64 RGB)."},
    )
    num_samples: int = field(default=2000, metadata={"help": "Images to generate for the sample metrics."})
    batch_size: int = field(default=250, metadata={"help": "Images per pipeline call (and per likelihood batch)."})
    seed: int = field(default=0, metadata={"help": "Seeds sampling, KID subsets and the extractor: same seed, same numbers."})
    output: str | None = field(default=None, metadata={"help": "Write the results to this JSON file."})
    device: str | None = field(default=None, metadata={"help": "torch device to sample on (default: this process's)."})
    scheduler: SchedulerName = field(default="dpmsolver", metadata={"help": "Diffusion sampler."})
    steps: int = field(default=20, metadata={"help": "Diffusion denoising steps."})
    iwae_samples: int = field(default=1000, metadata={"help": "VAE: importance samples of the IWAE bound."})
    bpd_timesteps: int = field(
        default=100,
        metadata={"help": "Diffusion: UNet terms of the variational bound, a stratified subsample of T - 1 (999: exact)."},
    )
    likelihood: bool = field(default=True, metadata={"help": "Compute test bits/dim where the family has a likelihood."})
    likelihood_images: int | None = field(
        default=None, metadata={"help": "Measure bits/dim on this many test images, a seeded random subset (default: all)."}
    )
    subset_size: int | None = field(
        default=None,
        metadata={"help": "Images per KID subset and precision/recall manifold (default: min(1000, the floor row's half))."},
    )
    judge: JudgeName | None = field(default=None, metadata={"help": JUDGE_HELP})
    judge_model: str | None = field(default=None, metadata={"help": JUDGE_MODEL_HELP})
    reference_rows: bool = field(
        default=True,
        metadata={"help": "Also judge the held-out floor, the KDE and SMOTE baselines and Gaussian noise (the ceiling) with "
                  "the same judge and sizes, so the model's numbers read between a floor and a ceiling."},
    )
    update_card: bool = field(
        default=False, metadata={"help": "Save the results in the model folder and add them to its card's model-index."}
    )

    def __post_init__(self) -> None:
        require_positive(
            self, "num_samples", "batch_size", "steps", "iwae_samples", "bpd_timesteps", "subset_size", "likelihood_images",
            "streaming_images",
        )
        require_seed(self)
        require_device("device", self.device)
        require_dataset("dataset", self.dataset)
        if self.streaming and self.dataset is not None:
            require_streamable(self.dataset)
        require_existing("data_dir", self.data_dir, "folder")
        check_judge_model(self.judge, self.judge_model)
        require_writable("output", self.output, "file")
        if self.update_card and not Path(self.model).expanduser().is_dir():
            raise ValueError(f"--update_card writes into the model folder; {self.model!r} is not a local folder (push it after: `hfgen push`).")
        if self.num_samples < 16:
            raise ValueError(f"--num_samples must be at least 16 (FID∞ and the error bars fit on halves), got {self.num_samples}.")



def evaluate(args: EvaluateArguments) -> dict[str, Any] | None:
    """`hfgen evaluate`: the results as a dict (main process; None on the others), printed and optionally saved."""
    folder = Path(args.model)
    if folder.is_dir() and (folder / "config.json").is_file() and not (folder / "model_index.json").is_file():
        raise ValueError(
            f"{args.model!r} holds a model without an image pipeline (a text model?): image metrics do not apply - "
            "its validation perplexity is in train_log.jsonl."
        )
    trained = trained_data(args.model, args.revision)
    dataset = args.dataset or trained.get("dataset")
    streaming = args.streaming or (args.dataset is None and trained.get("streaming", False))  # as it was trained
    if dataset is None:
        raise ValueError(f"{args.model!r} does not say which dataset it was trained on: pass --dataset (e.g. digits).")
    state = PartialState()
    pipe = load_pipeline(args.model, args.revision).to(args.device or state.device)
    family = family_of_pipeline(pipe)
    evaluator = Evaluator(
        dataset, args.data_dir, args.seed, args.subset_size, args.likelihood_images, args.judge, args.judge_model,
        streaming_images=args.streaming_images if streaming else None,
        resolution=trained.get("resolution"), channels=trained.get("channels"),  # the sizes the model makes
    )
    evaluation = evaluator.evaluate_pipeline(
        pipe, args.num_samples, args.batch_size, family.sampling_options(pipe, args.scheduler, args.steps),
        family.likelihood_options(LikelihoodSettings(args.iwae_samples, args.bpd_timesteps, evaluator.grey_levels)) if args.likelihood else None,
    )
    if evaluation is None:
        return None
    results = evaluation_results(args.model, pipe, evaluator, args.num_samples, evaluation)
    rows = {args.model: evaluation.metrics}
    if args.reference_rows:
        results["reference_rows"] = {name: e.metrics for name, e in evaluator.reference_rows(args.num_samples).items()}
        rows |= {f"*{name}*": metrics for name, metrics in results["reference_rows"].items()}
    print(f"judge: {results['judge']['title']}")
    print(markdown_table(rows))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(results, indent=2))
        print(f"wrote {args.output}")
    if args.update_card:
        card = update_card(Path(args.model), results)
        print(f"wrote {card}" if card else f"wrote {Path(args.model) / 'eval_results.json'} (this family has no card template)")
    return results


def run(argv: list[str]) -> None:
    parser = ArgumentParser(EvaluateArguments, prog="hfgen evaluate")
    (args,) = parser.parse_args_into_dataclasses(args=positional_model(argv))
    evaluate(args)
