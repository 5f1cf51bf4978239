"""Benchmarks of the VAE family.

`throughput`: training images/s of `hfgen train vae` (the shared Trainer, data from `datasets`) against the same
network trained in a plain PyTorch loop (same optimizer, clipping and batch size, data pre-loaded as one tensor)
in the same process, interleaved so a busy machine slows both alike, measured per wall second and per CPU
second; then IWAE evaluation images/s at k=1000.

`nll`: test-split NLL of a trained model - the IWAE bound (k importance samples) and the ELBO, in nats per
image and bits/dim.

    python scripts/bench_vae.py throughput --dataset digits
    python scripts/bench_vae.py nll out/vae-digits --dataset digits --k 1000
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time

import torch
from transformers import get_scheduler

from hfgen import VAEModel, VAEPipeline
from hfgen.data import images_to_tensor, load_image_dataset
from hfgen.arguments import DataArguments, TrainingArguments
from hfgen.families.vae.objective import VAEArguments, VAEObjective
from hfgen.training.trainer import Trainer


def run_hfgen(data: DataArguments, steps: int, batch_size: int, use_ema: bool) -> None:
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir=output_dir, max_steps=steps, train_batch_size=batch_size, logging_steps=steps,
            sample_steps=steps + 1, checkpointing_steps=steps + 1, use_ema=use_ema, num_grid_images=4,
        )
        Trainer(VAEObjective(VAEArguments(), data), args).train()


def run_plain(data: DataArguments, steps: int, batch_size: int) -> None:
    """The same VAE, AdamW, grad clipping and cosine schedule in a hand-written loop over an in-memory tensor."""
    objective = VAEObjective(VAEArguments(), data)
    images = objective.images(objective.train_dataset()[:]["pixels"])  # (N, C, H, W) in [-1, 1]
    torch.manual_seed(0)
    model = VAEModel(objective.config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=100, num_training_steps=steps)
    for _ in range(steps):
        batch = images[torch.randint(0, len(images), (batch_size,))]
        loss = model(batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)


def images_per_second(run, steps: int, batch_size: int) -> tuple[float, float]:
    """(per wall second, per CPU second) of `steps` extra steps: a run of 2 * steps minus a run of `steps`,
    so set-up, the one-off data decoding and the final save and sample grid cancel out. CPU seconds
    (`time.process_time`) stay fair when other jobs share the machine."""
    costs = []
    for length in (steps, 2 * steps):
        wall, cpu = time.perf_counter(), time.process_time()
        run(length)
        costs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return steps * batch_size / (costs[1][0] - costs[0][0]), steps * batch_size / (costs[1][1] - costs[0][1])


def iwae_images_per_second(data: DataArguments, k: int, num_images: int) -> float:
    objective = VAEObjective(VAEArguments(), data)
    pipe = VAEPipeline(vae=VAEModel(objective.config).eval())
    images = test_images(data, num_images)
    started = time.perf_counter()
    pipe.log_likelihood(images, k=k, generator=torch.manual_seed(0))
    return num_images / (time.perf_counter() - started)


def test_images(data: DataArguments, limit: int | None = None) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] (what the pipeline takes): the test split, or its first `limit` images."""
    info = VAEObjective(VAEArguments(), data).info
    test = load_image_dataset(data.dataset, "test", data.data_dir)
    return (images_to_tensor(test[: limit or len(test)]["image"], info.resolution, info.channels) + 1) / 2


def throughput(options: argparse.Namespace) -> None:
    data = DataArguments(dataset=options.dataset, data_dir=options.data_dir)
    steps, batch = options.steps, options.batch_size
    runs = {
        "hfgen Trainer, no EMA": lambda n: run_hfgen(data, n, batch, use_ema=False),
        "hfgen Trainer, EMA": lambda n: run_hfgen(data, n, batch, use_ema=True),
        "plain PyTorch loop": lambda n: run_plain(data, n, batch),
    }
    for run in runs.values():  # warm-up: first-call imports and allocations are not throughput
        run(10)
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for repeat in range(options.repeats):  # interleaved, so a busy machine slows every variant alike
        for name, run in runs.items():
            rates[name].append(images_per_second(run, steps, batch))
        print(f"repeat {repeat}: " + ", ".join(f"{name} {r[-1][0]:.0f}/{r[-1][1]:.0f}" for name, r in rates.items()), flush=True)
    print(f"training images/s, median of {options.repeats} (batch {batch}, {torch.get_num_threads()} threads): per wall s / per CPU s")
    medians = {name: [statistics.median(r[i] for r in values) for i in (0, 1)] for name, values in rates.items()}
    for name, (wall, cpu) in medians.items():
        print(f"  {name:22s}: {wall:7.0f} / {cpu:7.0f}")
    plain = medians["plain PyTorch loop"]
    for name in ("hfgen Trainer, no EMA", "hfgen Trainer, EMA"):
        wall, cpu = medians[name]
        print(f"  ratio {name} / plain: {wall / plain[0]:.3f} (wall), {cpu / plain[1]:.3f} (CPU) - goal >= 0.95")
    rate = iwae_images_per_second(data, options.k, options.iwae_images)
    print(f"IWAE evaluation, k={options.k}: {rate:.1f} images/s ({options.iwae_images} test images)")


def nll(options: argparse.Namespace) -> None:
    pipe = VAEPipeline.from_pretrained(options.model, use_safetensors=True)
    data = DataArguments(dataset=options.dataset, data_dir=options.data_dir)
    images = test_images(data, options.limit)
    dims = images[0].numel()
    started = time.perf_counter()
    bound = torch.cat([
        pipe.log_likelihood(chunk, k=options.k, generator=torch.manual_seed(i)) for i, chunk in enumerate(images.split(100))
    ])
    seconds = time.perf_counter() - started
    elbo = torch.cat([pipe.elbo(chunk, generator=torch.manual_seed(i)) for i, chunk in enumerate(images.split(100))])
    to_bits = lambda nats: -nats.double().mean().item() / (dims * math.log(2))  # noqa: E731
    print(f"{options.model} on {options.dataset} test ({len(images)} images, likelihood {pipe.vae.config.likelihood}):")
    print(f"  IWAE k={options.k}: NLL {-bound.double().mean().item():.2f} nats = {to_bits(bound):.4f} bits/dim ({seconds:.0f} s)")
    print(f"  ELBO          : -ELBO {-elbo.double().mean().item():.2f} nats = {to_bits(elbo):.4f} bits/dim")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    speed = commands.add_parser("throughput", help="Trainer vs plain-loop images/s, and IWAE images/s.")
    speed.add_argument("--steps", type=int, default=200)
    speed.add_argument("--batch_size", type=int, default=64)
    speed.add_argument("--repeats", type=int, default=3)
    speed.add_argument("--iwae_images", type=int, default=50)
    likelihood = commands.add_parser("nll", help="Test NLL (IWAE bound and ELBO) of a trained model.")
    likelihood.add_argument("model")
    likelihood.add_argument("--limit", type=int, default=None, help="Score only the first N test images.")
    for command in (speed, likelihood):
        command.add_argument("--dataset", default="digits")
        command.add_argument("--data_dir", default=None)
        command.add_argument("--k", type=int, default=1000)
    options = parser.parse_args()
    {"throughput": throughput, "nll": nll}[options.command](options)


if __name__ == "__main__":
    main()
