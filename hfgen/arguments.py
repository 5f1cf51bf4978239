"""Options of the shared training loop and the data, as dataclasses for `transformers.HfArgumentParser`.

Model hyperparameters are not here: each family has its own arguments dataclass that only *builds* the
model config, and the config (saved with the weights) is what loading reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NoReturn

from transformers import HfArgumentParser, SchedulerType

if TYPE_CHECKING:
    import datasets

    from .data.shards import StreamedImages

BUILTIN_DATASETS = ("digits", "fashion_mnist", "photos32", "photos64")
MAX_SEED = 2**32 - 1  # numpy's limit, which accelerate's set_seed also seeds


class ArgumentParser(HfArgumentParser):
    """HfArgumentParser whose errors (a wrong type, an unknown choice) are a `ValueError`: the CLI prints one
    line, and a caller such as the zoo or a test gets an exception instead of a `SystemExit`."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(f"{message}: see `{self.prog} --help`.")

    def parse_args_into_dataclasses(self, args: list[str] | None = None, return_remaining_strings: bool = False, **kwargs) -> tuple:
        *outputs, unknown = super().parse_args_into_dataclasses(args=args, return_remaining_strings=True, **kwargs)
        if return_remaining_strings:
            return (*outputs, unknown)
        if unknown:
            raise ValueError(f"`{self.prog}` has no option {unknown[0]!r}: `{self.prog} --help` lists them.")
        return tuple(outputs)


# Checks shared by every command's options (`__post_init__` of each arguments dataclass): each raises one line
# naming the option, the bad value and the fix. `not value > 0` (rather than `value <= 0`) also refuses NaN.


def require_positive(options: object, *names: str) -> None:
    """Each of `names` is > 0 (or None: "use the default")."""
    for name in names:
        value = getattr(options, name)
        if value is not None and not value > 0:
            raise ValueError(f"--{name} must be {'a positive integer' if isinstance(value, int) else 'positive'}, got {value}.")


def require_non_negative(options: object, *names: str) -> None:
    """Each of `names` is >= 0 and finite (or None)."""
    for name in names:
        value = getattr(options, name)
        if value is not None and not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"--{name} must be >= 0, got {value}.")


def require_in(options: object, name: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> None:
    """`name` lies in the interval from `low` to `high` (open at the ends asked for), or is None."""
    value = getattr(options, name)
    if value is None:
        return
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"--{name} must be in {interval}, got {value}.")


def require_seed(options: object, name: str = "seed") -> None:
    value = getattr(options, name)
    if not 0 <= value <= MAX_SEED:
        raise ValueError(f"--{name} must be in [0, {MAX_SEED}], got {value}.")


def require_existing(name: str, path: str | None, kind: Literal["file", "folder"]) -> None:
    """An input path that must exist and be a file (or a folder)."""
    if path is None:
        return
    if not Path(path).exists():
        raise FileNotFoundError(f"--{name} {path!r} does not exist: pass an existing {kind}.")
    if (kind == "file") != Path(path).is_file():
        raise ValueError(f"--{name} {path!r} is not a {kind}: pass a {kind}.")


def require_writable(name: str, path: str | None, kind: Literal["file", "folder"]) -> None:
    """An output path must not be an existing thing of the other kind (a file where a folder goes, or vice versa)."""
    if path is None:
        return
    if kind == "folder" and Path(path).is_file():
        raise ValueError(f"--{name} {path!r} is an existing file: pass a folder.")
    if kind == "file" and Path(path).is_dir():
        raise ValueError(f"--{name} {path!r} is a folder: pass a file name, e.g. {str(Path(path) / 'samples.png')!r}.")


def require_dataset(name: str, dataset: str | None) -> None:
    """A built-in name, an existing folder of images, or a Hub id (`owner/name`); a path that is not a folder is
    refused here rather than after minutes of training."""
    if dataset is None or dataset in BUILTIN_DATASETS:
        return
    path = Path(dataset)
    if path.is_file():
        raise ValueError(f"--{name} {dataset!r} is a file: pass a folder of images, {' or '.join(BUILTIN_DATASETS)}, or a Hub id.")
    if not path.exists() and (path.is_absolute() or dataset.startswith((".", "~"))):
        raise FileNotFoundError(f"--{name} folder {dataset!r} does not exist: pass an existing folder of images.")


