"""Shared test utilities: run the real CLI in a subprocess, under a real 2-process `accelerate launch`; seeded samples
of a local folder and of a Hub repo, to compare."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file

from hfgen.families import get_family

if TYPE_CHECKING:
    from hub_server import HubClient

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """`scripts/<name>.py` as a module, importable as when it runs as a script (it may import its neighbours)."""
    folder = str(REPO_ROOT / "scripts")
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
        script = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(script)
    finally:
        sys.path.remove(folder)
    return script


def subprocess_env(**extra: str) -> dict[str, str]:
    """Small thread counts keep 2-process runs from oversubscribing CI's 2 cores; no Hub traffic."""
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def run_hfgen(*args: str, check: bool = True, timeout: int = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m hfgen ARGS` (the same entry point as the `hfgen` console script)."""
    result = subprocess.run(
        [sys.executable, "-m", "hfgen", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=subprocess_env(), cwd=cwd,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"hfgen {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


def accelerate_command(
    *args: str, num_processes: int = 2, num_machines: int = 1, machine_rank: int = 0, port: int = 0
) -> list[str]:
    """`accelerate launch` of `python -m hfgen ARGS` over gloo on this host: `num_processes` in all, split evenly over
    `num_machines` (each machine one such command, `machine_rank` its index; a multi-machine run needs a real `port`).
    accelerate's `--cpu --num_processes 2` silently runs one, so this uses --multi_gpu with ACCELERATE_USE_CPU=1."""
    machines = ["--machine_rank", str(machine_rank), "--main_process_ip", "127.0.0.1"] if num_machines > 1 else []
    return [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(num_processes),
        "--num_machines", str(num_machines), *machines, "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(port), "-m", "hfgen", *map(str, args),
    ]


def launch_two_processes(*args: str, timeout: int = 420) -> subprocess.CompletedProcess:
    """A real 2-process CPU run (DDP over gloo) on one machine."""
    result = subprocess.run(accelerate_command(*args), capture_output=True, text=True, timeout=timeout, env=subprocess_env(ACCELERATE_USE_CPU="1"))
    if result.returncode != 0:
        raise AssertionError(f"accelerate launch failed ({result.returncode}):\n{result.stderr[-6000:]}")
    return result


LOSS_RTOL = 1e-5
"""Two runs of the same samples and noise, split differently (processes, accumulation, a resume between): every logged
loss, step by step, within this relative difference. Measured on every family's tiny plan: 2e-7 at most; another
noise for the same samples differs by percents."""
WEIGHT_ATOL, SHARE_ATOL, WEIGHT_MAX = 1e-6, 2e-3, 1e-4
"""...and the final weights: all but a SHARE_ATOL share within WEIGHT_ATOL, none beyond WEIGHT_MAX. Measured: VAE, GAN
(layer norm) and autoregressive within 2e-7 everywhere; (latent) diffusion within 1e-6 but for 0.07 % of the weights,
up to 5e-5 off - Adam divides by a gradient's size, so where a gradient is ~0 a rounding difference in it moves the
weight by up to a learning rate."""


def logged_losses(folder: Path) -> dict[tuple[int, str], float]:
    """(step, name) -> value of every loss in a run's train_log.jsonl."""
    rows = [json.loads(line) for line in (Path(folder) / "train_log.jsonl").read_text().splitlines()]
    return {(row["step"], key): value for row in rows for key, value in row.items() if key.endswith("loss")}


def logged_sample_ids(folder: Path) -> dict[int, list[int]]:
    """Step -> the dataset indices it trained on (`--log_sample_ids`; a step logged twice, by a resumed run: the last)."""
    rows = [json.loads(line) for line in (Path(folder) / "sample_ids.jsonl").read_text().splitlines()]
    return {row["step"]: row["sample_ids"] for row in rows}


def assert_same_training(folder: Path, reference: Path) -> None:
    """`folder` trained as `reference` did, up to the order of sums (see LOSS_RTOL, WEIGHT_ATOL): the same samples at
    every step both logged (when run with --log_sample_ids), the losses of those steps, and the final weights."""
    if (Path(folder) / "sample_ids.jsonl").is_file():
        ids, expected_ids = logged_sample_ids(folder), logged_sample_ids(reference)
        assert ids and all(ids[step] == expected_ids[step] for step in ids), "another data order"
    losses, expected = logged_losses(folder), logged_losses(reference)
    shared = sorted(losses.keys() & expected.keys())
    assert shared and {step for step, _ in losses} <= {step for step, _ in expected}, (sorted(losses), sorted(expected))
    for key in shared:
        assert abs(losses[key] - expected[key]) <= LOSS_RTOL * abs(expected[key]), (key, losses[key], expected[key])
    weights, reference_weights = safetensors_weights(folder), safetensors_weights(reference)
    assert weights.keys() == reference_weights.keys() and weights
    errors = torch.cat([(weights[k].double() - w.double()).abs().flatten() for k, w in reference_weights.items()])
    assert (errors > WEIGHT_ATOL).double().mean() <= SHARE_ATOL and errors.max() <= WEIGHT_MAX, errors.max().item()


def safetensors_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of every safetensors file under `folder` (keys prefixed by the file's relative path)."""
    weights = {}
    for file in sorted(Path(folder).rglob("*.safetensors")):
        if "checkpoints" in file.parts:
            continue
        for key, value in load_file(file).items():
            weights[f"{file.relative_to(folder)}:{key}"] = value
    return weights


def kill_mid_run_and_resume(train_command: Callable[..., list[str]], root: Path) -> tuple[Path, Path]:
    """Run `train_command(out)` to the end in `root/reference`; run it again in `root/interrupted`, SIGKILL it
    (a real kill) as soon as its first checkpoint exists, then resume with `--resume_from_checkpoint latest`.
    Returns (reference, interrupted) output folders for the caller to compare."""
    reference, interrupted = root / "reference", root / "interrupted"
    subprocess.run(train_command(reference), check=True, capture_output=True, env=subprocess_env(), timeout=300)
    process = subprocess.Popen(train_command(interrupted), env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not list((interrupted / "checkpoints").glob("checkpoint-*")) and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (interrupted / "model_index.json").exists(), "the run finished before it could be killed"
    subprocess.run(train_command(interrupted, "--resume_from_checkpoint", "latest"), check=True,
                   capture_output=True, env=subprocess_env(), timeout=300)
    return reference, interrupted


class Unpickled:
    """A pickle that leaves a marker file if anything ever unpickles it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def free_port() -> int:
    """A port nothing listens on now, for a server about to start."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sample_tensors(pipe, name: str) -> torch.Tensor:
    """Two seeded samples, (2, C, H, W) in [0, 1] (diffusion with 2 DDIM steps)."""
    options = get_family(name).sampling_options(pipe, "ddim", 2)
    return pipe(batch_size=2, generator=torch.Generator().manual_seed(0), output_type="pt", **options).images


def sample_from_hub(client: HubClient, name: str, repo: str, out: Path, revision: str | None = None) -> str:
    """Load `repo` in the client, save its two seeded samples to `out`; returns the pipeline class name."""
    code, stdout, stderr = client.run(f"""
import torch
from safetensors.torch import save_file
from hfgen.families import get_family
from hfgen.loading import load_pipeline
pipe = load_pipeline({repo!r}, revision={revision!r})
options = get_family({name!r}).sampling_options(pipe, "ddim", 2)
images = pipe(batch_size=2, generator=torch.Generator().manual_seed(0), output_type="pt", **options).images
save_file({{"images": images.contiguous()}}, {str(out)!r})
print(type(pipe).__name__)
""")
    assert code == 0, stderr[-3000:]
    return stdout.strip()
