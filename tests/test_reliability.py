"""Training that loses nothing: preemption, a full disk, non-finite weights, clashing runs, impossible resumes,
and a bad-input sweep of every command generated from the argument dataclasses' own fields."""

from __future__ import annotations

import dataclasses
import errno
import importlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest
import torch

from helpers import Unpickled, launch_two_processes, safetensors_weights, subprocess_env

from hfgen.cli import main
from hfgen.families import families, get_family
from hfgen.training.signals import STOPPED_EXIT_CODE

VAE_TINY = ["--hidden_dim", "32", "--block_out_channels", "8", "16", "--latent_dim", "4", "--train_batch_size", "16",
            "--num_grid_images", "4", "--sample_steps", "1000", "--lr_warmup_steps", "2"]


def vae_argv(out: Path, *extra: str) -> list[str]:
    return ["train", "vae", "--output_dir", str(out), *VAE_TINY, *extra]


def hfgen_lines(stderr: str) -> list[str]:
    """The lines hfgen itself printed (progress bars share stderr); a traceback fails the caller's test."""
    assert "Traceback" not in stderr, stderr[-4000:]
    return [line for line in re.split(r"[\r\n]", stderr) if line.startswith("hfgen")]


def checkpoints(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "checkpoints").iterdir()) if (out / "checkpoints").is_dir() else []


