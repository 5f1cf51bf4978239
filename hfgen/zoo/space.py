"""The zoo Space: the seed's comparison table, live - every family from one seed, side by side, timed on the spot,
next to the metrics `hfgen zoo` measured (its metrics.json)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from huggingface_hub import snapshot_download

from ..evaluation.evaluator import COLUMNS, format_value
from ..families import family_names, get_family
from ..loading import load_pipeline
from ..widgets import grid, header, image_output, seed_input, seeded, user_errors
from .run import table_rows

MAX_IMAGES = 16
SAMPLER, STEPS = "dpmsolver", 20
"""What step-by-step samplers use here: the zoo report's own default."""


def zoo_folder(model: str) -> Path:
    """A local `hfgen zoo` output folder, or a Hub repo holding one (metrics.json + models/<family>/)."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        folder = Path(snapshot_download(model, allow_patterns=["metrics.json", "models/*/**"]))
    if not (folder / "models").is_dir():
        raise FileNotFoundError(f"{model!r} has no models/ folder: pass the --output_dir of `hfgen zoo`.")
    return folder


def table(metrics: dict[str, dict[str, Any]], timings: dict[str, float]) -> pd.DataFrame:
    """One row per family: the time per image measured now, then the report's metrics, formatted as in its README."""
    keys = [key for key in COLUMNS if any(key in row for row in metrics.values())]
    rows = []
    for family, seconds in timings.items():
        row = metrics.get(next(iter(table_rows(family))), {})  # the family's first (default) row
        formatted = {COLUMNS[key]: format_value(key, row.get(key)) for key in keys}
        rows.append({"family": family, "ms/image (now)": f"{seconds * 1000:.3g}"} | formatted)
    return pd.DataFrame(rows)


def build_demo(model: str) -> gr.Blocks:
    folder = zoo_folder(model)
    report = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else {}
    metrics = report.get("rows", {})
    pipes = {}
    for name in family_names():
        path = folder / "models" / name
        if (path / "model_index.json").is_file():  # image pipelines: the families the zoo trains and compares
            pipe = load_pipeline(str(path))
            pipe.set_progress_bar_config(disable=True)
            options = get_family(name).sampling_options(pipe, SAMPLER, STEPS)
            pipes[name] = (pipe, options)
    if not pipes:
        raise FileNotFoundError(f"No trained models under {folder / 'models'}: run `hfgen zoo` first.")

    @user_errors
    def compare(seed: int, num_images: int) -> list[Any]:
        panels, timings = [], {}
        for name, (pipe, options) in pipes.items():
            started = time.perf_counter()
            images = pipe(batch_size=int(num_images), generator=seeded(seed), output_type="pt", **options).images
            timings[name] = (time.perf_counter() - started) / int(num_images)
            panels.append(grid(images))
        return [*panels, table(metrics, timings)]

    with gr.Blocks(title="hfgen zoo") as demo:
        header(
            f"The hfgen zoo: {len(pipes)} ways to learn P(X)",
            model,
            f"Every family trained on the same data ({report.get('dataset', 'see the report')}, budget "
            f"`{report.get('budget', '?')}`) and sampled here from the same seed. The table puts the time per image, "
            "measured now on this machine, next to the metrics the zoo report measured with one shared evaluator "
            f"in the features of {report.get('judge', {}).get('title', 'its judge')} "
            "(FID/KID: lower is better; precision: quality; recall: coverage; bits/dim: exact or bounded likelihood).",
        )
        with gr.Row():
            seed = seed_input()
            num_images = gr.Slider(1, MAX_IMAGES, value=9, step=1, label="images per family")
            button = gr.Button("Sample every family", variant="primary")
        with gr.Row():
            panels = [image_output(f"{name}: {get_family(name).summary.split(':')[0]}", height=None) for name in pipes]
        results = gr.Dataframe(label="time per image now, next to the zoo report's metrics", interactive=False)
        # One at a time: the pipelines are shared and a scheduler keeps per-run state; timings stay honest too.
        button.click(compare, [seed, num_images], [*panels, results], api_name="compare", concurrency_limit=1)
    return demo

