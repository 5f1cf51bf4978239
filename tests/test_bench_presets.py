"""scripts/bench_presets.py runs end to end (a quick run on the CPU-sized presets), so the cost table cannot rot."""

from __future__ import annotations

import json
import math

from helpers import load_script


def test_quick_run_fills_the_table(tmp_path, capsys):
    output = tmp_path / "bench.json"
    results = load_script("bench_presets").main(
        ["--quick", "--presets", "gan-small", "diffusion-small", "--loader_workers", "0", "--output", str(output)]
    )
    assert json.loads(output.read_text()) == json.loads(json.dumps(results))
    assert results["matmul_gflop_per_s"] > 0
    rows = {row["preset"]: row for row in results["rows"]}
    assert list(rows) == ["gan-small", "diffusion-small"]
    assert rows["gan-small"]["parameters"] == 265_153 + 133_889  # generator + discriminator, as the preset records
    for row in rows.values():
        for column in ("train_images_per_s", "sample_images_per_s", "peak_mib", "gflop_per_train_image", "mfu"):
            assert math.isfinite(row[column]) and row[column] > 0, (row["preset"], column, row[column])
    # the UNet's forward is ~1/3 of a training step's FLOPs: 3 x 2 x 1.16M parameters is a floor per 8x8 image
    assert rows["diffusion-small"]["gflop_per_train_image"] > 6 * 1_163_105 / 1e9
    assert rows["diffusion-small"]["reference"]["ratio"] > 0  # the diffusers train_unconditional loop ran beside it
    assert results["loader"]["images_per_s"]["0"] > 0
    printed = capsys.readouterr().out
    assert "| gan-small | gan | 8²×1 | 399,042 |" in printed
    assert "diffusers train_unconditional.py" in printed and "--dataloader_num_workers 0" in printed
