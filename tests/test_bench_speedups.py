"""scripts/bench_speedups.py runs end to end (a quick run of one CPU-sized preset), so the throughput table cannot rot."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_bench():
    sys.path.insert(0, str(ROOT / "scripts"))  # as when run as a script: it reuses bench_presets' builders
    try:
        spec = importlib.util.spec_from_file_location("bench_speedups", ROOT / "scripts" / "bench_speedups.py")
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return bench


def test_quick_run_times_every_variant_against_eager(tmp_path, capsys):
    output = tmp_path / "speedups.json"
    results = load_bench().main([
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
