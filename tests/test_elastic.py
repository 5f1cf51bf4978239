"""Elastic resume and runs across machines, with real `accelerate launch` processes over gloo.

A checkpoint written by 2 processes resumes on 1 (with accumulation 2: the same global batch) and one written by 1
resumes on 2, and both end with the weights of an uninterrupted 2-process run (`helpers.assert_same_training` states
the tolerance). Two "machines" are two launch commands on this host with `--num_machines 2`: a SIGTERM to one stops
both at one step, and machines that do not share --output_dir are refused at start.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path


from helpers import accelerate_command, assert_same_training, free_port, launch_two_processes, subprocess_env

from hfgen.cli import main
from hfgen.zoo.run import ZooArguments, training_runs

STEPS, CHECKPOINT = 6, 3
FAMILY_FLAGS = {"vae": (), "gan": ("--generator_norm", "layer")}
"""Each family's flags here: BatchNorm off (its statistics are a micro-batch's own). The process-count change runs on
the GAN - two phases, spectral norm: the hardest case; the VAE's one phase stops and resumes across machines below.
Every family's split invariance, in one process, is test_randomness.py."""


def train_argv(family: str, out: Path, *extra: str) -> list[str]:
    """The family's tiny zoo plan for STEPS steps, a checkpoint at CHECKPOINT, logging every step and its samples."""
    (name, argv), = training_runs(ZooArguments(budget="tiny", max_steps=STEPS), family, out)
    return ["train", name, *argv, *FAMILY_FLAGS[family], "--checkpointing_steps", str(CHECKPOINT), "--logging_steps", "1",
            "--log_sample_ids", *extra]


def per_process(batch: int, accumulation: int) -> tuple[str, ...]:
    return "--train_batch_size", str(batch), "--gradient_accumulation_steps", str(accumulation)


def continue_from(source: Path, out: Path) -> None:
    """Put `source`'s checkpoint at CHECKPOINT into `out`, as a job that moved machines finds its folder."""
    shutil.copytree(source / "checkpoints" / f"checkpoint-{CHECKPOINT}", out / "checkpoints" / f"checkpoint-{CHECKPOINT}")


def test_a_checkpoint_resumes_on_another_number_of_processes_with_the_same_weights(tmp_path):
    family = "gan"
    reference, single, down, up = (tmp_path / name for name in ("2x8", "1x8x2", "2-then-1", "1-then-2"))
    launch_two_processes(*train_argv(family, reference, *per_process(8, 1)))  # uninterrupted: 2 processes x 8
    assert main(train_argv(family, single, *per_process(8, 2))) == 0  # uninterrupted: 1 process x 8 x 2
    assert_same_training(single, reference)

    continue_from(reference, down)  # 2 processes to step 3, then 1 process with accumulation 2
    assert main(train_argv(family, down, *per_process(8, 2), "--resume_from_checkpoint", "latest")) == 0
    assert json.loads((down / "run_info.json").read_text())["num_processes"] == 1
    assert_same_training(down, reference)

    continue_from(single, up)  # 1 process to step 3, then 2 processes
    launch_two_processes(*train_argv(family, up, *per_process(8, 1), "--resume_from_checkpoint", "latest"))
    assert_same_training(up, reference)


def test_another_global_batch_is_refused_with_the_flags_that_fit(tmp_path, capsys):
    source, out = tmp_path / "source", tmp_path / "out"
    assert main(train_argv("vae", source, *per_process(8, 2))) == 0
    continue_from(source, out)
    for flags, advice in [
        (per_process(8, 1), "resume with --gradient_accumulation_steps 2 "),
        (per_process(6, 1), "resume with --train_batch_size 16 "),
    ]:
        assert main(train_argv("vae", out, *flags, "--resume_from_checkpoint", "latest")) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert "was trained with a global batch of 8 per process x 1 processes x 2 accumulation steps = 16" in err, err
        assert advice in err, err


def launch_machines(argv: list[str], cwds: tuple[Path, Path]) -> list[subprocess.Popen]:
    """One `accelerate launch` per machine (1 process each), machine `r` started in `cwds[r]`."""
    port = free_port()
    return [
        subprocess.Popen(accelerate_command(*argv, num_machines=2, machine_rank=rank, port=port), cwd=cwd,
                         env=subprocess_env(ACCELERATE_USE_CPU="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for rank, cwd in enumerate(cwds)
    ]


def test_a_sigterm_to_one_machine_stops_both_at_one_step_and_the_run_resumes_on_one(tmp_path):
    """The signal lands mid-run (a constant learning rate, so --max_steps does not shape the trajectory); the
    resumed run, on one process with accumulation 2, ends with the weights of a 2-process run to the same step."""
    argv = lambda out, steps, *extra: train_argv(
        "vae", out, "--lr_scheduler_type", "constant", "--max_steps", str(steps), "--checkpointing_steps", "1000", *extra
    )
    interrupted = tmp_path / "interrupted"
    machines = launch_machines(argv(interrupted, 1000, *per_process(8, 1)), (tmp_path, tmp_path))
    log, deadline = interrupted / "train_log.jsonl", time.time() + 240
    while not (log.is_file() and len(log.read_text().splitlines()) >= 3):
        assert all(machine.poll() is None for machine in machines) and time.time() < deadline, machines[0].communicate()[1][-3000:]
        time.sleep(0.05)
    machines[1].send_signal(signal.SIGTERM)  # machine 1 only
    outputs = [machine.communicate(timeout=120) for machine in machines]
    assert all(machine.returncode != 0 for machine in machines)
    stopped = [line for _, err in outputs for line in err.splitlines() if line.startswith("hfgen: stopped by")]
    assert len(stopped) == 1 and "stopped by a signal on another process at step" in stopped[0], outputs[0][1][-3000:]
    step = int(stopped[0].split("at step ")[1].split()[0])
    assert sorted(p.name for p in (interrupted / "checkpoints").iterdir()) == [f"checkpoint-{step}"]
    assert not (interrupted / "model_index.json").exists()

    assert main(argv(interrupted, step + 3, *per_process(8, 2), "--resume_from_checkpoint", "latest")) == 0
    reference = tmp_path / "reference"
    launch_two_processes(*argv(reference, step + 3, *per_process(8, 1)))
    assert_same_training(interrupted, reference)


def test_machines_without_a_shared_output_dir_are_refused_at_start(tmp_path):
    """Each machine starts in a folder of its own with a relative --output_dir: two disks, as far as hfgen can tell."""
    disks = (tmp_path / "machine-0", tmp_path / "machine-1")
    for disk in disks:
        disk.mkdir()
    machines = launch_machines(train_argv("vae", Path("run")), disks)
    outputs = [machine.communicate(timeout=240) for machine in machines]
    assert all(machine.returncode != 0 for machine in machines)
    errors = [line for _, err in outputs for line in err.splitlines() if line.startswith("hfgen: error:")]
    assert len(errors) == 2 and all("--output_dir 'run' is not shared by all 2 processes (process 1 cannot see" in e for e in errors), errors
    assert not list(disks[0].glob("run/checkpoints")) and not (disks[0] / "run" / "train_log.jsonl").exists()