def wait_for_log_step(out: Path, step: int, process: subprocess.Popen, timeout: float = 240) -> None:
    """Block until `train_log.jsonl` reports `step` (the run is mid-way), failing if the run ends first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        log = out / "train_log.jsonl"
        if log.is_file() and any(json.loads(line)["step"] >= step for line in log.read_text().splitlines() if line):
            return
        assert process.poll() is None, f"the run ended before step {step}: {process.communicate()[1][-3000:]}"
        time.sleep(0.02)
    raise AssertionError(f"no step {step} within {timeout} s")


# -- 1. graceful stop -----------------------------------------------------------------------------------------


def test_sigterm_stops_two_processes_at_one_step_and_resumes_to_the_same_weights(tmp_path):
    """A real SIGTERM to a real 2-process `accelerate launch` (its agent forwards it to both workers)."""
    argv = lambda out, *extra: vae_argv(out, "--max_steps", "60", "--logging_steps", "1", "--checkpointing_steps", "1000", *extra)
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    launch_two_processes(*argv(reference))
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines",
               "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0", "-m", "hfgen",
               *argv(interrupted)]
    process = subprocess.Popen(command, env=subprocess_env(ACCELERATE_USE_CPU="1"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for_log_step(interrupted, 5, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    stopped = [line for line in stderr.splitlines() if line.startswith("hfgen: stopped by SIGTERM at step")]
    assert len(stopped) == 1, stderr[-4000:]  # one line, from the main process only
    step = int(stopped[0].split("at step ")[1].split()[0])
    assert 5 <= step < 60 and checkpoints(interrupted) == [f"checkpoint-{step}"]
    assert not (interrupted / "model_index.json").exists()
    state = json.loads((interrupted / "checkpoints" / f"checkpoint-{step}" / "hfgen_state.json").read_text())
    assert state["step"] == step and state["batch_split"]["num_processes"] == 2
    resume = stopped[0].split("resume with: ")[1]
    assert resume.startswith("accelerate launch --num_processes 2 -m hfgen train vae ")
    assert resume.endswith("--resume_from_checkpoint latest")

    launch_two_processes(*shlex.split(resume)[6:])  # the printed command minus `accelerate launch ... -m hfgen` (ours adds CPU flags)
    expected, resumed = safetensors_weights(reference), safetensors_weights(interrupted)
    assert expected.keys() == resumed.keys() and expected
    for key in expected:
        torch.testing.assert_close(resumed[key], expected[key], rtol=0, atol=1e-6)


def test_ctrl_c_stops_a_single_process_run_with_the_stopped_exit_code(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "hfgen", *vae_argv(out, "--max_steps", "5000", "--logging_steps", "1")],
                               env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_log_step(out, 3, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == STOPPED_EXIT_CODE, stderr[-3000:]
    line = next(line for line in stderr.splitlines() if line.startswith("hfgen: stopped by SIGINT"))
    step = int(line.split("at step ")[1].split()[0])
    assert checkpoints(out) == [f"checkpoint-{step}"]
    assert line.endswith(f"hfgen train vae --output_dir {out} {' '.join(VAE_TINY)} --max_steps 5000 --logging_steps 1 "
                         "--resume_from_checkpoint latest")


def test_a_second_signal_exits_at_once():
    script = (
        "import os, signal, time\n"
        "from hfgen.training.signals import GracefulStop\n"
        "with GracefulStop() as stop:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    os.kill(os.getpid(), signal.SIGINT)  # the launcher forwarding the same Ctrl-C: counted once\n"
        "    assert stop.signal == signal.SIGINT\n"
        "    time.sleep(1.2)\n"
        "    os.kill(os.getpid(), signal.SIGINT)  # a real second Ctrl-C\n"
        "    time.sleep(30)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == -signal.SIGINT, result.stderr


# -- 2. full disk ---------------------------------------------------------------------------------------------


@pytest.fixture
def small_filesystem(tmp_path):
    """A real 1.2 MB tmpfs (we run as root in CI); yields its mount point and a function that enlarges it."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root); test_full_disk_while_saving_is_one_line covers ENOSPC")
    try:
        yield mount, lambda size: subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_keeps_the_last_checkpoint_and_resumes(small_filesystem, capsys):
    mount, enlarge = small_filesystem
    out = mount / "run"
    argv = vae_argv(out, "--max_steps", "40", "--checkpointing_steps", "2", "--checkpoints_total_limit", "100", "--logging_steps", "2")
    assert main(argv) == 2
    err = hfgen_lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith("hfgen: error: No space left on the disk of") and "needs about" in err[0], err
    saved = checkpoints(out)
    assert saved and not list((out / "checkpoints").glob(".tmp-checkpoint-*"))
    assert not (out / "model_index.json").exists() and not (out / ".tmp-final").exists()
    enlarge("20m")
    assert main([*argv, "--resume_from_checkpoint", "latest", "--checkpoints_total_limit", "1"]) == 0
    assert (out / "model_index.json").is_file() and json.loads((out / "run_info.json").read_text())["global_step"] == 40


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_while_saving_is_one_line(tmp_path, capsys, monkeypatch):
    """Injected ENOSPC at both save calls: a checkpoint half-written, then the final weights half-written."""
    from accelerate import Accelerator
    from diffusers import DiffusionPipeline

    out = tmp_path / "run"
    argv = vae_argv(out, "--max_steps", "6", "--checkpointing_steps", "2", "--logging_steps", "2")
    real_save_state = Accelerator.save_state

    def save_state_then_fill_the_disk(self, output_dir, **kwargs):
        if output_dir.endswith("checkpoint-4"):
            (Path(output_dir) / "model.safetensors").write_bytes(b"half")
            _no_space()
        return real_save_state(self, output_dir, **kwargs)

    monkeypatch.setattr(Accelerator, "save_state", save_state_then_fill_the_disk)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "No space left on the disk of" in err and "to write checkpoint-4" in err and "Traceback" not in err
    assert checkpoints(out) == ["checkpoint-2"] and not list((out / "checkpoints").glob(".tmp-*"))

    monkeypatch.setattr(Accelerator, "save_state", real_save_state)
    real_save_pretrained = DiffusionPipeline.save_pretrained

    def save_pretrained_then_fill_the_disk(self, save_directory, **kwargs):
        real_save_pretrained(self, save_directory, **kwargs)
        _no_space()

    monkeypatch.setattr(DiffusionPipeline, "save_pretrained", save_pretrained_then_fill_the_disk)
    assert main([*argv, "--resume_from_checkpoint", "latest"]) == 2
    assert "to write the final weights" in capsys.readouterr().err
    assert not (out / "model_index.json").exists() and not (out / "vae").exists() and not (out / ".tmp-final").exists()
    assert checkpoints(out) == ["checkpoint-2", "checkpoint-4"]


