"""scripts/compare_options.py runs end to end at the tiny budget, so the side-by-side tables cannot rot."""

from __future__ import annotations

import json

import pytest

from helpers import load_script


def test_a_training_option_and_a_sampler_get_rows_beside_the_default(extractor_cache, tmp_path, capsys):
    script = load_script("compare_options")
    argv = ["diffusion", "--budget", "tiny", "--variant", "--snr_gamma 5", "--num_samples", "64", "--output_dir", str(tmp_path)]
    rows = script.main([*argv, "--sampler", "scheduler=heun"])
    assert list(rows) == [
        "default (seed 0)", "default, scheduler=heun (seed 0)", "--snr_gamma 5 (seed 0)", "--snr_gamma 5, scheduler=heun (seed 0)",
    ]
    fids = [row["fid"] for row in rows.values()]
    assert len(set(fids)) == 4  # other weights or another sampler: every row judged on its own samples
    assert rows["default (seed 0)"]["train_seconds"] == rows["default, scheduler=heun (seed 0)"]["train_seconds"] > 0
    saved = json.loads((tmp_path / "digits" / "diffusion" / "comparison.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(rows)) and saved["num_samples"] == 64
    printed = capsys.readouterr().out
    assert "| variant |" in printed
    assert "- --snr_gamma 5 (seed 0): ΔFID∞" in printed and "against two combined errors" in printed

    # another sampler later, on the same weights: --reuse_trained keeps both folders instead of training again
    weights = tmp_path / "digits" / "diffusion" / "default-seed0" / "unet" / "diffusion_pytorch_model.safetensors"
    trained_at = weights.stat().st_mtime_ns
    again = script.main([*argv, "--sampler", "scheduler=dpmsolver-karras", "--reuse_trained"])
    assert weights.stat().st_mtime_ns == trained_at
    timings = ("samples_per_second", "train_seconds")  # run_info.json keeps the train time to 0.1 s
    first, second = ({key: value for key, value in run["default (seed 0)"].items() if key not in timings} for run in (rows, again))
    assert first == second  # seeded judging: the same row to the last digit
    assert again["default (seed 0)"]["train_seconds"] == pytest.approx(rows["default (seed 0)"]["train_seconds"], abs=0.05)
    assert again["--snr_gamma 5, scheduler=dpmsolver-karras (seed 0)"]["fid"] != rows["--snr_gamma 5 (seed 0)"]["fid"]
