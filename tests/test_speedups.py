"""`--channels_last` and `--torch_compile` change how fast a step runs, never what it computes: each family trains
as it does eagerly (up to the order of sums), saves the same keys, and a compiled run's checkpoint resumes eagerly."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch._dynamo.utils import counters

from helpers import assert_same_training, safetensors_weights

from hfgen.arguments import TrainingArguments
from hfgen.families import families
from hfgen.training.launch import train
from hfgen.training.trainer import compile_options_of
from hfgen.zoo.run import ZooArguments, training_runs

STEPS = 4


def tiny_run(family: str, folder: Path) -> tuple[str, list[str]]:
    """The family's tiny zoo plan for STEPS steps (its prerequisite, latent diffusion's VAE, trained once, eagerly)."""
    *first, (name, argv) = training_runs(ZooArguments(budget="tiny", max_steps=STEPS), family, folder / "model")
    for prerequisite, prerequisite_argv in first:
        train(prerequisite, prerequisite_argv)
    return name, [*argv, "--log_sample_ids"]


# Latent diffusion trains the diffusion family's UNet2DModel on cached latents: the same graphs, and 30 s more here.
@pytest.mark.parametrize("family", [family.name for family in families() if family.name != "latent-diffusion"])
def test_channels_last_and_compiled_graphs_train_every_family_as_eager(family, tmp_path):
    name, argv = tiny_run(family, tmp_path)
    train(name, [*argv, "--output_dir", str(tmp_path / "eager")])
    # aot_eager captures the graphs as inductor does (dynamo + AOT autograd) without generating code: fast enough for
    # every family here; the GAN test below runs inductor itself
    fast = ["--channels_last", "--torch_compile", "--torch_compile_backend", "aot_eager"]
    counters.clear()
    train(name, [*argv, *fast, "--output_dir", str(tmp_path / "fast")])
    assert counters["stats"]["unique_graphs"] > 0  # it did compile
    assert_same_training(tmp_path / "fast", tmp_path / "eager")


def test_an_inductor_compiled_checkpoint_resumes_eagerly(tmp_path):
    name, argv = tiny_run("gan", tmp_path)
    argv += ["--checkpointing_steps", "2"]
    train(name, [*argv, "--output_dir", str(tmp_path / "eager")])
    train(name, [*argv, "--torch_compile", "--output_dir", str(tmp_path / "compiled")])
    assert_same_training(tmp_path / "compiled", tmp_path / "eager")
    assert safetensors_weights(tmp_path / "compiled").keys() == safetensors_weights(tmp_path / "eager").keys()
    # steps 3-4 eagerly from the compiled run's step-2 checkpoint: the keys match, the run continues as it would have
    resumed = tmp_path / "resumed"
    checkpoint = tmp_path / "compiled" / "checkpoints" / "checkpoint-2"
    train(name, [*argv, "--output_dir", str(resumed), "--resume_from_checkpoint", str(checkpoint)])
    assert_same_training(resumed, tmp_path / "eager")


def test_compile_options_come_from_the_flag_or_from_accelerate_launch(monkeypatch):
    assert compile_options_of(TrainingArguments()) is None
    # shapes stay static: a second network of one class recompiling with symbolic shapes broke inductor's lowering
    assert compile_options_of(TrainingArguments(torch_compile=True)) == {"dynamic": False, "backend": "inductor"}
    monkeypatch.setenv("ACCELERATE_DYNAMO_BACKEND", "AOT_EAGER")  # what `accelerate launch --dynamo_backend` sets
    monkeypatch.setenv("ACCELERATE_DYNAMO_MODE", "max-autotune")
    assert compile_options_of(TrainingArguments()) == {"dynamic": False, "backend": "aot_eager", "mode": "max-autotune"}
    assert compile_options_of(TrainingArguments(torch_compile=True))["backend"] == "inductor"  # the flag wins
