"""Parse a family's training options (flags and/or a YAML/JSON file) and run the shared loop on them."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml

from ..arguments import ArgumentParser, DataArguments, TrainingArguments
from ..families import get_family

if TYPE_CHECKING:
    from .trainer import TrainOutput


def parse_with_config_file(parser: ArgumentParser, argv: list[str]) -> tuple:
    """Flags override values from `--config file.(yaml|json)`, which override the dataclass defaults."""
    argv = list(argv)
    if "--config" in argv:
        at = argv.index("--config")
        if at + 1 >= len(argv):
            raise ValueError("--config needs a path to a .yaml or .json file of options.")
        path = Path(argv[at + 1])
        del argv[at : at + 2]
        if not path.is_file():
            raise FileNotFoundError(f"Config file {str(path)!r} does not exist: pass an existing .yaml or .json file.")
        values = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
        if not isinstance(values, dict):
            raise ValueError(f"Config file {str(path)!r} must hold a mapping of option: value.")
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Config file {str(path)!r} has unknown options {unknown}: see `--help` for the valid ones.")
        parser.set_defaults(**values)
    return parser.parse_args_into_dataclasses(args=argv)


def parse_run(family_name: str, argv: list[str]) -> tuple[TrainingArguments, DataArguments, Any]:
    """`hfgen train <family>`'s options: (training, data, model) arguments.

    `--preset NAME` (a flag or a --config value) replaces the model defaults with the preset's; the options are
    then parsed again over them, so the --config file and the flags still win.
    """
    family = get_family(family_name)

    def parse(defaults: Mapping[str, Any]) -> tuple[TrainingArguments, DataArguments, Any]:
        parser = ArgumentParser((TrainingArguments, DataArguments, family.arguments), prog=f"hfgen train {family_name}")
        parser.set_defaults(**defaults)
        return parse_with_config_file(parser, argv)

    options = parse({})
    return options if options[0].preset is None else parse(family.preset(options[0].preset).arguments)


NOT_THE_RUN = (
    "resume_from_checkpoint", "overwrite_output_dir", "output_dir", "torch_compile", "torch_compile_backend", "channels_last",
    "checkpoints_total_limit", "checkpointing_steps", "logging_steps", "sample_steps", "num_grid_images", "log_sample_ids",
)
"""Training options that change how a run was started, how fast it ran or how it was watched (its logs, preview
grids and checkpoints), not what it trained: every random draw of a step is keyed by the seed, the sample and the
step (`hfgen.randomness`), so watching a run more often draws nothing from it (tested)."""


def finished_run_seconds(family_name: str, argv: list[str], num_processes: int) -> float | None:
    """The train seconds of the finished run of exactly these options that their --output_dir already holds, or None.

    A run is the same when its training_args.json records the same options - aside from how it was started (fresh
    or resumed), how its folder was spelled then (relative, absolute, since moved), how fast its steps ran
    (compiled or not, channels-last or not: the same results, tested) and how often it was logged, previewed and
    checkpointed (so a learning curve's run is the zoo's run of its length) - it reached --max_steps on as many
    processes, and its weights are in place; `hfgen zoo --reuse_trained` keeps such a folder instead of training it
    again.
    """
    from .checkpoints import ENTRY_FILES
    from .trainer import RUN_INFO_FILE, TRAINING_ARGS_FILE, training_record

    training, data, model = parse_run(family_name, argv)
    folder = Path(training.output_dir)
    try:
        recorded = json.loads((folder / TRAINING_ARGS_FILE).read_text())
        info = json.loads((folder / RUN_INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    expected = training_record(training, run_arguments(family_name, data, model))
    for arguments in (recorded, expected):
        for not_the_run in NOT_THE_RUN:
            arguments.get("training", {}).pop(not_the_run, None)
    finished = (
        any((folder / name).is_file() for name in ENTRY_FILES)
        and info.get("global_step") == training.max_steps
        and info.get("num_processes") == num_processes
        and "train_seconds" in info
    )
    return float(info["train_seconds"]) if finished and recorded == expected else None


def run_arguments(family_name: str, data: DataArguments, model: Any) -> dict[str, Any]:
    """What training_args.json records next to the training arguments."""
    return {"family": family_name, "data": asdict(data), "model": asdict(model)}


def train_or_keep(family_name: str, argv: list[str], reuse_trained: bool) -> float:
    """Train one run and return its train seconds - or with `reuse_trained`, keep the finished run of these options
    that its --output_dir holds (`finished_run_seconds`) and return the seconds it recorded."""
    kept = finished_run_seconds(family_name, argv, 1) if reuse_trained else None
    return train(family_name, argv).train_seconds if kept is None else kept


def train(family_name: str, argv: list[str]) -> TrainOutput:
    """Train one family with the shared loop on the options `hfgen train <family>` takes; see `train_run`."""
    return train_run(family_name, *parse_run(family_name, argv), argv)


def train_run(family_name: str, training: TrainingArguments, data: DataArguments, model: Any, argv: list[str]) -> TrainOutput:
    """Train one family on parsed options (`argv`, as given, goes into the run's record) and leave its folder with
    weights, configs, sample grid and run_info.json; the card and any push are the caller's (`hfgen train` does both)."""
    # The training stack (accelerate, EMA, tensorboard) loads only now: `--help` and bad flags answer without it.
    from accelerate import PartialState

    from .trainer import Trainer

    objective = get_family(family_name).objective(model, data)
    command = ["hfgen", "train", family_name, *map(str, argv)]
    output = Trainer(objective, training, run_arguments(family_name, data, model), command=command).train()
    if PartialState().is_main_process:
        record_training(Path(training.output_dir), output.train_seconds)
    return output


def machine() -> str:
    """The hardware a time was measured on: the GPU, or the CPU with the threads torch ran on - on a CPU the thread
    count sets the speed, and it changes the last bits of some kernels (a GAN run differs at 1 and 2 threads)."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def record_training(folder: Path, train_seconds: float) -> None:
    """Add what only the training process knows - wall time and hardware - to run_info.json, for the card."""
    from .trainer import RUN_INFO_FILE

    run_info_file = folder / RUN_INFO_FILE
    info = json.loads(run_info_file.read_text()) if run_info_file.is_file() else {}
    info |= {"train_seconds": round(float(train_seconds), 1), "hardware": machine(), "torch": torch.__version__}
    run_info_file.write_text(json.dumps(info, indent=2))