# -- 3. non-finite weights ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("poison_at", "what", "kept"), [
    (6, "checkpoint-6", ["checkpoint-2", "checkpoint-4"]),
    (8, "the final weights", ["checkpoint-4", "checkpoint-6"]),
])
def test_non_finite_weights_are_never_saved(tmp_path, capsys, monkeypatch, poison_at, what, kept):
    """NaN weights right after an optimizer step whose loss was still finite: only the save check can catch them."""
    steps = {"n": 0}
    real_step = torch.optim.AdamW.step

    def step_then_poison(self, *args, **kwargs):
        result = real_step(self, *args, **kwargs)
        steps["n"] += 1
        if steps["n"] == poison_at:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("nan"))
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", step_then_poison)
    out = tmp_path / "run"
    assert main(vae_argv(out, "--max_steps", "8", "--checkpointing_steps", "2", "--logging_steps", "100")) == 2
    err = hfgen_lines(capsys.readouterr().err)
    assert len(err) == 1 and f"became non-finite by step {poison_at}, so {what} was not written: lower --learning_rate" in err[0]
    assert checkpoints(out) == kept
    assert not (out / "model_index.json").exists() and not safetensors_weights(out)


# -- 4 and 5. one run per folder; resumes that cannot work -----------------------------------------------------


def test_a_live_runs_folder_is_refused_and_a_dead_runs_lock_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from hfgen.training.run_lock import RunLock; lock = RunLock({str(out)!r}); lock.acquire(); "
                               "print('locked', flush=True); import time; time.sleep(120)"],
        env=subprocess_env(), stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(vae_argv(out, "--max_steps", "2")) == 2
        err = capsys.readouterr().err
        assert f"--output_dir {str(out)!r} is in use by a live run" in err and f'"pid": {holder.pid}' in err
    finally:
        holder.kill()
        holder.wait()
    assert (out / ".hfgen-run.lock").is_file()  # left behind by the killed holder: stale, taken over below
    assert main(vae_argv(out, "--max_steps", "4", "--checkpointing_steps", "2")) == 0
    assert not (out / ".hfgen-run.lock").exists()
    capsys.readouterr()

    assert main(vae_argv(out, "--max_steps", "4")) == 2  # a fresh run over a finished one
    assert "already holds a finished model (model_index.json): continue it with --resume_from_checkpoint latest, " \
           "replace it with --overwrite_output_dir" in capsys.readouterr().err
    assert main(vae_argv(out, "--max_steps", "3", "--overwrite_output_dir", "--checkpointing_steps", "100")) == 0
    assert checkpoints(out) == [] and json.loads((out / "run_info.json").read_text())["global_step"] == 3
    assert {json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()} == {3}  # not the old run's 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--hidden_dim", "64"], "belongs to another run (model.hidden_dim 32 there, 64 now)"),
        (["--seed", "1"], "belongs to another run (training.seed 0 there, 1 now)"),
        (["--resolution", "16"], "belongs to another run (data.resolution None there, 16 now)"),
        ("gan", "belongs to another run (family 'vae' there, 'gan' now)"),
        ("2 processes", "global batch of 16 per process x 2 processes x 1 accumulation steps = 32, this run's is 16 per "
                        "process x 1 processes x 1 accumulation steps = 16: resume with --gradient_accumulation_steps 2"),
        ("old checkpoint", "does not fit this model (size mismatch"),
        ("optimizer.bin", "holds pickled objects other than tensors and numbers"),  # loaded by accelerate
        ("training_state_0.pt", "holds pickled objects other than tensors and numbers"),  # by hfgen: accelerate would unpickle it
    ],
)
def test_a_resume_that_cannot_work_says_why(tmp_path, capsys, change, message):
    out = tmp_path / "run"
    assert main(vae_argv(out, "--max_steps", "2", "--checkpointing_steps", "1", "--logging_steps", "1")) == 0
    state_file = out / "checkpoints" / "checkpoint-1" / "hfgen_state.json"
    state = json.loads(state_file.read_text())
    argv = vae_argv(out, "--max_steps", "4", "--resume_from_checkpoint", str(state_file.parent))
    if change == "gan":
        argv = ["train", "gan", "--output_dir", str(out), "--train_batch_size", "16", "--resume_from_checkpoint", str(state_file.parent)]
    elif change == "2 processes":
        state_file.write_text(json.dumps({**state, "batch_split": {**state["batch_split"], "num_processes": 2}}))
    elif change == "old checkpoint":  # written before checkpoints recorded their run: torch finds the mismatch
        state_file.write_text(json.dumps({"step": 1}))
        argv += ["--hidden_dim", "64"]
    elif change in ("optimizer.bin", "training_state_0.pt"):  # a downloaded checkpoint whose state would run code when unpickled
        torch.save({"state": Unpickled(tmp_path / "unpickled")}, state_file.parent / change)
    else:
        argv += change
    assert main(argv) == 2
    err = hfgen_lines(capsys.readouterr().err)
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "unpickled").exists()


