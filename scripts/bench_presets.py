"""What a training step costs, for every preset at its resolution, measured in one run on one machine.

Each preset (`hfgen presets`) is built as `hfgen train <family> --preset NAME` builds it - `parse_run`, the family's
objective, the real `Trainer` - on seeded synthetic data of the preset's shape, and measured:

- train img/s: `Trainer.training_step` (forward, backward, clipping, AdamW, LR schedule, EMA: the step `hfgen train`
  runs), the median of `--rounds` rounds of `--steps` steps (enough for `--round_seconds`) after two warm-up steps,
  on one batch already in memory (the loader is measured on its own, below). The GAN's step is one discriminator
  and one generator update; for text one block of `--text_block_size` tokens counts as one image.
- sample img/s: the family's `Objective.samples` (what the Trainer's sample grids call: its pipeline), calls of
  `--sample_batch_size` for at least `--round_seconds` after a one-sample warm-up; diffusion and latent diffusion
  with DPM-Solver++ at `--sample_steps` steps, text as sequences of 96 new tokens (at most 8 per call), the VAE's
  grid as half prior samples, half reconstructions.
- peak MiB: what building and training the preset adds to the process - peak RSS (VmHWM, reset through
  /proc/self/clear_refs) minus RSS before, on CPU; `torch.cuda.max_memory_allocated` minus allocated before, on CUDA.
- GFLOP/train img: `torch.utils.flop_counter.FlopCounterMode` over the first (warm-up) training step (matmuls,
  convolutions, attention, forward and backward), divided by the batch.
- MFU: GFLOP/train img x train img/s, as a share of this machine's fp32 matmul rate measured in the same run
  (the best of repeated 2048 x 2048 products). oneDNN's Winograd convolutions multiply less than the count says, so
  a convolutional net can pass 100 %: judge those by the reference ratio below, the transformer by its MFU.

Reference: every pixel-diffusion preset's step (`ddpm-cifar10` is the one that matters) is timed side by side with
diffusers' `examples/unconditional_image_generation/train_unconditional.py` step (with `--use_ema`), written out on a
UNet2DModel of the same config, batch, noise schedule and precision; the two alternate round by round (in
alternating order) and the ratio is the median over rounds of hfgen / diffusers images/s.

Loader: a 64x64 RGB PNG folder through hfgen's image dataset, transform and the Trainer's `train_loader`, alone, for
each of `--loader_workers`; its images/s against the fastest 64-px preset's training images/s.

    python scripts/bench_presets.py --output bench-presets.json                  # every preset, this CPU
    python scripts/bench_presets.py --device cuda --output bench-presets-cuda.json
    python scripts/bench_presets.py --quick --presets gan-small diffusion-small  # a smoke run: seconds
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import gc
import json
import math
import platform
import random
import re
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import datasets
import diffusers
import numpy as np
import torch
import transformers
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import patch_environment
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.training_utils import EMAModel
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode
from transformers import get_scheduler

from hfgen.arguments import TrainingArguments
from hfgen.data import image_transform, load_image_dataset
from hfgen.families import families, get_family
from hfgen.families.vae import VAEConfig, VAEModel
from hfgen.families import Preset
from hfgen.training.launch import parse_run
from hfgen.training.trainer import Trainer, train_loader

MATMUL_SIDE = 2048
LOADER_SIDE = 64
TRAIN_IMAGES = 64
"""Images in each preset's synthetic folder: enough for any batch the benchmark uses; steps reuse one batch."""
CORPUS_WORDS = 400_000
"""Seeded random words (3.4 MB): enough distinct pairs for the BPE to reach GPT-2's 50,257 tokens, which the
python-stdlib corpus (38,329) does not; the tokenizer is trained once (about 20 s) and cached in $HFGEN_CACHE."""
REFERENCE_FAMILY = "diffusion"
QUICK = {
    "steps": 1, "rounds": 1, "round_seconds": 0.0, "matmul_repeats": 2, "sample_batch_size": 2, "sample_steps": 2,
    "loader_images": 32, "loader_batches": 4,
}
"""--quick: a smoke run in seconds for the small presets (tests/test_bench_presets.py)."""


# -- the machine ----------------------------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops_per_second(device: torch.device, repeats: int) -> float:
    """The fp32 matmul rate this device reaches: the best of `repeats` timed 2048 x 2048 products."""
    a, b = (torch.randn(MATMUL_SIDE, MATMUL_SIDE, device=device) for _ in range(2))
    inner = 20 if device.type == "cuda" else 1  # one product is too short to time on a GPU
    a @ b  # warm-up: thread pools, kernels
    best = math.inf
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(inner):
            a @ b
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / inner)
    return 2 * MATMUL_SIDE**3 / best


