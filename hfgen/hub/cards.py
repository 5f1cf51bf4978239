"""Model cards filled from the real run, rendered by `huggingface_hub.ModelCard.from_template`.

`hfgen train` writes the card at the end of training (no metrics yet); `hfgen evaluate --update_card` saves the
results beside it (`eval_results.json`) and renders it again with a `model-index`. Everything the card says is
read from the folder: the configs and weights (architecture, parameter count), training_args.json and
run_info.json (data, arguments, steps, time, hardware), train_log.jsonl (the loss curve) and samples.png.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from safetensors import safe_open

from ..families import Family, get_family
from ..plots import loss_figure
from ..registration import auto_class_of, hub_components
from ..training.trainer import LOG_FILE, RUN_INFO_FILE, SAMPLE_GRID_FILE, TRAINING_ARGS_FILE

CARD_FILE = "README.md"
EVAL_RESULTS_FILE = "eval_results.json"
"""What `hfgen evaluate --update_card` saved: the dict `evaluate` returns."""
LOSS_CURVE_FILE = "loss_curve.png"
TEMPLATE = Path(__file__).resolve().parents[2] / "model_cards" / "model_card.md"
"""The one Jinja template every family's card is rendered from; a family's own texts come from its folder."""

METRICS = {  # evaluate's key -> (model-index metric type, display name); sample metrics get the judge's name too
    "fid": ("fid", "FID∞"),  # extrapolated to infinitely many samples (Chong & Forsyth 2020)
    "kid": ("kid", "KID"),
    "precision": ("precision", "precision"),
    "recall": ("recall", "recall"),
    "bits_per_dim": ("bits_per_dim", "bits/dim"),
}
PIPELINE_TAGS = {"pixels": "unconditional-image-generation", "text": "text-generation"}
CONFIG_BOOKKEEPING = {"architectures", "dtype", "transformers_version", "auto_map", "model_type"}
HUB_DATASETS = {"fashion_mnist": "zalando-datasets/fashion_mnist"}
"""hfgen dataset name -> its Hub dataset id (for the card's `datasets`); Hub ids pass through, built-ins have none."""


def parameter_counts(folder: Path) -> dict[str, int]:
    """Parameters per component folder, read from the safetensors headers (no weights are loaded)."""
    counts: dict[str, int] = {}
    for file in sorted(Path(folder).rglob("*.safetensors")):
        if "checkpoints" in file.relative_to(folder).parts:
            continue
        component = file.parent.relative_to(folder).as_posix()
        with safe_open(file, "pt") as weights:
            total = sum(_numel(weights.get_slice(key).get_shape()) for key in weights.keys())
        counts[component] = counts.get(component, 0) + total
    return counts


def _numel(shape: list[int]) -> int:
    size = 1
    for dim in shape:
        size *= dim
    return size


JUDGED = {"fid", "kid", "precision", "recall"}
"""The metrics measured in a judge's features: their model-index type names the judge (`fid-dinov2`), so no Hub
reader or leaderboard compares numbers of two judges; bits/dim needs none."""


def judge_of(results: dict[str, Any]) -> dict[str, Any]:
    """The judge of saved results; results saved before judges had names were all the classifier's."""
    if "judge" in results:
        return results["judge"]
    extractor = results.get("feature_extractor") or {}
    dataset, seed = extractor.get("dataset", results["dataset"]), extractor.get("seed")
    return {"name": "classifier", "title": f"hfgen CNN trained on {dataset} (classifier, seed {seed})", **extractor}


def eval_results(results: dict[str, Any], model_name: str, pipeline_tag: str) -> list[EvalResult]:
    """`hfgen evaluate`'s results as the card's model-index: plain floats (a numpy float makes the card unreadable)."""
    judge = judge_of(results)
    config = {"num_samples": int(results["num_samples"]), "seed": int(results["seed"]), "judge": judge["title"]}
    return [
        EvalResult(
            task_type=pipeline_tag, dataset_type=results["dataset"], dataset_name=results["dataset"], dataset_split="test",
            metric_type=f"{metric_type}-{judge['name']}" if key in JUDGED else metric_type,
            metric_name=f"{name} ({judge['name']})" if key in JUDGED else name,
            metric_value=float(value), metric_args=config,
        )
        for key, (metric_type, name) in METRICS.items()
        if (value := results["metrics"].get(key)) is not None
    ]


def render_card(folder: Path, repo_id: str | None = None) -> ModelCard:
    """The card of a trained folder, from its files; `repo_id` names it in the how-to-use snippets."""
    folder = Path(folder)
    arguments = json.loads((folder / TRAINING_ARGS_FILE).read_text())
    family: Family = get_family(arguments["family"])
    run_info = json.loads((folder / RUN_INFO_FILE).read_text()) if (folder / RUN_INFO_FILE).is_file() else {}
    dataset = arguments["data"]["dataset"]
    index = json.loads((folder / "model_index.json").read_text()) if (folder / "model_index.json").is_file() else None
    modality = "pixels" if index is not None else "text"  # what was trained, not the flag ("auto")
    pipeline_tag = PIPELINE_TAGS[modality]
    model_id = repo_id or f"<owner>/{folder.name}"
    results = json.loads((folder / EVAL_RESULTS_FILE).read_text()) if (folder / EVAL_RESULTS_FILE).is_file() else None
    library = "diffusers" if index is not None else "transformers"
    card_data = ModelCardData(
        model_name=model_id,
        library_name=library,
        license="apache-2.0",
        tags=["hfgen", family.name, dataset, library, pipeline_tag, "generative-model"],
        datasets=[HUB_DATASETS.get(dataset, dataset)] if "/" in HUB_DATASETS.get(dataset, dataset) else None,
        pipeline_tag=pipeline_tag,
        eval_results=eval_results(results, model_id, pipeline_tag) if results else None,
    )
    log, curve = folder / LOG_FILE, folder / LOSS_CURVE_FILE
    if log.is_file() and (not curve.is_file() or curve.stat().st_mtime < log.stat().st_mtime):
        loss_figure({family.name: log}, curve)
    counts = parameter_counts(folder)
    pipeline_class = index["_class_name"] if index is not None else None
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_id=model_id,
        family=family,
        usage=jinja2.Template(family.card_usage).render(model_id=model_id, pipeline_class=pipeline_class),
        pipeline_class=pipeline_class,
        # component -> the transformers Auto class that loads it from the pushed repo's code (hub/remote_code.py)
        remote_components={name: auto_class_of(cls) for name, cls in hub_components(index or {}).items()},
        parameters=counts,
        total_parameters=sum(counts.values()),
        model_config=_component_configs(folder),
        dataset=dataset,
        modality=modality,
        model_arguments=arguments["model"],
        training=arguments["training"],
        run=run_info,
        samples=SAMPLE_GRID_FILE if (folder / SAMPLE_GRID_FILE).is_file() else None,
        loss_curve=LOSS_CURVE_FILE if (folder / LOSS_CURVE_FILE).is_file() else None,
        results=results,
        judge=judge_of(results) if results else None,
        metric_names=METRICS,
    )


