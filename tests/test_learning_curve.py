"""scripts/learning_curve.py runs end to end at the tiny budget, and its points are the run's weights at their step."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from helpers import load_script
from hfgen.training.launch import train
from hfgen.zoo.run import ZooArguments, training_runs

UNET_WEIGHTS = "unet/diffusion_pytorch_model.safetensors"


def test_each_checkpoint_is_a_point_judged_against_the_kde(extractor_cache, tmp_path, capsys):
    script = load_script("learning_curve")
    argv = [
        "diffusion", "--budget", "tiny", "--max_steps", "4", "--every", "2", "--num_samples", "64",
        "--output_dir", str(tmp_path), "--base", "--lr_scheduler_type constant",
    ]
    rows = script.main(argv)
    assert list(rows) == ["2 steps", "4 steps", "*scikit-learn KDE*"]
    assert len({row["fid"] for row in rows.values()}) == 3
    assert "train_seconds" in rows["4 steps"] and "train_seconds" not in rows["2 steps"]  # only the whole run is timed
    folder = tmp_path / "digits" / "diffusion"
    saved = json.loads((folder / "steps4-seed0.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(rows)) and saved["num_samples"] == 64
    printed = capsys.readouterr().out
    assert "| point |" in printed and "- 2 steps: ΔFID∞" in printed and "the KDE" in printed

    # The point at step 2 is the run's state at step 2: with a constant learning rate (nothing depends on the run's
    # length) a fresh run of 2 steps ends on the same weights, bit for bit.
    fresh = tmp_path / "fresh"
    [(_, fresh_argv)] = training_runs(ZooArguments(budget="tiny"), "diffusion", fresh)
    train("diffusion", [*fresh_argv, "--lr_scheduler_type", "constant", "--max_steps", "2"])
    point, whole = load_file(folder / "steps4-seed0-at2" / UNET_WEIGHTS), load_file(folder / "steps4-seed0" / UNET_WEIGHTS)
    expected = load_file(fresh / UNET_WEIGHTS)
    assert all(point[name].equal(expected[name]) for name in expected)
    assert not all(whole[name].equal(expected[name]) for name in expected)

    # judged again without training: the same point rows to the last digit; the KDE's to float noise (its fit's
    # threaded BLAS sums in another order from call to call)
    trained_at = (folder / "steps4-seed0-at2" / UNET_WEIGHTS).stat().st_mtime_ns
    again = script.main([*argv, "--reuse_trained"])
    assert (folder / "steps4-seed0-at2" / UNET_WEIGHTS).stat().st_mtime_ns == trained_at
    timings = ("samples_per_second", "train_seconds")
    for name in ("2 steps", "4 steps"):
        assert {k: v for k, v in again[name].items() if k not in timings} == {k: v for k, v in rows[name].items() if k not in timings}
    assert again["*scikit-learn KDE*"] == pytest.approx(rows["*scikit-learn KDE*"], rel=1e-9)


def test_points_must_fit_the_run(capsys):
    with pytest.raises(SystemExit):
        load_script("learning_curve").main(["gan", "--max_steps", "10", "--every", "20"])
    assert "--every 20 must be between 1 and --max_steps 10" in capsys.readouterr().err