class PeakMemory:
    """Bytes a block of work adds at its peak: the RSS high-water mark on CPU (Linux, glibc), the caching allocator's
    on CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.before = torch.cuda.memory_allocated(self.device)
        else:
            # Hand freed heap pages back first (glibc keeps them, and a later preset would grow into them unseen).
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM := VmRSS
            self.before = _status_bytes("VmRSS")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device) - self.before
        else:
            self.peak = _status_bytes("VmHWM") - self.before


def _status_bytes(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M).group(1)) * 1024


# -- seeded synthetic data of a preset's shape ----------------------------------------------------------------------


def write_png_folder(folder: Path, count: int, side: int, channels: int) -> Path:
    """`count` seeded uniform-noise PNGs in two class sub-folders. Noise does not compress: the worst case to decode."""
    rng = np.random.default_rng(0)
    shape = (side, side, 3) if channels == 3 else (side, side)
    for i in range(count):
        (folder / f"class_{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"class_{i % 2}" / f"{i:05d}.png")
    return folder


def write_text_corpus(folder: Path) -> Path:
    """A folder holding one text file (`--dataset` takes a folder of text files; it refuses a single file)."""
    rng = random.Random(0)
    folder.mkdir()
    words = ("".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(CORPUS_WORDS))
    (folder / "corpus.txt").write_text(" ".join(words))
    return folder


def write_latent_vae(folder: Path, side: int, channels: int, latent_channels: int) -> Path:
    """A one-level spatial VAE on `side`-px images, so its latent is latent_channels x side/2 x side/2. It stands in for
    the published autoencoder (LDM-4's VQ-f4 on 256 px): latents are encoded once before training (cache_latents), so
    the step timed is the UNet's either way; sampling decodes with this small VAE."""
    torch.manual_seed(0)
    config = VAEConfig(
        image_size=side, num_channels=channels, block_out_channels=(8,), spatial_latent=True, latent_channels=latent_channels,
        likelihood="gaussian",
    )
    VAEModel(config).save_pretrained(folder)
    return folder


def model_options(preset: Preset) -> set[str]:
    """The options of the preset's family (`--vae`: it denoises a latent; `--grid_inference_steps`: a sampler)."""
    return {field.name for field in dataclasses.fields(get_family(preset.family).arguments)}


def preset_argv(preset: Preset, workdir: Path, options: argparse.Namespace) -> list[str]:
    """`hfgen train` options that train `preset` on seeded synthetic data of its shape, written under `workdir`."""
    argv = [
        "--preset", preset.name, "--output_dir", str(workdir / "run"), "--train_batch_size", str(options.batch_size),
        "--max_steps", "1000", "--seed", "0",
    ]
    if options.mixed_precision:
        argv += ["--mixed_precision", options.mixed_precision]
    if "grid_inference_steps" in model_options(preset):
        argv += ["--grid_inference_steps", str(options.sample_steps)]
    if preset.resolution is None:  # text
        return argv + ["--dataset", str(write_text_corpus(workdir / "corpus")), "--block_size", str(options.text_block_size)]
    side, channels = preset.resolution, preset.channels
    if "vae" in model_options(preset):  # latent diffusion: the preset's shape is the latent's; images are twice its side
        side = 2 * preset.resolution
        channels = 1 if side == 8 else 3  # the CPU-sized default's 8x8 digits; RGB otherwise
        argv += ["--vae", str(write_latent_vae(workdir / "vae", side, channels, preset.channels))]
    # The CPU-sized defaults (8x8 grey) train on digits, the data they were sized for; the rest on a PNG folder.
    dataset = "digits" if (side, channels) == (8, 1) else str(write_png_folder(workdir / "images", TRAIN_IMAGES, side, channels))
    return argv + ["--dataset", dataset, "--resolution", str(side), "--channels", str(channels)]


def shape_label(preset: Preset, options: argparse.Namespace) -> str:
    if preset.resolution is None:
        return f"T={options.text_block_size}"
    latent = " latent" if "vae" in model_options(preset) else ""
    return f"{preset.resolution}²×{preset.channels}{latent}"


# -- the reference loop -----------------------------------------------------------------------------------------------


def diffusers_reference_step(objective: Any, training: TrainingArguments, batch: dict[str, torch.Tensor]) -> Callable[[], None]:
    """diffusers' train_unconditional.py step (--use_ema), written out as that script has it: the same UNet config,
    noise schedule, batch, optimizer settings and precision as hfgen's run, on a model of its own."""
    accelerator = Accelerator(mixed_precision=training.mixed_precision)
    torch.manual_seed(training.seed)
    model = UNet2DModel.from_config(objective.unet_config())
    noise_scheduler = DDPMScheduler.from_config(objective.scheduler.config)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=training.learning_rate, betas=(training.adam_beta1, training.adam_beta2),
        weight_decay=training.weight_decay,
    )
    lr_scheduler = get_scheduler(
        training.lr_scheduler_type, optimizer, num_warmup_steps=training.lr_warmup_steps, num_training_steps=training.max_steps
    )
    model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)
    ema_model = EMAModel(model.parameters(), decay=training.ema_decay, use_ema_warmup=True, inv_gamma=1.0, power=3 / 4)
    clean_images = batch["pixel_values"].to(accelerator.device)  # (B, C, H, W) in [-1, 1]

    def step() -> None:
        noise = torch.randn(clean_images.shape, device=clean_images.device)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (clean_images.shape[0],), device=clean_images.device)
        noisy_images = noise_scheduler.add_noise(clean_images, noise, timesteps)
        with accelerator.accumulate(model):
            model_output = model(noisy_images, timesteps).sample
            loss = F.mse_loss(model_output.float(), noise.float())
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), training.max_grad_norm)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()
        if accelerator.sync_gradients:
            ema_model.step(model.parameters())

    return step