def _component_configs(folder: Path) -> dict[str, dict[str, Any]]:
    """Each component's config.json (its architecture), without bookkeeping keys."""
    return {
        file.parent.relative_to(folder).as_posix() or ".": {
            k: v for k, v in json.loads(file.read_text()).items() if not k.startswith("_") and k not in CONFIG_BOOKKEEPING
        }
        for file in sorted(folder.rglob("config.json"))
        if "checkpoints" not in file.relative_to(folder).parts
    }


def has_card(folder: Path) -> bool:
    """Whether the family that trained `folder` has card texts (a family added without them still trains)."""
    arguments = Path(folder) / TRAINING_ARGS_FILE
    return arguments.is_file() and get_family(json.loads(arguments.read_text())["family"]).card_folder is not None


def write_card(folder: Path, repo_id: str | None = None) -> Path | None:
    """Render the card of `folder` into `folder/README.md` (beside its sample grid and loss curve); None when
    its family has no card texts."""
    if not has_card(folder):
        return None
    path = Path(folder) / CARD_FILE
    render_card(folder, repo_id).save(path)
    return path


def update_card(folder: Path, results: dict[str, Any]) -> Path | None:
    """Save `hfgen evaluate`'s results beside the card and render it again with the model-index."""
    folder = Path(folder)
    if not (folder / TRAINING_ARGS_FILE).is_file():
        raise ValueError(f"--update_card needs the local folder written by `hfgen train`; {str(folder)!r} has no {TRAINING_ARGS_FILE}.")
    (folder / EVAL_RESULTS_FILE).write_text(json.dumps(results, indent=2))
    return write_card(folder)
