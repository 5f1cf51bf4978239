"""Options of the shared training loop and the data, as dataclasses for `transformers.HfArgumentParser`.

Model hyperparameters are not here: each family has its own arguments dataclass that only *builds* the
model config, and the config (saved with the weights) is what loading reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, NoReturn

from transformers import HfArgumentParser


class ArgumentParser(HfArgumentParser):
    """HfArgumentParser whose errors (a wrong type, an unknown choice) are a `ValueError`: the CLI prints one
    line, and a caller such as the zoo or a test gets an exception instead of a `SystemExit`."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(f"{message}: see `{self.prog} --help`.")


@dataclass
class DataArguments:
    dataset: str = field(
        default="digits",
        metadata={"help": "digits (built-in), fashion_mnist, a folder of images, or a Hub dataset id."},
    )
    data_dir: str | None = field(default=None, metadata={"help": "Folder with the Fashion-MNIST IDX files."})
    resolution: int | None = field(default=None, metadata={"help": "Image side in pixels (default: the data's)."})
    channels: int | None = field(default=None, metadata={"help": "1 (grey) or 3 (RGB) (default: the data's)."})

    def __post_init__(self) -> None:
        if self.resolution is not None and self.resolution <= 0:
            raise ValueError(f"--resolution must be a positive number of pixels, got {self.resolution}.")
        if self.channels not in (None, 1, 3):
            raise ValueError(f"--channels must be 1 or 3, got {self.channels}.")


@dataclass
class TrainingArguments:
    output_dir: str = field(default="out/run", metadata={"help": "Where the Hub-ready folder is written."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Start fresh in a folder holding a finished model or checkpoints (deletes them)."}
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
        default=None, metadata={"help": "Autocast precision (default: accelerate's config / launch flag)."}
    )
    use_ema: bool = field(default=True, metadata={"help": "Keep an EMA of the weights; sample and save with it."})
    ema_decay: float = field(default=0.999, metadata={"help": "Largest EMA decay (warm-up ramps up to it)."})
    checkpointing_steps: int = field(default=500, metadata={"help": "Save the full training state every N steps."})
    checkpoints_total_limit: int | None = field(default=2, metadata={"help": "Keep only the newest K checkpoints."})
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "'latest' or a checkpoint folder: continue exactly where it stopped."}
    )
    logging_steps: int = field(default=10, metadata={"help": "Log loss terms, LR and throughput every N steps."})
    sample_steps: int = field(default=500, metadata={"help": "Write a sample grid every N steps."})
    num_grid_images: int = field(default=64, metadata={"help": "Images in each sample grid."})
    dataloader_num_workers: int = 0

    def __post_init__(self) -> None:
        positive = {
            "max_steps": self.max_steps,
            "train_batch_size": self.train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "checkpointing_steps": self.checkpointing_steps,
            "logging_steps": self.logging_steps,
            "sample_steps": self.sample_steps,
            "num_grid_images": self.num_grid_images,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"--{name} must be a positive integer, got {value}.")
        if self.learning_rate <= 0:
            raise ValueError(f"--learning_rate must be positive, got {self.learning_rate}.")
        if self.lr_warmup_steps < 0:
            raise ValueError(f"--lr_warmup_steps must be >= 0, got {self.lr_warmup_steps}.")
        if not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"--ema_decay must be in (0, 1), got {self.ema_decay}.")
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit <= 0:
            raise ValueError(f"--checkpoints_total_limit must be positive, got {self.checkpoints_total_limit}.")

    def to_dict(self) -> dict:
        return asdict(self)
