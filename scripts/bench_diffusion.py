"""Diffusion speed, measured against diffusers' own code in the same run, on the same machine.

1. Training images/s: hfgen's Trainer + DiffusionObjective vs a plain diffusers-style loop
   (UNet2DModel + DDPMScheduler.add_noise + MSE + AdamW + clipping + EMA, as diffusers' `train_unconditional`
   example does), same UNet, batch and data: the reference reads batches the example's way (`with_transform`
   + DataLoader) and, stricter, from preloaded tensors. Contenders alternate over `--rounds` and the medians
   are compared, so a load change on the machine hits both. The plain loop is also timed with channels_last,
   bf16 autocast, torch.compile and foreach AdamW, to show which of them helps on this machine.
2. Sampling images/s: `DiffusionImagePipeline` vs diffusers' `DDPMPipeline`, same UNet and steps, alternating.
3. DPM-Solver++ at 20 steps vs DDPM at 1000 steps: wall time, and a grid of each (from a trained model).
4. Few-step quality of that trained model: FID∞, KID, precision and recall (± jackknife errors) at DDPM 1,000,
   DDIM 50/250 and DPM-Solver++ 10/20 steps, same samples count and seed, by the zoo's own `Evaluator`
   (the literature's anchor: DPM-Solver at 20 steps is within ~10 % of DDPM 1,000's FID).

    python scripts/bench_diffusion.py --model out/ddpm-digits --output_dir out/bench-diffusion
    python scripts/bench_diffusion.py --model zoo-report/models/diffusion --quality_only --quality_samples 500
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
from diffusers.training_utils import EMAModel
from torch.utils.data import DataLoader
from transformers import get_scheduler

from hfgen import DiffusionImagePipeline
from hfgen.data import describe_images, image_transform, load_image_dataset
from hfgen.evaluation import Evaluator
from hfgen.evaluation.evaluator import markdown_table, trained_dataset
from hfgen.images import image_grid
from hfgen.families.diffusion import default_unet_config
from hfgen.arguments import DataArguments, TrainingArguments
from hfgen.families.diffusion.objective import DiffusionArguments, DiffusionObjective
from hfgen.training.trainer import LOG_FILE, Trainer


def plain_loop_images_per_second(
    batches: Iterator[torch.Tensor], config: dict, steps: int, variant: str
) -> float:
    """The diffusers example's inner loop; `batches` yields (B, C, H, W) images in [-1, 1]."""
    torch.manual_seed(0)
    unet = UNet2DModel(**config)
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-3, foreach=variant == "foreach" or None)
    lr_scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=100, num_training_steps=steps)
    ema = EMAModel(unet.parameters(), decay=0.999, use_ema_warmup=True, power=3 / 4)
    memory_format = torch.channels_last if variant == "channels_last" else torch.contiguous_format
    unet = unet.to(memory_format=memory_format)
    forward = torch.compile(unet) if variant == "compile" else unet
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16")
    timings = []
    for _ in range(steps):
        start = time.perf_counter()
        images = next(batches).contiguous(memory_format=memory_format)
        noise = torch.randn_like(images)
        timesteps = torch.randint(0, 1000, (images.shape[0],))
        noisy = scheduler.add_noise(images, noise, timesteps)
        with autocast:
            prediction = forward(noisy, timesteps).sample
        loss = F.mse_loss(prediction.float(), noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        ema.step(unet.parameters())
        timings.append(time.perf_counter() - start)
    warm = timings[steps // 5 :]  # drop warm-up (and compilation)
    return images.shape[0] * len(warm) / sum(warm)


def preloaded_batches(pixels: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    while True:
        yield pixels[torch.randint(0, len(pixels), (batch_size,), generator=generator)]


def example_style_batches(dataset, batch_size: int) -> Iterator[torch.Tensor]:
    """diffusers' train_unconditional data path: a lazily transformed Dataset behind a shuffling DataLoader."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
    while True:
        for batch in loader:
            yield batch["pixel_values"]


def hfgen_images_per_second(steps: int, batch_size: int, mixed_precision: str) -> float:
    """The real Trainer; its own throughput log, windows after the first (warm-up) one."""
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, max_steps=steps, train_batch_size=batch_size, logging_steps=max(steps // 5, 1),
            checkpointing_steps=steps + 1, sample_steps=steps + 1, num_grid_images=4, lr_warmup_steps=100,
            mixed_precision=mixed_precision,
        )
        Trainer(DiffusionObjective(DiffusionArguments(), DataArguments()), args).train()
        windows = [json.loads(line)["samples_per_second"] for line in (Path(out) / LOG_FILE).read_text().splitlines()]
    return statistics.median(windows[1:])


def sampling_images_per_second(pipe, batch_size: int, steps: int) -> float:
    pipe.set_progress_bar_config(disable=True)
    pipe(batch_size=batch_size, num_inference_steps=2, generator=torch.manual_seed(0))  # warm-up
    start = time.perf_counter()
    pipe(batch_size=batch_size, num_inference_steps=steps, generator=torch.manual_seed(0), output_type="np")
    return batch_size / (time.perf_counter() - start)


FEW_STEP_SAMPLERS = (("ddpm", 1000), ("ddim", 50), ("ddim", 250), ("dpmsolver", 10), ("dpmsolver", 20))
"""(scheduler, steps) of the few-step quality figure."""


def few_step_quality(
    pipe: DiffusionImagePipeline,
    evaluator: Evaluator,
    num_samples: int = 500,
    batch_size: int = 250,
    samplers: tuple[tuple[str, int], ...] = FEW_STEP_SAMPLERS,
) -> dict[str, dict[str, float]]:
    """"<scheduler> <steps>" -> the evaluator's metrics of one checkpoint's samples: same n, seed and noise."""
    rows = {}
    for name, steps in samplers:
        pipe.use_scheduler(name)
        rows[f"{name} {steps}"] = evaluator.evaluate_pipeline(pipe, num_samples, batch_size, {"num_inference_steps": steps}).metrics
        print(f"{name} {steps} steps: FID∞ {rows[f'{name} {steps}']['fid']:.2f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="out/ddpm-digits", help="A trained diffusion folder for the grids.")
    parser.add_argument("--output_dir", default="out/bench-diffusion")
    parser.add_argument("--train_steps", type=int, default=150)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--sampling_steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", nargs="*", default=["fp32", "foreach", "channels_last", "bf16", "compile"])
    parser.add_argument("--quality_samples", type=int, default=500, help="Samples per sampler for the quality figure.")
    parser.add_argument("--quality_only", action="store_true", help="Only the few-step quality figure (4.).")
    args = parser.parse_args()
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, float | str] = {"torch_threads": torch.get_num_threads(), "batch_size": args.batch_size}
    if args.quality_only:
        quality_figure(args.model, args.quality_samples, output_dir)
        return

    dataset = load_image_dataset("digits", "train")
    info = describe_images(dataset, "digits")
    transformed = dataset.with_transform(image_transform(info.resolution, info.channels))
    pixels = transformed[:]["pixel_values"]
    config = default_unet_config(info.resolution, info.channels)

    # 1. training throughput: contenders alternate each round; medians over rounds
    contenders = {
        "hfgen_trainer": lambda: hfgen_images_per_second(args.train_steps, args.batch_size, "no"),
        "plain_example_data": lambda: plain_loop_images_per_second(
            example_style_batches(transformed, args.batch_size), config, args.train_steps, "fp32"),
        **{
            f"plain_preloaded_{variant}": (lambda variant=variant: plain_loop_images_per_second(
                preloaded_batches(pixels, args.batch_size), config, args.train_steps, variant))
            for variant in args.variants
        },
    }
    rounds: dict[str, list[float]] = {name: [] for name in contenders}
    for round_index in range(args.rounds):
        for name, measure in contenders.items():
            if name.endswith("compile") and round_index:  # compiling is slow; one round tells whether it helps
                continue
            rounds[name].append(measure())
            print(f"round {round_index + 1}: {name} {rounds[name][-1]:.1f} images/s", flush=True)
    for name, values in rounds.items():
        results[f"{name}_train_images_per_s"] = statistics.median(values)
    ours = results["hfgen_trainer_train_images_per_s"]
    results["train_ratio_vs_example_data_path"] = ours / results["plain_example_data_train_images_per_s"]
    results["train_ratio_vs_preloaded_fp32"] = ours / results["plain_preloaded_fp32_train_images_per_s"]
    print(f"hfgen Trainer {ours:.1f} images/s: ratio {results['train_ratio_vs_example_data_path']:.3f} vs the "
          f"diffusers-example loop, {results['train_ratio_vs_preloaded_fp32']:.3f} vs preloaded tensors", flush=True)

    # 2. sampling throughput, same UNet and steps, alternating
    torch.manual_seed(0)
    unet = UNet2DModel(**config).eval()
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    pipes = {
        "hfgen": DiffusionImagePipeline(unet=unet, scheduler=scheduler),
        "diffusers_ddpm": DDPMPipeline(unet=copy.deepcopy(unet), scheduler=scheduler),
    }
    speeds: dict[str, list[float]] = {name: [] for name in pipes}
    for _ in range(args.rounds):
        for name, pipe in pipes.items():
            speeds[name].append(sampling_images_per_second(pipe, args.batch_size, args.sampling_steps))
    for name, values in speeds.items():
        results[f"{name}_sampling_images_per_s"] = statistics.median(values)
    results["sampling_ratio_hfgen_vs_diffusers"] = results["hfgen_sampling_images_per_s"] / results["diffusers_ddpm_sampling_images_per_s"]
    print(f"sampling ({args.sampling_steps} DDPM steps, batch {args.batch_size}): ratio "
          f"{results['sampling_ratio_hfgen_vs_diffusers']:.3f} (hfgen / DDPMPipeline)", flush=True)

    # 3. DPM-Solver++ 20 steps vs DDPM 1000 steps on a trained model
    if Path(args.model, "model_index.json").is_file():
        pipe = DiffusionImagePipeline.from_pretrained(args.model)
        pipe.set_progress_bar_config(disable=True)
        for name, steps in (("ddpm", 1000), ("dpmsolver", 20)):
            pipe.use_scheduler(name)
            start = time.perf_counter()
            images = pipe(batch_size=64, num_inference_steps=steps, generator=torch.manual_seed(0), output_type="pt").images
            results[f"{name}_{steps}_steps_seconds_for_64"] = time.perf_counter() - start
            image_grid(images * 2 - 1).save(output_dir / f"grid-{name}-{steps}.png")
            print(f"{name} {steps} steps: {results[f'{name}_{steps}_steps_seconds_for_64']:.2f} s for 64 images", flush=True)
        results["dpmsolver20_speedup_vs_ddpm1000"] = results["ddpm_1000_steps_seconds_for_64"] / results["dpmsolver_20_steps_seconds_for_64"]
        quality_figure(args.model, args.quality_samples, output_dir)
    else:
        results["grids"] = f"skipped: no trained model at {args.model} (run `make demo` first)"
    (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def quality_figure(model: str, num_samples: int, output_dir: Path) -> None:
    """4. The few-step quality table of `model`, printed and saved as few_step_quality.json."""
    pipe = DiffusionImagePipeline.from_pretrained(model)
    rows = few_step_quality(pipe, Evaluator(trained_dataset(model) or "digits"), num_samples)
    (output_dir / "few_step_quality.json").write_text(json.dumps(rows, indent=2))
    print(markdown_table(rows, "sampler"))


if __name__ == "__main__":
    main()