# -- one preset -------------------------------------------------------------------------------------------------------


def seconds_per_step(step: Callable[[], object], steps: int, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / steps


def sampling(
    objective: Any, modules: dict[str, torch.nn.Module], options: argparse.Namespace, device: torch.device
) -> tuple[int, float]:
    """(samples, seconds): calls of `sample_batch_size` after a one-sample warm-up, repeated for `round_seconds`."""
    generator = torch.Generator(device).manual_seed(0)
    with torch.no_grad():
        objective.samples(modules, 1, generator)
        synchronize(device)
        count, start = 0, time.perf_counter()
        while not count or time.perf_counter() - start < options.round_seconds:
            count += len(objective.samples(modules, options.sample_batch_size, generator))
            synchronize(device)
    return count, time.perf_counter() - start


def measure_preset(preset: Preset, options: argparse.Namespace, device: torch.device, matmul_rate: float) -> dict[str, Any]:
    """One row of the table (with the reference ratio for pixel diffusion)."""
    with tempfile.TemporaryDirectory() as folder:
        training, data, model = parse_run(preset.family, preset_argv(preset, Path(folder), options))
        objective = get_family(preset.family).objective(model, data)
        micro_batch = next(iter(train_loader(objective.train_dataset(), training)))  # the Trainer's first
        batch = micro_batch.batch
        contenders: dict[str, Callable[[], object]] = {}
        if preset.family == REFERENCE_FAMILY:  # built first, so the peak below is hfgen's own
            contenders["diffusers"] = diffusers_reference_step(objective, training, batch)
        with PeakMemory(device) as memory:
            trainer = Trainer(objective, training)
            if trainer.accelerator.device.type != device.type:
                raise ValueError(f"The Trainer runs on {trainer.accelerator.device}, not {device}: check accelerate's config.")
            contenders = {"hfgen": lambda: trainer.training_step([micro_batch], 0), **contenders}
            with FlopCounterMode(display=False) as counter:  # the first step: a warm-up, counted
                trainer.training_step([micro_batch], 0)
            # one more warm-up step each (the reference's first); hfgen's sets how many steps fill a round
            warm = {name: seconds_per_step(step, 1, device) for name, step in contenders.items()}
            steps = options.steps or max(1, round(options.round_seconds / warm["hfgen"]))
            rounds: dict[str, list[float]] = {name: [] for name in contenders}
            for index in range(options.rounds):  # interleaved, order alternating: a load change hits both alike
                for name, step in list(contenders.items())[:: 1 if index % 2 == 0 else -1]:
                    rounds[name].append(seconds_per_step(step, steps, device))
        modules = {name: trainer.modules.unwrapped(name).eval() for name in trainer.modules}
        samples, sample_seconds = sampling(objective, modules, options, device)

    step_seconds = {name: statistics.median(values) for name, values in rounds.items()}
    train_rate = options.batch_size / step_seconds["hfgen"]
    flops_per_image = counter.get_total_flops() / options.batch_size
    row = {
        "preset": preset.name,
        "family": preset.family,
        "shape": shape_label(preset, options),
        # the side of the images each training step reads: none for text, nor for latent diffusion's cached latents
        "image_side": None if "vae" in model_options(preset) else preset.resolution,
        "parameters": sum(p.numel() for module in modules.values() for p in module.parameters()),
        "train_images_per_s": train_rate,
        "sample_images_per_s": samples / sample_seconds,
        "peak_mib": memory.peak / 2**20,
        "gflop_per_train_image": flops_per_image / 1e9,
        "mfu": flops_per_image * train_rate / matmul_rate,
        "step_seconds": step_seconds["hfgen"],
        "steps_per_round": steps,
        "samples": samples,
        "sample_seconds": sample_seconds,
    }
    if "diffusers" in step_seconds:
        row["reference"] = {
            "diffusers_train_images_per_s": options.batch_size / step_seconds["diffusers"],
            "ratio": statistics.median(theirs / ours for ours, theirs in zip(rounds["hfgen"], rounds["diffusers"])),
            "hfgen_round_seconds": rounds["hfgen"],
            "diffusers_round_seconds": rounds["diffusers"],
        }
    return row


# -- the input pipeline -----------------------------------------------------------------------------------------------


def loader_images_per_second(dataset, workers: int, batch_size: int, batches: int, scratch: Path) -> float:
    """Images/s of the Trainer's loader alone over `dataset` (its transform applied: decoding and hfgen's transform
    to tensors in [-1, 1]), in `workers` worker processes; batches after each worker's first are timed (start-up
    excluded). Also scripts/bench_streaming.py's measure."""
    training = TrainingArguments(output_dir=str(scratch / "loader-run"), train_batch_size=batch_size, dataloader_num_workers=workers)
    loader = iter(train_loader(dataset, training))
    for _ in range(workers + 1):
        next(loader)
    start = time.perf_counter()
    for _ in range(batches):
        next(loader)
    return batches * batch_size / (time.perf_counter() - start)


def measure_loader(options: argparse.Namespace, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Loader images/s per worker count; against the fastest preset that reads 64-px images, the ratio and the fewest
    workers that deliver twice what it consumes."""
    with tempfile.TemporaryDirectory() as folder:
        images = write_png_folder(Path(folder) / "images", options.loader_images, LOADER_SIDE, 3)
        dataset = load_image_dataset(str(images), "train").with_transform(image_transform(LOADER_SIDE, 3))
        rates = {
            workers: loader_images_per_second(dataset, workers, options.batch_size, options.loader_batches, Path(folder))
            for workers in options.loader_workers
        }
    result: dict[str, Any] = {"images_per_s": {str(w): r for w, r in rates.items()}}
    consumers = [row for row in rows if row["image_side"] == LOADER_SIDE]
    if consumers:
        fastest = max(consumers, key=lambda row: row["train_images_per_s"])
        ratios = {workers: rate / fastest["train_images_per_s"] for workers, rate in rates.items()}
        keeping_up = [workers for workers, ratio in ratios.items() if ratio >= 2]
        result |= {
            "fastest_consumer": fastest["preset"],
            "fastest_consumer_train_images_per_s": fastest["train_images_per_s"],
            "ratio": {str(w): r for w, r in ratios.items()},
            "recommended_workers": min(keeping_up) if keeping_up else None,
        }
    return result


# -- the report -------------------------------------------------------------------------------------------------------


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| preset | family | res | params | train img/s | sample img/s | peak MiB | GFLOP/train img | MFU |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['preset']} | {row['family']} | {row['shape']} | {row['parameters']:,} | {row['train_images_per_s']:.3g} | "
            f"{row['sample_images_per_s']:.3g} | {row['peak_mib']:,.0f} | {row['gflop_per_train_image']:.3g} | {row['mfu']:.1%} |"
        )
    return "\n".join(lines)


def report_lines(results: dict[str, Any], options: argparse.Namespace) -> list[str]:
    lines = []
    for row in results["rows"]:
        if "reference" in row:
            reference = row["reference"]
            lines.append(
                f"{row['preset']}: hfgen {row['train_images_per_s']:.3g} img/s vs diffusers train_unconditional.py "
                f"{reference['diffusers_train_images_per_s']:.3g} img/s, ratio {reference['ratio']:.3f} (same UNet config, "
                f"batch {options.batch_size}, precision {options.mixed_precision}; median of the ratios of {options.rounds} "
                f"interleaved rounds of {row['steps_per_round']} steps)"
            )
    loader = results.get("loader")
    if loader:
        for workers, rate in loader["images_per_s"].items():
            versus = f", {loader['ratio'][workers]:.2f}x {loader['fastest_consumer']}'s training" if "ratio" in loader else ""
            lines.append(f"loader, {LOADER_SIDE}x{LOADER_SIDE} RGB PNG, --dataloader_num_workers {workers}: {rate:.0f} img/s{versus}")
            if workers == "0" and "ratio" in loader:  # no workers: loading runs in the training process, between steps
                share = 1 / loader["ratio"][workers]
                lines.append(f"  (with 0 workers, loading adds {share:.1%} to {loader['fastest_consumer']}'s step time)")
        if "ratio" in loader:
            recommended = loader["recommended_workers"]
            lines.append(
                f"recommended --dataloader_num_workers: {recommended} (fewest workers delivering >= 2x "
                f"{loader['fastest_consumer_train_images_per_s']:.3g} img/s)" if recommended is not None
                else "no measured --dataloader_num_workers delivers 2x the fastest 64-px training rate"
            )
    return lines


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    names = [preset.name for family in families() for preset in family.presets]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--presets", nargs="+", choices=names, default=names, metavar="NAME", help="Default: every preset.")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="Timed rounds per preset; the median is reported.")
    parser.add_argument("--round_seconds", type=float, default=3.0, help="Length a round aims at (and sampling at least lasts).")
    parser.add_argument("--steps", type=int, default=None, help="Training steps per round (default: enough for --round_seconds).")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's).")
    parser.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default="no")
    parser.add_argument("--sample_batch_size", type=int, default=8)
    parser.add_argument("--sample_steps", type=int, default=20, help="DPM-Solver++ steps of (latent) diffusion sampling.")
    parser.add_argument(
        "--text_block_size", type=int, default=None, help="Tokens per text block (default: 256 on CPU, gpt2's 1024 on CUDA)."
    )
    parser.add_argument("--matmul_repeats", type=int, default=10)
    parser.add_argument("--loader_workers", type=int, nargs="*", default=[0, 1, 2], help="Worker counts to time; none: skip.")
    parser.add_argument("--loader_images", type=int, default=512)
    parser.add_argument("--loader_batches", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="A smoke run: one step, one round, tiny sampling and loader.")
    parser.add_argument("--output", type=Path, default=None, help="Write the results as JSON here.")
    if "--quick" in (sys.argv[1:] if argv is None else argv):  # its settings are defaults: explicit flags still win
        parser.set_defaults(**QUICK)
    options = parser.parse_args(argv)
    if options.text_block_size is None:
        options.text_block_size = 1024 if options.device == "cuda" else 256
    return options


def main(argv: list[str] | None = None) -> dict[str, Any]:
    options = parse_options(argv)
    if options.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here.")
    if options.threads:
        torch.set_num_threads(options.threads)
    device = torch.device(options.device)
    matmul_rate = matmul_flops_per_second(device, options.matmul_repeats)
    results: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.machine()})",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": options.batch_size,
        "mixed_precision": options.mixed_precision,
        "text_block_size": options.text_block_size,
        "sample_steps": options.sample_steps,
        "matmul_gflop_per_s": matmul_rate / 1e9,
        "rows": [],
    }
    print(f"{results['device']}, torch {results['torch']}, {results['threads']} threads: fp32 {MATMUL_SIDE}² matmul "
          f"{matmul_rate / 1e9:.0f} GFLOP/s", flush=True)
    presets = {preset.name: preset for family in families() for preset in family.presets}
    # Accelerate picks a GPU when it sees one; --device cpu keeps every Trainer and the reference on the CPU.
    on_device = patch_environment(ACCELERATE_USE_CPU="1") if device.type == "cpu" else nullcontext()
    with on_device:
        for name in options.presets:
            row = measure_preset(presets[name], options, device, matmul_rate)
            results["rows"].append(row)
            print(f"{name}: {row['step_seconds']:.3f} s/step x {row['steps_per_round']} x {options.rounds} rounds, "
                  f"{row['sample_seconds']:.2f} s to sample {row['samples']}", flush=True)
    if options.loader_workers:
        results["loader"] = measure_loader(options, results["rows"])
    print(markdown_table(results["rows"]))
    print("\n".join(report_lines(results, options)), flush=True)
    if options.output:
        options.output.write_text(json.dumps(results, indent=2))
    return results


def quiet_progress_bars() -> None:
    """A benchmark's table and its lines are its output; progress bars of dataset building, saving and loading are noise."""
    datasets.disable_progress_bars()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


if __name__ == "__main__":
    quiet_progress_bars()
    main()