# -- 6. the bad-input sweep -----------------------------------------------------------------------------------


class Accepted(Exception):
    """Raised where a command would start its real work: reaching it means the bad value got through."""


# Every `str` option is one of these kinds (a new `str` option fails `test_every_str_option_has_a_kind` until it
# is given one, so the sweep covers it).
INPUT_FOLDERS = {"resume_from_checkpoint", "dataset", "data_dir", "init_from", "model", "judge_model", "vae", "folder"}
INPUT_FILES = {"unet_config", "reconstruct"}
OUTPUT_FOLDERS = {"output_dir"}
OUTPUT_FILES = {"output"}
NAMES = {"lr_scheduler_type", "device", "space", "preset", "diffaugment"}  # validated against a fixed set of names
REPO_IDS = {"hub_model_id", "repo_id"}
FREE_TEXT = {"prompt", "commit_message", "revision", "host"}  # any text is valid (a branch name, an address)


def command_dataclasses() -> dict[str, tuple[list[str], tuple[type, ...]]]:
    """Command name -> (its argv prefix, the dataclasses its options come from), from the registry and the CLI."""
    from hfgen.commands.demo import DemoArguments
    from hfgen.commands.evaluate import EvaluateArguments
    from hfgen.zoo.run import ZooArguments
    from hfgen.hub.push import PushArguments
    from hfgen.hub.push_space import PushSpaceArguments
    from hfgen.sampling import SampleArguments
    from hfgen.arguments import DataArguments, TrainingArguments

    commands = {f"train {family.name}": (["train", family.name], (TrainingArguments, DataArguments, family.arguments))
                for family in families()}
    return commands | {"sample": (["sample"], (SampleArguments,)), "evaluate": (["evaluate"], (EvaluateArguments,)),
                       "zoo": (["zoo"], (ZooArguments,)), "push": (["push"], (PushArguments,)),
                       "push-space": (["push-space"], (PushSpaceArguments,)),
                       "demo": (["demo", "vae"], (DemoArguments,))}


