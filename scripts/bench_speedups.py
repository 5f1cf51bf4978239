"""Training images/s of every family with and without `--channels_last` and `--torch_compile`, in one run.

Each preset (default: the CPU-sized ones, the zoo's digits networks) is built once per variant as
`hfgen train <family> --preset NAME <variant flags>` builds it (bench_presets.py's synthetic data, the real
`Trainer`). Every variant's `Trainer.training_step` runs on the same batch in memory; after each one's warm-up
steps, the variants alternate round by round (in alternating order, so a load change on the machine hits all of
them) and each one's images/s is the median of `--rounds` rounds. The ratio is against eager in the same run.

Compiling is counted: the first compiled step (dynamo tracing, inductor's code generation and C++ build) minus an
eager step is the compile cost, and break-even is the steps after which the faster step has paid for it. That the
variants compute what eager does is tests/test_speedups.py's job, not this script's.

    OMP_NUM_THREADS=2 python scripts/bench_speedups.py --batch_size 64 --output bench-speedups.json
    python scripts/bench_speedups.py --device cuda --batch_size 64 --presets ddpm-cifar10 dcgan
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import patch_environment

from bench_presets import preset_argv, quiet_progress_bars, seconds_per_step, shape_label
from hfgen.families import families, get_family
from hfgen.training.launch import parse_run
from hfgen.training.trainer import Trainer, train_loader

VARIANTS: dict[str, tuple[str, ...]] = {
    "eager": (),
    "channels_last": ("--channels_last",),
    "compile": ("--torch_compile",),
    "compile + channels_last": ("--torch_compile", "--channels_last"),
}
WARMUP_STEPS = 3
"""Steps before timing: the first compiles (and is timed as the compile cost); inductor may recompile once more."""


def build_step(preset_name: str, flags: tuple[str, ...], workdir: Path, options: argparse.Namespace):
    """A Trainer for the preset with `flags`, and its training step on one batch in memory."""
    preset = next(p for family in families() for p in family.presets if p.name == preset_name)
    training, data, model = parse_run(preset.family, [*preset_argv(preset, workdir, options), *flags])
    objective = get_family(preset.family).objective(model, data)
    micro_batch = next(iter(train_loader(objective.train_dataset(), training)))
    trainer = Trainer(objective, training)
    return preset, lambda: trainer.training_step([micro_batch], 0)


def measure(preset_name: str, options: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """One preset: every variant's images/s, its ratio to eager, and for the compiled ones what compiling cost."""
    with tempfile.TemporaryDirectory() as folder:
        steps, first_step = {}, {}
        for name in options.variants:
            flags = (*VARIANTS[name], "--torch_compile_backend", options.compile_backend)
            preset, step = build_step(preset_name, flags, Path(folder) / name.replace(" + ", "-"), options)
            first_step[name] = seconds_per_step(step, 1, device)
            seconds_per_step(step, WARMUP_STEPS - 1, device)
            steps[name] = step
        per_round = options.steps or max(1, round(options.round_seconds / seconds_per_step(steps["eager"], 1, device)))
        rounds: dict[str, list[float]] = {name: [] for name in steps}
        for index in range(options.rounds):
            for name, step in list(steps.items())[:: 1 if index % 2 == 0 else -1]:
                rounds[name].append(seconds_per_step(step, per_round, device))
    seconds = {name: statistics.median(values) for name, values in rounds.items()}
    row: dict[str, Any] = {"preset": preset_name, "family": preset.family, "shape": shape_label(preset, options), "variants": {}}
    for name, step_seconds in seconds.items():
        variant = {
            "train_images_per_s": options.batch_size / step_seconds,
            "ratio": statistics.median(eager / ours for ours, eager in zip(rounds[name], rounds["eager"])),
            "round_seconds": rounds[name],
        }
        if "compile" in name:
            variant["compile_seconds"] = first_step[name] - first_step["eager"]
            saved = seconds["eager"] - step_seconds
            variant["break_even_steps"] = variant["compile_seconds"] / saved if saved > 0 else None
        row["variants"][name] = variant
    return row


def markdown_table(rows: list[dict[str, Any]], variants: list[str]) -> str:
    lines = [
        "| preset | family | shape | " + " | ".join(f"{name} img/s (ratio)" for name in variants) + " | compile s (break-even steps) |",
        "| --- | --- | --- | " + " | ".join("---:" for _ in variants) + " | ---: |",
    ]
    for row in rows:
        cells = [f"{v['train_images_per_s']:,.0f} ({v['ratio']:.2f})" for v in (row["variants"][name] for name in variants)]
        compiled = row["variants"].get("compile")
        cost = "-"
        if compiled:
            even = compiled["break_even_steps"]
            cost = f"{compiled['compile_seconds']:.1f} ({f'{even:,.0f}' if even is not None else 'never'})"
        lines.append(f"| {row['preset']} | {row['family']} | {row['shape']} | " + " | ".join(cells) + f" | {cost} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    small = [p.name for family in families() for p in family.presets if p.name.endswith("-small")]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--presets", nargs="+", default=small, metavar="NAME", help="Default: the CPU-sized presets.")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--compile_backend", default="inductor", help="--torch_compile_backend of the compiled variants.")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="Timed rounds per variant; the median is reported.")
    parser.add_argument("--round_seconds", type=float, default=3.0, help="Length an eager round aims at.")
    parser.add_argument("--steps", type=int, default=None, help="Training steps per round (default: --round_seconds).")
    parser.add_argument("--text_block_size", type=int, default=256, help="Tokens per block of a text preset.")
    parser.add_argument("--output", type=Path, default=None, help="Write the results as JSON here.")
    options = parser.parse_args(argv)
    if "eager" not in options.variants:
        parser.error("--variants needs eager: every ratio is against it.")
    if options.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here.")
    options.mixed_precision, options.sample_steps = "no", 20  # what bench_presets' preset_argv reads
    device = torch.device(options.device)
    results: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
        "torch": torch.__version__, "threads": torch.get_num_threads(), "batch_size": options.batch_size,
        "compile_backend": options.compile_backend, "rows": [],
    }
    on_device = patch_environment(ACCELERATE_USE_CPU="1") if device.type == "cpu" else nullcontext()
    with on_device:
        for name in options.presets:
            start = time.perf_counter()
            results["rows"].append(measure(name, options, device))
            print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
            if options.output:  # row by row: hours of measurement survive a preset that fails
                options.output.write_text(json.dumps(results, indent=2))
    print(f"\n{results['device']}, torch {results['torch']}, {results['threads']} threads, batch {options.batch_size}\n")
    print(markdown_table(results["rows"], options.variants))
    return results


if __name__ == "__main__":
    quiet_progress_bars()
    main()
