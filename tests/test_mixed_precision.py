"""`--mixed_precision bf16` trains every family on CPU close to float32; `fp16` on CPU is refused in one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from helpers import safetensors_weights

from hfgen.cli import main
from hfgen.families import families
from hfgen.training.launch import train
from hfgen.zoo.run import ZooArguments, training_runs

STEPS = 5
# Per-step losses of a bf16 run against the same seed's float32 run: |bf16 - fp32| <= RTOL |fp32| + ATOL.
# Measured over seeds 0-2 of every family's tiny plan: at most 1.3e-3 relative (diffusion), and 3e-4 absolute for
# the GAN's hinge generator loss, which starts near 0.
RTOL, ATOL = 1e-2, 1e-3
# Gradient penalties differentiate through the discriminator's bf16 backward, at the bf16 generator's fakes:
# measured (seeds 0-2) up to 6.8% relative on the discriminator loss, 1e-3 absolute on the generator's loss near 0.
PENALISED_GAN = ("--loss", "wgan_gp", "--r1_gamma", "1", "--discriminator_norm", "layer")
PENALISED_RTOL, PENALISED_ATOL = 0.15, 1e-2


def train_both(family: str, folder: Path, *flags: str) -> tuple[list[dict], list[dict], Path]:
    """The family's tiny zoo plan for STEPS steps in float32 and in bf16, same seed: (fp32 log, bf16 log, bf16 folder)."""
    *first, (name, argv) = training_runs(ZooArguments(budget="tiny", max_steps=STEPS), family, folder / "model")
    for prerequisite, prerequisite_argv in first:  # latent diffusion's VAE, trained once in float32
        train(prerequisite, prerequisite_argv)
    logs = []
    for precision in ("no", "bf16"):
        out = folder / precision
        train(name, [*argv, *flags, "--output_dir", str(out), "--mixed_precision", precision])  # logs every step
        logs.append([json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()])
    return *logs, folder / "bf16"


def assert_close(fp32: list[dict], bf16: list[dict], rtol: float, atol: float) -> None:
    steps = [row["step"] for row in fp32]  # every step, then a row of validation metrics for some families
    assert [row["step"] for row in bf16] == steps and set(steps) == set(range(1, STEPS + 1))
    for full, mixed in zip(fp32, bf16):
        assert all(math.isfinite(value) for value in mixed.values()), mixed
        for key in (k for k in full if k.endswith("loss")):  # each optimizer's loss (the GAN: both)
            assert abs(mixed[key] - full[key]) <= rtol * abs(full[key]) + atol, (full["step"], key, full[key], mixed[key])


@pytest.mark.parametrize("family", [family.name for family in families()])
def test_bf16_trains_every_family_close_to_float32(family, tmp_path):
    fp32, bf16, folder = train_both(family, tmp_path)
    assert_close(fp32, bf16, RTOL, ATOL)
    assert json.loads((folder / "run_info.json").read_text())["mixed_precision"] == "bf16"
    weights = safetensors_weights(folder)  # autocast leaves the parameters (and the EMA) in float32
    assert weights and {w.dtype for w in weights.values() if w.is_floating_point()} == {torch.float32}


def test_bf16_trains_a_gan_with_gradient_penalties(tmp_path):
    fp32, bf16, _ = train_both("gan", tmp_path, *PENALISED_GAN)
    assert {"r1_penalty", "gradient_penalty"} <= set(bf16[0])
    assert_close(fp32, bf16, PENALISED_RTOL, PENALISED_ATOL)


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is refused only where accelerate cannot autocast it")
def test_fp16_on_cpu_is_one_clear_line(tmp_path, capsys):
    out = tmp_path / "fp16"
    assert main(["train", "vae", "--output_dir", str(out), "--max_steps", "1", "--mixed_precision", "fp16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hfgen: error: --mixed_precision fp16 needs a GPU") and err.count("\n") == 1, err
    assert "bf16" in err and not out.exists()
