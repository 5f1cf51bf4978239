"""`hfgen train gan` through the shared loop: the logged game, a real 2-process run, kill-and-resume, the CLI."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from accelerate.utils import set_seed
from PIL import Image

from hfgen import GANGenerator, GANPipeline
from hfgen.cli import main
from hfgen.data import image_transform, load_image_dataset

from helpers import kill_mid_run_and_resume, launch_two_processes, run_hfgen, safetensors_weights

pytestmark = pytest.mark.slow  # every test here runs the CLI in subprocesses

TINY = ["--latent_dim", "16", "--generator_channels", "32", "--discriminator_channels", "16", "--train_batch_size", "32",
        "--num_grid_images", "16"]
GAME_LOGS = ("discriminator_loss", "generator_loss", "d_real_logit", "d_fake_logit", "d_accuracy")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gan") / "run"
    run_hfgen("train", "gan", "--dataset", "digits", "--output_dir", out, "--max_steps", "30", "--logging_steps", "5",
              "--lr_warmup_steps", "0", "--sample_steps", "15", "--class_conditional", *TINY)
    return out


def test_training_logs_the_game_and_leaves_a_hub_ready_folder(trained):
    rows = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [5, 10, 15, 20, 25, 30]
    for row in rows:
        for key in GAME_LOGS:
            assert math.isfinite(row[key]), f"{key} at step {row['step']} is {row[key]}"
        assert 0 <= row["d_accuracy"] <= 1
    assert rows[0]["d_real_logit"] > rows[0]["d_fake_logit"]  # D ranks real above fake within its first 5 steps
    for path in ("model_index.json", "gan_generator/model.safetensors", "discriminator/model.safetensors",
                 "samples.png", "samples/step-000015.png", "training_args.json"):
        assert (trained / path).is_file(), path
    assert json.loads((trained / "training_args.json").read_text())["model"]["loss"] == "hinge"


def test_discriminator_separates_real_digits_from_the_initial_generator(trained):
    pipe = GANPipeline.from_pretrained(trained)
    dataset = load_image_dataset("digits", "test").with_transform(image_transform(8, 1))
    batch = dataset[list(range(64))]
    real, labels = batch["pixel_values"], batch["labels"]  # (64, 1, 8, 8), (64,)
    set_seed(0)  # the Trainer seeds, then builds the generator first: this is the generator at step 0
    initial = GANGenerator(pipe.gan_generator.config)
    with torch.no_grad():
        fake = initial(torch.randn(64, 16), class_labels=labels).sample
        real_logits = pipe.discriminator(real, class_labels=labels).logits
        fake_logits = pipe.discriminator(fake, class_labels=labels).logits
    ranked_right = (real_logits[:, None] > fake_logits[None, :]).float().mean()  # share of (real, fake) pairs
    assert ranked_right > 0.9, f"D ranks only {ranked_right:.2f} of real/fake pairs right after 30 steps"


def test_sample_cli_grid_class_truncation_and_latent_walk(trained, tmp_path, capsys):
    # The CLI's own entry point, in-process: the same parsing and errors as `hfgen sample`, without a new interpreter.
    grid = tmp_path / "sevens.png"
    assert main(["sample", str(trained), "--num_images", "4", "--seed", "0", "--class_label", "7", "--truncation", "0.7",
                 "--output", str(grid)]) == 0
    assert Image.open(grid).size == (136, 136)  # 2 x 2 cells of 8x8 digits enlarged to 64 px, 2 px borders
    walk = tmp_path / "walk.png"
    assert main(["sample", str(trained), "--interpolate", "0", "1", "--num_frames", "6", "--class_label", "3",
                 "--output", str(walk)]) == 0
    assert "6 frames" in capsys.readouterr().out
    assert Image.open(walk).size == (6 * 68, 68)  # one row of frames, 64 px cells with 2 px borders

    assert main(["sample", str(trained), "--class_label", "10", "--output", str(tmp_path / "x.png")]) == 2
    assert "class_labels must be in [0, 9]" in capsys.readouterr().err


def test_two_processes_train_both_networks_in_sync(tmp_path):
    out = tmp_path / "ddp"
    # DCGAN's batch-norm discriminator under DDP: the concatenated real+fake pass must not hit the in-place error.
    launch_two_processes("train", "gan", "--output_dir", out, "--max_steps", "4", "--checkpointing_steps", "2",
                         "--gradient_accumulation_steps", "2", "--sample_steps", "100", "--discriminator_norm", "batch",
                         "--no_spectral_norm", *TINY)
    info = json.loads((out / "run_info.json").read_text())
    assert info["distributed_type"] == "MULTI_CPU" and info["num_processes"] == 2 and info["backend"] == "gloo"
    first, second = info["replica_checksums"]
    assert first == second  # both generator and discriminator identical on both ranks
    checkpoint = out / "checkpoints" / "checkpoint-2"
    for name in ("model.safetensors", "model_1.safetensors", "optimizer.bin", "optimizer_1.bin", "random_states_1.pkl"):
        assert (checkpoint / name).is_file(), name


def _train_command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hfgen", "train", "gan", "--output_dir", str(out), "--max_steps", "40",
            "--checkpointing_steps", "10", "--checkpoints_total_limit", "3", "--sample_steps", "1000",
            "--lr_warmup_steps", "5", "--gradient_accumulation_steps", "2", *TINY, *extra]


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    reference, interrupted = kill_mid_run_and_resume(_train_command, tmp_path)
    # gan_generator/ holds the EMA weights, discriminator/ the live ones: both must match the uninterrupted run,
    # which needs both optimizers' moments, the EMA, the LR schedules and the RNG restored.
    expected, resumed = safetensors_weights(reference), safetensors_weights(interrupted)
    assert expected.keys() == resumed.keys()
    assert any(k.startswith("gan_generator") for k in expected) and any(k.startswith("discriminator") for k in expected)
    for key in expected:
        torch.testing.assert_close(resumed[key], expected[key], rtol=0, atol=1e-6)
    assert json.loads((interrupted / "run_info.json").read_text())["global_step"] == 40
