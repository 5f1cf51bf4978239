"""Cost of the graceful-stop check: one 1-element all-reduce per optimizer step, against the step itself.

Run on 2 CPU processes (DDP over gloo), as CI does:
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 scripts/stop_flag_cost.py
Prints the microseconds per check, per training step of a small VAE, and their ratio.
"""

from __future__ import annotations

import time

import torch
from accelerate import Accelerator

from hfgen.families.vae import VAEConfig, VAEModel
from hfgen.training.signals import GracefulStop

CALLS = 500


def seconds_per_call(function, calls: int = CALLS) -> float:
    function()  # warm-up: first collective sets up the connection
    started = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - started) / calls


def main() -> None:
    accelerator = Accelerator()
    model = VAEModel(VAEConfig(image_size=8, num_channels=1, latent_dim=16))  # the default digits VAE
    optimizer = torch.optim.AdamW(model.parameters())
    model, optimizer = accelerator.prepare(model, optimizer)
    images = torch.rand(64, 1, 8, 8) * 2 - 1

    def train_step() -> None:
        loss = model(images).loss
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()

    with GracefulStop() as stop:
        check = seconds_per_call(lambda: stop.requested(accelerator))
    step = seconds_per_call(train_step, calls=100)
    if accelerator.is_main_process:
        print(f"stop check {check * 1e6:.0f} us, training step {step * 1e6:.0f} us on {accelerator.num_processes} "
              f"processes: the check costs {100 * check / step:.2f}% of a step")


if __name__ == "__main__":
    main()