def require_streamable(dataset: str) -> None:
    """--streaming reads shards: a built-in dataset has none (and is read whole, in seconds)."""
    if dataset in BUILTIN_DATASETS:
        raise ValueError(
            f"--streaming reads shards, and {dataset!r} is built in (read whole, in seconds): drop "
            "--streaming, or pass a folder or Hub dataset repo of parquet or .tar shards."
        )


def require_model(name: str, model: str | None) -> None:
    """A model folder or a Hub repo id: a path that is missing or a file is refused before any work starts."""
    if model is None:
        return
    path = Path(model).expanduser()
    if path.is_file():
        raise ValueError(f"--{name} {model!r} is a file: pass a folder written by `hfgen train` or a Hub repo id.")
    if not path.exists() and (path.is_absolute() or model.startswith((".", "~")) or model.count("/") != 1):
        raise FileNotFoundError(f"--{name} {model!r} does not exist: pass a folder written by `hfgen train` or a Hub repo id.")


def require_repo_id(name: str, repo_id: str | None) -> None:
    """A Hub repo id of the form owner/name, checked with huggingface_hub's own rules."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if repo_id is None:
        return
    try:
        if repo_id.count("/") != 1:
            raise HFValidationError("it must be owner/name")
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(f"--{name} {repo_id!r} is not a Hub repo id ({error}): pass owner/name, e.g. your-name/vae-digits.") from None


def require_device(name: str, device: str | None) -> None:
    import torch

    if device is None:
        return
    try:
        torch.device(device)
    except RuntimeError:
        raise ValueError(f"--{name} {device!r} is not a torch device: use e.g. cpu, cuda or cuda:1.") from None


@dataclass
class DataArguments:
    dataset: str = field(
        default="digits",
        metadata={"help": "digits (built-in), fashion_mnist, photos32 / photos64 (built-in RGB), a folder of images, or a Hub dataset id."},
    )
    data_dir: str | None = field(default=None, metadata={"help": "Folder with the Fashion-MNIST IDX files."})
    resolution: int | None = field(default=None, metadata={"help": "Image side in pixels (default: the data's)."})
    channels: int | None = field(default=None, metadata={"help": "1 (grey) or 3 (RGB) (default: the data's)."})
    center_crop: bool = field(
        default=False,
        metadata={"help": "Crop the center square after resizing the shorter side to --resolution; off: a random square "
                          "(diffusers' --center_crop)."},
    )
    random_flip: bool = field(
        default=False, metadata={"help": "Mirror training images left-right with probability 1/2 (diffusers' --random_flip)."}
    )
    streaming: bool = field(
        default=False,
        metadata={"help": "Read the training split's parquet or webdataset .tar shards (a folder or Hub dataset repo) as "
                          "training goes, without downloading the dataset first."},
    )
    streaming_shards: int = field(default=2, metadata={"help": "With --streaming: shards held in memory at most."})
    streaming_retries: int = field(
        default=3, metadata={"help": "With --streaming: tries again after a failed Hub read, waiting 1, 2, 4, ... s."}
    )
    skip_bad_samples: bool = field(
        default=False,
        metadata={"help": "With --streaming: skip an image that does not decode, logging each (default: stop, naming it)."},
    )

    def __post_init__(self) -> None:
        require_dataset("dataset", self.dataset)
        require_existing("data_dir", self.data_dir, "folder")
        require_positive(self, "resolution", "streaming_shards")
        require_non_negative(self, "streaming_retries")
        if self.channels not in (None, 1, 3):
            raise ValueError(f"--channels must be 1 or 3, got {self.channels}.")
        if self.streaming:
            require_streamable(self.dataset)

    def load_images(self, split: str = "train") -> datasets.Dataset | StreamedImages:
        """The `split` to train on: a `datasets.Dataset`, or with --streaming its shards read as training goes."""
        from .data import load_image_dataset
        from .data.shards import StreamedImages

        if self.streaming:
            return StreamedImages(self.dataset, split, self.streaming_shards, self.streaming_retries, self.skip_bad_samples)
        return load_image_dataset(self.dataset, split, self.data_dir)

    def image_transform(self, resolution: int, channels: int) -> Callable[[dict[str, list]], dict]:
        """The training transform these options ask for (`hfgen.data.image_transform`), so every family crops and
        flips the same way."""
        from .data import image_transform

        return image_transform(resolution, channels, self.center_crop, self.random_flip)


@dataclass
class TrainingArguments:
    output_dir: str = field(default="out/run", metadata={"help": "Where the Hub-ready folder is written."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Start fresh in a folder holding a finished model or checkpoints (deletes them)."}
    )
    preset: str | None = field(
        default=None,
        metadata={"help": "A named published architecture of the family (`hfgen presets` lists them); a --config file "
                          "and flags override its model options."},
    )
    seed: int = field(default=0, metadata={"help": "Seeds weights, data order and noise: same seed, same run."})
    max_steps: int = field(default=3000, metadata={"help": "Optimizer steps to train for."})
    train_batch_size: int = field(default=64, metadata={"help": "Examples per process per micro-step."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-steps per optimizer step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak learning rate (families may scale it)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Any transformers.get_scheduler name."})
    lr_warmup_steps: int = field(default=100, metadata={"help": "Linear warm-up steps."})
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    weight_decay: float = 0.0
    max_grad_norm: float | None = field(default=1.0, metadata={"help": "Clip gradients to this norm; 0 or None: off."})
    mixed_precision: Literal["no", "fp16", "bf16"] | None = field(
        default=None, metadata={"help": "Autocast precision: no, bf16, or fp16 (GPU only) (default: accelerate's config / launch flag)."}
    )
    torch_compile: bool = field(
        default=False,
        metadata={"help": "torch.compile every network (accelerate's dynamo backend); the first steps pay for compiling. "
                          "Off, `accelerate launch --dynamo_backend` still applies."},
    )
    torch_compile_backend: Literal["inductor", "aot_eager", "eager"] = field(
        default="inductor", metadata={"help": "The torch.compile backend of --torch_compile."}
    )
    channels_last: bool = field(
        default=False, metadata={"help": "Keep convolution weights, and so activations, channels-last (NHWC) in memory."}
    )
    use_ema: bool = field(default=True, metadata={"help": "Keep an EMA of the weights; sample and save with it."})
    ema_decay: float = field(default=0.999, metadata={"help": "Largest EMA decay (warm-up ramps up to it)."})
    checkpointing_steps: int = field(default=500, metadata={"help": "Save the full training state every N steps."})
    checkpoints_total_limit: int | None = field(default=2, metadata={"help": "Keep only the newest K checkpoints."})
    resume_from_checkpoint: str | None = field(
        default=None,
        metadata={"help": "'latest', a checkpoint folder, or a Hub repo id pushed with --include_checkpoints: continue "
                          "exactly where it stopped."},
    )
    logging_steps: int = field(default=10, metadata={"help": "Log loss terms, LR and throughput every N steps."})
    sample_steps: int = field(default=500, metadata={"help": "Write a sample grid every N steps."})
    num_grid_images: int = field(default=64, metadata={"help": "Images in each sample grid."})
    dataloader_num_workers: int = 0
    log_sample_ids: bool = field(
        default=False,
        metadata={"help": "Append the dataset index of every sample each step trained on to sample_ids.jsonl (proof of "
                          "the data order across resumes and process counts)."},
    )
    push_to_hub: bool = field(default=False, metadata={"help": "Push the finished folder (card included) to --hub_model_id."})
    hub_model_id: str | None = field(default=None, metadata={"help": "The Hub repo to push to: owner/name."})

    def __post_init__(self) -> None:
        require_writable("output_dir", self.output_dir, "folder")
        require_seed(self)
        require_positive(
            self, "max_steps", "train_batch_size", "gradient_accumulation_steps", "checkpointing_steps", "logging_steps",
            "sample_steps", "num_grid_images", "learning_rate", "checkpoints_total_limit",
        )
        require_non_negative(self, "lr_warmup_steps", "weight_decay", "max_grad_norm", "dataloader_num_workers")
        for name in ("adam_beta1", "adam_beta2"):
            require_in(self, name, 0.0, 1.0, high_open=True)
        require_in(self, "ema_decay", 0.0, 1.0, low_open=True, high_open=True)
        if self.lr_scheduler_type not in {s.value for s in SchedulerType}:
            raise ValueError(
                f"--lr_scheduler_type {self.lr_scheduler_type!r} is not a transformers scheduler: use one of "
                f"{', '.join(s.value for s in SchedulerType)}."
            )
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("--push_to_hub needs --hub_model_id owner/name: the Hub repo to push to.")
        require_repo_id("hub_model_id", self.hub_model_id)

    def to_dict(self) -> dict:
        return asdict(self)
