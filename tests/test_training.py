"""The shared loop end to end through the real CLI: Hub-ready folder, 2 processes, kill-and-resume, bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import kill_mid_run_and_resume, launch_two_processes, run_hfgen, safetensors_weights

from hfgen.cli import main

TINY = ["--block_out_channels", "8", "16", "16", "--train_batch_size", "16", "--num_grid_images", "4", "--num_train_timesteps", "50"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddpm") / "run"
    run_hfgen("train", "diffusion", "--dataset", "digits", "--output_dir", out, "--max_steps", "12",
              "--checkpointing_steps", "5", "--checkpoints_total_limit", "1", "--sample_steps", "6",
              "--logging_steps", "4", "--class_conditional", *TINY)
    return out


def test_training_writes_a_hub_ready_folder(trained):
    for name in ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                 "scheduler/scheduler_config.json", "training_args.json", "samples.png", "run_info.json",
                 "samples/step-000006.png", "train_log.jsonl"]:
        assert (trained / name).is_file(), name
    assert not list(trained.rglob("*.bin")) or all("checkpoints" in p.parts for p in trained.rglob("*.bin"))
    assert [p.name for p in (trained / "checkpoints").iterdir()] == ["checkpoint-10"]  # rotation kept the newest
    arguments = json.loads((trained / "training_args.json").read_text())
    assert arguments["family"] == "diffusion" and arguments["training"]["max_steps"] == 12
    assert arguments["model"]["class_conditional"] is True
    logs = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in logs] == [4, 8, 12]
    assert all(np.isfinite(row["loss"]) and row["samples_per_second"] > 0 and "lr_model" in row for row in logs)
    assert list((trained / "logs").rglob("events.out.tfevents.*"))  # tensorboard
    assert json.loads((trained / "unet" / "config.json").read_text())["num_class_embeds"] == 11


def test_sample_cli_reads_the_folder(trained, tmp_path):
    grid = tmp_path / "grid.png"
    run_hfgen("sample", trained, "--num_images", "4", "--seed", "0", "--scheduler", "dpmsolver", "--steps", "3",
              "--output", grid, "--class_label", "3", "--guidance_scale", "2.0")
    again = tmp_path / "again.png"
    run_hfgen("sample", trained, "--num_images", "4", "--seed", "0", "--scheduler", "dpmsolver", "--steps", "3",
              "--output", again, "--class_label", "3", "--guidance_scale", "2.0")
    assert Image.open(grid).size == (136, 136)  # 2 x 2 cells: 8x8 digits enlarged to 64 px + a 2 px border
    assert np.array_equal(np.asarray(Image.open(grid)), np.asarray(Image.open(again)))  # same seed, same images


def test_yaml_config_with_flag_override(tmp_path):
    config = tmp_path / "args.yaml"
    config.write_text("max_steps: 2\nlearning_rate: 0.0005\nprediction_type: v_prediction\nuse_ema: false\n"
                      "sample_steps: 100\nnum_grid_images: 2\nblock_out_channels: [8, 16, 16]\nnum_train_timesteps: 20\n")
    out = tmp_path / "run"
    run_hfgen("train", "diffusion", "--config", config, "--output_dir", out, "--max_steps", "3", "--train_batch_size", "8")
    arguments = json.loads((out / "training_args.json").read_text())
    assert arguments["training"]["max_steps"] == 3  # the flag wins over the file
    assert arguments["training"]["learning_rate"] == 0.0005
    assert json.loads((out / "scheduler" / "scheduler_config.json").read_text())["prediction_type"] == "v_prediction"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "diffusion", "--dataset", "no_such_set"], "Unknown dataset 'no_such_set'"),
        (["train", "diffusion", "--dataset", "{empty}"], "holds no images"),
        (["train", "diffusion", "--max_steps", "0"], "--max_steps must be a positive integer"),
        (["train", "diffusion", "--max_steps", "-3"], "--max_steps must be a positive integer"),
        (["train", "nofamily"], "Unknown family 'nofamily'"),
        (["train", "diffusion", "--config", "{missing}.yaml"], "does not exist"),
        (["sample", "{missing}"], "does not exist"),
        (["sample", "{empty}"], "no model_index.json"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.format(empty=tmp_path / "empty", missing=tmp_path / "missing") for a in args]
    assert main(args) == 2
    stderr = capsys.readouterr().err
    assert message in stderr and stderr.startswith("hfgen: error:"), stderr


def test_sample_label_out_of_range(trained, tmp_path, capsys):
    assert main(["sample", str(trained), "--num_images", "2", "--steps", "2", "--class_label", "10",
                 "--output", str(tmp_path / "g.png")]) == 2
    assert "class_labels must be in [0, 9]" in capsys.readouterr().err


def test_guidance_on_unconditional_model_is_refused(tmp_path, capsys):
    out = tmp_path / "uncond"
    assert main(["train", "diffusion", "--output_dir", str(out), "--max_steps", "1", "--sample_steps", "5", *TINY]) == 0
    assert main(["sample", str(out), "--num_images", "2", "--steps", "2", "--guidance_scale", "2",
                 "--output", str(tmp_path / "g.png")]) == 2
    assert "needs a class-conditional model" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_damaged_weights_are_reported(trained, tmp_path, capsys, damage):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy, ignore=shutil.ignore_patterns("checkpoints", "logs", "samples"))
    weights = copy / "unet" / "diffusion_pytorch_model.safetensors"
    if damage == "missing":
        weights.unlink()
    else:
        weights.write_bytes(weights.read_bytes()[:100])
    assert main(["sample", str(copy), "--num_images", "1", "--steps", "1", "--output", str(tmp_path / "g.png")]) == 2
    assert "Could not load the weights" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_train_in_sync(tmp_path):
    out = tmp_path / "ddp"
    launch_two_processes("train", "diffusion", "--output_dir", out, "--max_steps", "4", "--checkpointing_steps", "2",
                         "--sample_steps", "100", *TINY)
    info = json.loads((out / "run_info.json").read_text())
    assert info["distributed_type"] == "MULTI_CPU" and info["num_processes"] == 2 and info["backend"] == "gloo"
    first, second = info["replica_checksums"]
    assert first == second  # DDP kept both replicas bit-identical
    checkpoint = out / "checkpoints" / "checkpoint-2"
    assert (checkpoint / "random_states_0.pkl").is_file() and (checkpoint / "random_states_1.pkl").is_file()


def _train_command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hfgen", "train", "diffusion", "--output_dir", str(out), "--max_steps", "60",
            "--checkpointing_steps", "10", "--checkpoints_total_limit", "3", "--sample_steps", "1000",
            "--lr_warmup_steps", "5", "--gradient_accumulation_steps", "2", *TINY, *extra]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tmp_path):
    reference, interrupted = kill_mid_run_and_resume(_train_command, tmp_path)
    expected, resumed = safetensors_weights(reference), safetensors_weights(interrupted)
    assert expected.keys() == resumed.keys() and expected
    for key in expected:
        torch.testing.assert_close(resumed[key], expected[key], rtol=0, atol=1e-6)
    assert json.loads((interrupted / "run_info.json").read_text())["global_step"] == 60
