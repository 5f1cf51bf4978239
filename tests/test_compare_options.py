"""scripts/compare_options.py runs end to end at the tiny budget, so the side-by-side tables cannot rot."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("compare_options", ROOT / "scripts" / "compare_options.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_a_training_option_and_a_sampler_get_rows_beside_the_default(extractor_cache, tmp_path, capsys):
    rows = load_script().main([
        "diffusion", "--budget", "tiny", "--variant", "--snr_gamma 5", "--sampler", "scheduler=heun",
        "--num_samples", "64", "--output_dir", str(tmp_path),
    ])
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
