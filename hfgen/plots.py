"""The figures hfgen writes beside its models and reports: sample grids side by side, loss curves."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from matplotlib.figure import Figure

from .images import image_grid


def sample_figure(panels: dict[str, torch.Tensor], path: Path, per_panel: int = 64) -> None:
    """One sample grid per row name, side by side: panels of (N, C, H, W) images in [0, 1]."""
    figure = Figure(figsize=(3 * len(panels), 3.3), layout="constrained")
    for axis, (name, images) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels.items()):
        grid = image_grid(images[:per_panel] * 2 - 1)
        axis.imshow(grid, cmap="gray" if grid.mode == "L" else None, interpolation="nearest")
        axis.set_title(name)
        axis.set_axis_off()
    figure.savefig(path, dpi=100)


def loss_figure(logs: dict[str, Path], path: Path) -> None:
    """Every logged `*loss*` curve of each family's train_log.jsonl, one panel per family."""
    figure = Figure(figsize=(4 * len(logs), 3), layout="constrained")
    for axis, (family, log_file) in zip(figure.subplots(1, len(logs), squeeze=False)[0], logs.items()):
        records = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
        for key in sorted({k for r in records for k in r if "loss" in k}):
            points = [(r["step"], r[key]) for r in records if key in r]
            axis.plot(*zip(*points), label=key)
        axis.set_title(family)
        axis.set_xlabel("step")
        axis.legend(fontsize="small")
    figure.savefig(path, dpi=100)
