"""scripts/bench_speedups.py runs end to end (a quick run of one CPU-sized preset), so the throughput table cannot rot."""

from __future__ import annotations

import json
import math

from helpers import load_script


def test_quick_run_times_every_variant_against_eager(tmp_path, capsys):
    output = tmp_path / "speedups.json"
    results = load_script("bench_speedups").main([
        "--presets", "gan-small", "--rounds", "1", "--steps", "1", "--batch_size", "8", "--compile_backend", "aot_eager",
        "--output", str(output),
    ])
    assert json.loads(output.read_text()) == json.loads(json.dumps(results))
    row, = results["rows"]
    assert row["preset"] == "gan-small" and list(row["variants"]) == ["eager", "channels_last", "compile", "compile + channels_last"]
    assert row["variants"]["eager"]["ratio"] == 1.0
    for variant in row["variants"].values():
        assert math.isfinite(variant["train_images_per_s"]) and variant["train_images_per_s"] > 0 and variant["ratio"] > 0
    assert row["variants"]["compile"]["compile_seconds"] > 0  # tracing the graphs costs time, counted
    assert "| gan-small | gan | 8²×1 |" in capsys.readouterr().out
