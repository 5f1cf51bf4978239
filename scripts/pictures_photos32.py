"""A short run of every family at 32x32 RGB: what a user sees before spending GPU hours.

Each family trains for a few minutes of CPU on the built-in `photos32` (crops of scikit-learn's two sample photos),
with its default model, then samples 16 images from one seed. The grids go side by side with real test images
into `<docs_dir>/samples.png`, each family's own grid beside it, and the train and sampling seconds into
`<docs_dir>/runs.json`.

    python scripts/pictures_photos32.py --output_dir out/photos32 --docs_dir docs/photos32
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from hfgen.cli import main as hfgen
from hfgen.data import images_to_tensor, load_image_dataset
from hfgen.families import get_family
from hfgen.images import save_image_grid
from hfgen.loading import load_pipeline
from hfgen.plots import sample_figure

COMMON = ["--dataset", "photos32", "--seed", "0", "--train_batch_size", "32", "--num_grid_images", "16",
          "--logging_steps", "50", "--lr_warmup_steps", "100", "--overwrite_output_dir"]
RUNS: dict[str, tuple[int, list[str]]] = {
    "diffusion": (500, []),
    "vae": (500, []),
    "gan": (1000, []),
    "autoregressive": (10, ["--modality", "pixels", "--validation_max_examples", "16", "--train_batch_size", "16"]),
    "latent-diffusion-vae": (400, ["--spatial_latent", "--block_out_channels", "32", "--latent_channels", "2", "--beta", "0.1"]),
    "latent-diffusion": (500, []),
}
"""Run -> (steps, flags), sized for about 20 minutes of a 2-core CPU in all (diffusion's default UNet at 32 px trains
1.8 steps/s; the pixel GPT's 3,072 tokens an image allow only 10 steps of 16). `latent-diffusion-vae` is the VAE
family's spatial autoencoder that latent diffusion trains on."""


def train(name: str, steps: int, flags: list[str], output_dir: Path) -> float:
    """`hfgen train` one run into `output_dir/name`; returns its wall seconds."""
    family = "vae" if name == "latent-diffusion-vae" else name
    extra = ["--vae", str(output_dir / "latent-diffusion-vae")] if name == "latent-diffusion" else []
    argv = ["train", family, *COMMON, "--max_steps", str(steps), "--sample_steps", str(steps),
            "--checkpointing_steps", str(steps), "--output_dir", str(output_dir / name), *flags, *extra]
    started = time.perf_counter()
    if hfgen(argv) != 0:
        raise SystemExit(f"hfgen {' '.join(argv)} failed")
    return time.perf_counter() - started


def samples(name: str, folder: Path) -> torch.Tensor:
    """16 images from seed 0, (16, 3, 32, 32) in [0, 1]; step-by-step samplers as the zoo runs them."""
    pipe = load_pipeline(str(folder))
    pipe.set_progress_bar_config(disable=True)
    options = get_family(name).sampling_options(pipe, "dpmsolver", 20)
    return pipe(batch_size=16, generator=torch.Generator().manual_seed(0), output_type="pt", **options).images


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", type=Path, default=Path("out/photos32"))
    parser.add_argument("--docs_dir", type=Path, default=Path("docs/photos32"))
    parser.add_argument("--max_steps", type=int, default=None, help="Train every run this many steps (a smoke test).")
    args = parser.parse_args()
    runs = {name: (args.max_steps or steps, flags) for name, (steps, flags) in RUNS.items()}
    seconds = {name: round(train(name, steps, flags, args.output_dir), 1) for name, (steps, flags) in runs.items()}
    test = load_image_dataset("photos32", "test")
    mixed = [test[index]["image"] for index in range(0, len(test), max(1, len(test) // 16))][:16]  # both photos
    panels = {"real test images": (images_to_tensor(mixed, 32, 3) + 1) / 2}
    for name in (name for name in runs if name != "latent-diffusion-vae"):
        started = time.perf_counter()
        panels[name] = samples(name, args.output_dir / name)
        seconds[f"{name}: sampling 16 images"] = round(time.perf_counter() - started, 1)
    args.docs_dir.mkdir(parents=True, exist_ok=True)
    sample_figure(panels, args.docs_dir / "samples.png", per_panel=16)
    for name, images in panels.items():
        save_image_grid(images * 2 - 1, args.docs_dir / f"{name.replace(' ', '-')}.png", cols=4)
    record = {"common": COMMON, "runs": {name: {"steps": s, "flags": f} for name, (s, f) in runs.items()}, "seconds": seconds}
    (args.docs_dir / "runs.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(seconds, indent=2))


if __name__ == "__main__":
    run()