def _base_type(hint) -> tuple[str, tuple]:
    """('int' | 'float' | 'bool' | 'str' | 'literal' | 'list', literal choices or list item types)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType")) and len(args) == 1:
        hint = args[0]
    if typing.get_origin(hint) is typing.Literal:
        return "literal", typing.get_args(hint)
    if typing.get_origin(hint) is list:
        return "list", typing.get_args(hint)
    return hint.__name__, ()


def bad_values(name: str, hint, tmp: Path) -> list[list[str]]:
    """Wrong type, out of range, missing file, wrong kind of folder: the values each option must refuse."""
    kind, inner = _base_type(hint)
    if kind in ("int", "float"):
        return [["x"], ["-1"], *([["nan"]] if kind == "float" else [])]
    if kind == "bool":
        return [["maybe"]]
    if kind == "literal":
        return [["no_such_choice"]]
    if kind == "list":
        return [["x"], ["-1"]] if inner[0] in (int, float) else [["-1"]]
    if name in INPUT_FOLDERS:
        return [[str(tmp / "missing")], [str(tmp / "a_file.txt")]]
    if name in INPUT_FILES:
        return [[str(tmp / "missing")], [str(tmp)]]
    if name in OUTPUT_FOLDERS:
        return [[str(tmp / "a_file.txt")]]  # a file where a folder must go
    if name in OUTPUT_FILES:
        return [[str(tmp)]]  # a folder where a file must go
    if name in NAMES:
        return [["no_such_name"]]
    if name in REPO_IDS:
        return [["not a/repo id"]]
    return []


def sweep_cases(tmp: Path, model: Path, prerequisites: dict[str, Path] | None = None) -> list[tuple[str, list[str], str]]:
    """(option, argv, the text the error line must contain) for every option of every command; a family that
    builds on another model gets the one in `prerequisites`, so the bad option is what it refuses."""
    out = tmp / "out"
    bases = {"zoo": ["--output_dir", str(out), "--budget", "tiny"],
             "sample": [str(model), "--output", str(out / "s.png"), "--num_images", "2"],
             "evaluate": [str(model), "--output", str(out / "e.json")],
             "push": [str(model), "hfgen-test/sweep"],
             "push-space": ["vae", "hfgen-test/sweep-space"],
             "demo": ["--model", str(model)]}
    cases = []
    for command, (prefix, classes) in command_dataclasses().items():
        if command.startswith("train"):
            plan = get_family(prefix[1]).zoo["tiny"]
            base = ["--output_dir", str(out), "--max_steps", "1", "--train_batch_size", "8", "--num_grid_images", "2",
                    *plan.flags]
            if plan.prerequisite and prerequisites:
                base += [plan.prerequisite.flag, str(prerequisites[prefix[1]])]
        else:
            base = bases[command]
        for cls in classes:
            hints = typing.get_type_hints(cls)
            for field in dataclasses.fields(cls):
                for value in bad_values(field.name, hints[field.name], tmp):
                    cases.append((field.name, [*prefix, *base, f"--{field.name}", *value], value[0]))
    return cases


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "vae"
    assert main(vae_argv(out, "--max_steps", "1")) == 0
    return out


@pytest.fixture(scope="module")
def prerequisite_models(tmp_path_factory) -> dict[str, Path]:
    """Family -> the model it builds on (latent diffusion's spatial VAE), trained with the family's tiny plan."""
    from hfgen.zoo.run import ZooArguments, training_runs

    models = {}
    for family in families():
        if family.zoo["tiny"].prerequisite:
            (name, argv), _ = training_runs(ZooArguments(budget="tiny"), family.name, tmp_path_factory.mktemp("sweep") / family.name)
            assert main(["train", name, *argv]) == 0
            models[family.name] = Path(argv[argv.index("--output_dir") + 1])
    return models


def test_every_option_is_swept(tmp_path):
    """Every option of every command gets bad values, so a new option is covered by being added (a new `str`
    option fails here until it is given a kind above)."""
    swept = {(option, " ".join(argv[:2]) if argv[0] == "train" else argv[0]) for option, argv, _ in sweep_cases(tmp_path, tmp_path)}
    for command, (prefix, classes) in command_dataclasses().items():
        for cls in classes:
            for field in dataclasses.fields(cls):
                assert (field.name, command) in swept or field.name in FREE_TEXT, f"{command} --{field.name}"


def test_bad_input_sweep_of_every_command(tmp_path, tiny_model, prerequisite_models, capsys, monkeypatch):
    import hfgen.training.trainer

    evaluate_module = importlib.import_module("hfgen.commands.evaluate")
    zoo_module = importlib.import_module("hfgen.commands.zoo")

    def accepted(*args, **kwargs):
        raise Accepted

    monkeypatch.setattr(hfgen.training.trainer, "_optimizer_steps", accepted)
    monkeypatch.setattr(evaluate_module, "Evaluator", accepted)
    monkeypatch.setattr(zoo_module, "run_zoo", accepted)
    monkeypatch.setattr(importlib.import_module("hfgen.commands.push"), "push_folder", accepted)
    monkeypatch.setattr(importlib.import_module("hfgen.commands.push_space"), "push_space", accepted)
    monkeypatch.setattr(importlib.import_module("hfgen.commands.demo"), "build_demo", accepted)
    (tmp_path / "a_file.txt").write_text("not what was asked for")
    cases = sweep_cases(tmp_path, tiny_model, prerequisite_models)
    failures, started = [], time.perf_counter()
    for option, argv, value in cases:
        try:
            code = main(argv)
        except Accepted:
            code = 0
        except BaseException as error:  # a traceback the CLI did not turn into one line
            code = f"{type(error).__name__}: {error}"
        err = capsys.readouterr().err
        lines = [line for line in re.split(r"[\r\n]", err) if line.startswith("hfgen")]
        written = sorted((tmp_path / "out").rglob("*")) or ([tmp_path / "out"] if (tmp_path / "out").exists() else [])
        problem = (
            "accepted" if code == 0 else
            f"raised {code}" if not isinstance(code, int) else
            "traceback" if "Traceback" in err else
            f"not one line: {lines}" if len(lines) != 1 or not lines[0].startswith("hfgen: error:") else
            f"does not name the option: {lines[0]}" if option not in lines[0] and value not in lines[0] else
            f"wrote {written}" if written else None
        )
        if problem:
            failures.append(f"{' '.join(argv[:2])} --{option} {value}: {problem}")
        shutil.rmtree(tmp_path / "out", ignore_errors=True)
    print(f"bad-input sweep: {len(cases)} cases in {time.perf_counter() - started:.0f} s, {len(failures)} failures")
    assert not failures, "\n".join(failures)


def _image_folder(root: Path, damage: str) -> Path:
    """Eight good 8x8 PNGs and one damaged one: `corrupt` (PNG header, garbage after) or `empty` (0 bytes)."""
    from PIL import Image

    folder = root / f"images_{damage}"
    folder.mkdir()
    for i in range(8):
        Image.new("L", (8, 8), color=i * 30).save(folder / f"{i}.png")
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(40) if damage == "corrupt" else b"")
    return folder


def _damaged_model(root: Path, model: Path, damage: str) -> Path:
    copy = root / f"model_{damage}"
    shutil.copytree(model, copy, ignore=shutil.ignore_patterns("checkpoints", "logs", "samples"))
    weights = next(copy.rglob("*.safetensors"))
    weights.write_bytes(b"" if damage == "empty" else weights.read_bytes()[: weights.stat().st_size // 2])
    return copy


def _text_model(root: Path) -> Path:
    from transformers import GPT2Config

    folder = root / "text_model"
    GPT2Config(n_layer=1, n_head=1, n_embd=8, vocab_size=16, bos_token_id=0, eos_token_id=0).save_pretrained(folder)
    return folder


HAND_CASES = {  # name -> (argv from (tmp, model, out), text the one error line must contain)
    "empty weights file": (lambda t, m, o: ["sample", str(_damaged_model(t, m, "empty")), "--output", str(o / "s.png")],
                           "Could not load the weights"),
    "truncated safetensors": (lambda t, m, o: ["sample", str(_damaged_model(t, m, "truncated")), "--output", str(o / "s.png")],
                              "Could not load the weights"),
    "text model to evaluate": (lambda t, m, o: ["evaluate", str(_text_model(t)), "--output", str(o / "e.json")],
                               "without an image pipeline"),
    "corrupt PNG in the data": (lambda t, m, o: vae_argv(o, "--dataset", str(_image_folder(t, "corrupt")), "--max_steps", "1",
                                                         "--train_batch_size", "4"), "bad.png"),
    "0-byte image in the data": (lambda t, m, o: vae_argv(o, "--dataset", str(_image_folder(t, "empty")), "--max_steps", "1",
                                                          "--train_batch_size", "4"), "bad.png"),
    "another family's option": (lambda t, m, o: ["train", "gan", "--output_dir", str(o), "--hidden_dim", "32"],
                                "`hfgen train gan` has no option '--hidden_dim'"),
    "0-byte image to reconstruct": (lambda t, m, o: ["sample", str(m), "--reconstruct", str(_image_folder(t, "empty") / "bad.png"),
                                                     "--output", str(o / "s.png")], "bad.png"),
}


@pytest.mark.parametrize("case", HAND_CASES)
def test_bad_files_and_options_are_one_line(tmp_path, tiny_model, capsys, case):
    build, message = HAND_CASES[case]
    out = tmp_path / "out"
    argv = build(tmp_path, tiny_model, out)
    capsys.readouterr()
    assert main(argv) == 2
    err = hfgen_lines(capsys.readouterr().err)
    assert len(err) == 1 and err[0].startswith("hfgen: error:") and message in err[0], err
    assert not [p for p in out.rglob("*") if p.is_file()]  # nothing written
    assert not (out.exists() and case.startswith("0-byte image to")), "a refused `sample` left an empty output folder"
