"""GAN speed, measured against a plain PyTorch loop in the same run, on the same machine.

1. The Trainer trains the default model on digits (`--train_steps`) and leaves its folder and grids.
2. Training iterations/s (one D step + one G step each): hfgen's Trainer + GANObjective vs the same networks in
   a plain two-optimizer loop (same data path, hinge loss, concatenated real+fake D pass, AdamW, clipping, EMA
   of G). Runs alternate (Trainer, plain, Trainer, plain, ...) and the best of each is kept, so a busy machine
   penalises both alike.
3. Sampling images/s of `GANPipeline` (one generator pass per batch), a truncated grid and a latent walk.

    python scripts/bench_gan.py --output_dir out/bench-gan
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from hfgen import GANDiscriminator, GANGenerator, GANPipeline
from hfgen.images import image_grid
from hfgen.arguments import DataArguments, TrainingArguments
from hfgen.families.gan.objective import GANArguments, GANObjective
from hfgen.training.trainer import Trainer


def training_arguments(output_dir: Path, steps: int, batch_size: int) -> TrainingArguments:
    # No checkpoint or grid inside the timed loop; the final grid is written after the clock stops.
    return TrainingArguments(
        output_dir=str(output_dir), max_steps=steps, train_batch_size=batch_size, logging_steps=max(steps // 10, 1),
        checkpointing_steps=steps + 1, sample_steps=steps + 1,
    )


def hfgen_iterations_per_second(output_dir: Path, steps: int, batch_size: int) -> float:
    """The real Trainer, timed over its whole loop (data loading and logging included)."""
    output = Trainer(GANObjective(GANArguments(), DataArguments()), training_arguments(output_dir, steps, batch_size)).train()
    return output.global_step / output.train_seconds


def plain_iterations_per_second(steps: int, batch_size: int, seed: int = 0) -> float:
    """What one would write by hand with the same networks, loss and optimizers - no Accelerate, no Trainer."""
    arguments, training = GANArguments(), TrainingArguments(output_dir="unused")
    objective = GANObjective(arguments, DataArguments())
    torch.manual_seed(seed)
    generator, discriminator = GANGenerator(objective.config), GANDiscriminator(objective.config)
    betas = tuple(arguments.adam_betas)
    optimizer_d = torch.optim.AdamW(
        discriminator.parameters(), lr=arguments.discriminator_learning_rate, betas=betas, weight_decay=0.0
    )
    optimizer_g = torch.optim.AdamW(generator.parameters(), lr=arguments.generator_learning_rate, betas=betas, weight_decay=0.0)
    ema = [p.detach().clone() for p in generator.parameters()]
    dataset = objective.train_dataset()
    sampler = BatchSampler(RandomSampler(dataset, replacement=True, num_samples=steps * batch_size), batch_size, drop_last=True)
    loader = DataLoader(dataset, sampler=sampler, batch_size=None)
    started = time.perf_counter()
    for batch in loader:
        real = batch["pixel_values"]  # (B, C, H, W)
        # discriminator step: real and fake in one pass
        with torch.no_grad():
            fake = generator(torch.randn(batch_size, objective.config.latent_dim)).sample
        real_logits, fake_logits = discriminator(torch.cat([real, fake])).logits.split(batch_size)
        loss_d = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        loss_d.backward()
        torch.nn.utils.clip_grad_norm_(discriminator.parameters(), training.max_grad_norm)
        optimizer_d.step()
        optimizer_d.zero_grad(set_to_none=True)
        # generator step through the frozen discriminator
        discriminator.requires_grad_(False)
        loss_g = -discriminator(generator(torch.randn(batch_size, objective.config.latent_dim)).sample).logits.mean()
        loss_g.backward()
        discriminator.requires_grad_(True)
        torch.nn.utils.clip_grad_norm_(generator.parameters(), training.max_grad_norm)
        optimizer_g.step()
        optimizer_g.zero_grad(set_to_none=True)
        torch._foreach_lerp_(ema, [p.detach() for p in generator.parameters()], 1 - training.ema_decay)
    return steps / (time.perf_counter() - started)


def sampling_images_per_second(pipe: GANPipeline, batch_size: int, repeats: int = 5) -> float:
    pipe(batch_size=batch_size, generator=torch.manual_seed(0), output_type="pt")  # warm-up
    start = time.perf_counter()
    for i in range(repeats):
        pipe(batch_size=batch_size, generator=torch.manual_seed(i), output_type="pt")
    return batch_size * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default="out/bench-gan")
    parser.add_argument("--train_steps", type=int, default=1500, help="Steps of the first Trainer run (the model kept).")
    parser.add_argument("--timing_steps", type=int, default=300, help="Steps of each timed run.")
    parser.add_argument("--repeats", type=int, default=3, help="Alternating (Trainer, plain) pairs of timed runs.")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--sampling_batch_size", type=int, default=1000)
    args = parser.parse_args()
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, float | int | str] = {"torch_threads": torch.get_num_threads(), "batch_size": args.batch_size}

    # 1. the model kept: the Trainer on the default config, long enough for recognisable digits
    model_dir = output_dir / "gan-digits"
    results["hfgen_model_run_iterations_per_s"] = hfgen_iterations_per_second(model_dir, args.train_steps, args.batch_size)
    print(f"trained model and its grid: {model_dir} ({args.train_steps} steps, "
          f"{results['hfgen_model_run_iterations_per_s']:.2f} it/s)", flush=True)

    # 2. training throughput: pairs of runs alternate so machine load hits both sides alike; best of each
    hfgen_runs, plain_runs = [], []
    for repeat in range(args.repeats):
        hfgen_runs.append(hfgen_iterations_per_second(output_dir / f"timing-{repeat}", args.timing_steps, args.batch_size))
        plain_runs.append(plain_iterations_per_second(args.timing_steps, args.batch_size))
        print(f"pair {repeat}: hfgen {hfgen_runs[-1]:.2f} it/s, plain {plain_runs[-1]:.2f} it/s", flush=True)
    results |= {
        "hfgen_train_iterations_per_s": max(hfgen_runs),
        "plain_train_iterations_per_s": max(plain_runs),
        "hfgen_runs": [round(r, 2) for r in hfgen_runs],
        "plain_runs": [round(r, 2) for r in plain_runs],
    }
    results["train_ratio_hfgen_vs_plain"] = results["hfgen_train_iterations_per_s"] / results["plain_train_iterations_per_s"]
    print(f"training: hfgen {results['hfgen_train_iterations_per_s']:.2f} it/s vs plain loop "
          f"{results['plain_train_iterations_per_s']:.2f} it/s; ratio {results['train_ratio_hfgen_vs_plain']:.3f}", flush=True)

    # 3. sampling throughput of the trained model, plus a truncated grid and a latent walk to look at
    pipe = GANPipeline.from_pretrained(model_dir)
    results["sampling_images_per_s"] = sampling_images_per_second(pipe, args.sampling_batch_size)
    print(f"sampling: {results['sampling_images_per_s']:.0f} images/s (batch {args.sampling_batch_size})", flush=True)
    truncated = pipe(batch_size=64, generator=torch.manual_seed(0), truncation=0.7, output_type="pt").images
    image_grid(truncated * 2 - 1).save(output_dir / "grid-truncation-0.7.png")
    start, end = pipe.prepare_latents(2, torch.manual_seed(1))
    walk = pipe.interpolate(start, end, num_frames=8, output_type="pt").images
    image_grid(walk * 2 - 1).save(output_dir / "walk.png")
    (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
