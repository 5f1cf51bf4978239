"""`hfgen zoo`: every available family trained and judged by the same code, written up as one report."""

from __future__ import annotations

import json
import math
import os
import platform

import pytest
import torch
from safetensors.torch import load_file

from hfgen.cli import main
from hfgen.training.launch import finished_run_seconds
from hfgen.zoo.run import ZooArguments, available_families, table_rows as family_rows, train_argv, training_runs
from hfgen.families import REGISTRY, family_names


REFERENCES = ("*real test images*", "*scikit-learn KDE*", "*SMOTE*", "*Gaussian noise*")


def table_rows(readme: str) -> dict[str, list[str]]:
    """Markdown table lines of README.md -> row name: cells."""
    rows = [line.strip("|").split(" | ") for line in readme.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[2:]}


def test_tiny_zoo_writes_every_row(extractor_cache, tmp_path, capsys):
    families, missing = available_families(family_names())
    assert main(["zoo", "--budget", "tiny", "--output_dir", str(tmp_path), "--num_samples", "64"]) == 0
    assert "[zoo" in capsys.readouterr().out  # progress is shown

    readme = (tmp_path / "README.md").read_text()
    header = next(line for line in readme.splitlines() if line.startswith("| family"))
    columns = [c.strip() for c in header.strip("|").split(" | ")][1:]
    rows = table_rows(readme)
    model_rows = [name for family in families for name in family_rows(family)]
    assert list(rows) == [*model_rows, *REFERENCES]
    for name, cells in rows.items():
        values = dict(zip(columns, cells))
        for column in ("FID∞ ↓", "KID ↓", "precision ↑", "recall ↑"):
            assert " ± " in values[column], (name, column)
        assert values["NN dist."] != "n/a", name
        if name in model_rows:
            assert values["parameters"] != "n/a" and values["train time (s)"] != "n/a" and values["samples/s"] != "n/a"
        if name.split(" ")[0] in ("vae", "autoregressive"):
            bits, error = map(float, values["bits/dim ↓"].split(" ± "))
            assert bits > 0 and error > 0
    assert (tmp_path / "samples.png").stat().st_size > 0
    assert (tmp_path / "loss_curves.png").stat().st_size > 0
    results = json.loads((tmp_path / "metrics.json").read_text())
    assert results["missing"] == missing
    assert all(math.isfinite(row["fid"]) for row in results["rows"].values())
    for family in families:
        assert (tmp_path / "models" / family / "model_index.json").is_file()
        assert f"hfgen train {family} --dataset digits" in readme
    # the times say what they were measured on, torch's thread count included (it sets a CPU's speed)
    machine = f"CPU ({platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    assert f"Train time is wall-clock, on {machine}; samples/s, measured on {machine}," in readme
    assert json.loads((tmp_path / "models" / "gan" / "run_info.json").read_text())["hardware"] == machine


def test_missing_families_are_reported_not_fatal(monkeypatch):
    monkeypatch.setitem(REGISTRY, "ghost", "hfgen.families.ghost.family")
    available, missing = available_families(["diffusion", "ghost"])
    assert available == ["diffusion"] and "ghost" in missing["ghost"]


def test_unknown_family_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown families \\['nope'\\]"):
        ZooArguments(families=["nope"])


def test_a_stopped_zoo_continues_keeping_the_finished_runs(extractor_cache, tmp_path, capsys, monkeypatch):
    zoo = ["zoo", "--budget", "tiny", "--families", "gan", "--output_dir", str(tmp_path), "--num_samples", "32"]
    weights = tmp_path / "models" / "gan" / "gan_generator" / "model.safetensors"
    assert main(zoo) == 0
    trained = json.loads((tmp_path / "metrics.json").read_text())["rows"]["gan"]["train_seconds"]
    written = weights.stat().st_mtime_ns

    monkeypatch.chdir(tmp_path.parent)  # the same folder, spelled relative this time
    assert main([*zoo, "--reuse_trained", "--output_dir", tmp_path.name]) == 0
    assert "keeping gan (1/1)" in capsys.readouterr().out
    assert weights.stat().st_mtime_ns == written  # not trained again
    kept = json.loads((tmp_path / "metrics.json").read_text())["rows"]["gan"]["train_seconds"]
    assert kept == pytest.approx(trained, abs=0.05)  # as recorded in run_info.json, to 0.1 s
    [(_, argv)] = training_runs(ZooArguments(budget="tiny"), "gan", tmp_path / "models" / "gan")
    assert finished_run_seconds("gan", [*argv, "--checkpoints_total_limit", "5"], 1) == pytest.approx(trained, abs=0.05)

    assert main([*zoo, "--reuse_trained", "--max_steps", "3"]) == 0  # other options: another run, trained
    assert "training gan (1/1)" in capsys.readouterr().out
    assert weights.stat().st_mtime_ns != written


@pytest.mark.parametrize("family, flags", [("gan", ()), ("autoregressive", ("--dropout", "0.1"))])
def test_a_run_watched_at_every_step_is_the_run_the_zoo_keeps(tmp_path, family, flags):
    """Logs, preview grids and checkpoints at every step draw nothing from the run: the same weights bit for bit,
    so `--reuse_trained` keeps such a run (a learning curve's) as the zoo's own."""
    [(_, argv)] = training_runs(ZooArguments(budget="tiny"), family, tmp_path / "plain")
    argv = [*argv, *flags]
    watched = [*argv, "--output_dir", str(tmp_path / "watched"), "--checkpointing_steps", "1", "--sample_steps", "1",
               "--logging_steps", "1", "--num_grid_images", "4", "--log_sample_ids", "--checkpoints_total_limit", "3"]
    assert main(["train", family, *argv]) == 0 and main(["train", family, *watched]) == 0

    weights = {folder: {p.relative_to(tmp_path / folder): load_file(p) for p in (tmp_path / folder).rglob("*.safetensors")
                        if "checkpoint" not in str(p.relative_to(tmp_path / folder))}
               for folder in ("plain", "watched")}
    assert weights["plain"] and weights["plain"].keys() == weights["watched"].keys()
    for name, tensors in weights["plain"].items():
        assert all(torch.equal(tensor, weights["watched"][name][key]) for key, tensor in tensors.items()), name
    assert finished_run_seconds(family, [*argv, "--output_dir", str(tmp_path / "watched")], 1) is not None
    assert finished_run_seconds(family, [*argv, "--output_dir", str(tmp_path / "watched"), "--max_steps", "3"], 1) is None


def test_a_family_plan_overrides_the_budget_flag_it_sets(tmp_path):
    args = ZooArguments(dataset="fashion_mnist", budget="cpu")
    own = train_argv(args, "autoregressive", tmp_path)  # its plan warms up 50 steps, not the budget's 200
    assert own.count("--lr_warmup_steps") == 1 and own[own.index("--lr_warmup_steps") + 1] == "50"
    shared = train_argv(args, "gan", tmp_path)
    assert shared[shared.index("--lr_warmup_steps") + 1] == "200" and "--train_batch_size" in own
