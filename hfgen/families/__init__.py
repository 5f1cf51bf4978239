"""The family registry: the one place that lists hfgen's families.

**To add a family, add a folder and one registry entry.** The folder `hfgen/families/<name>/` holds everything
that *is* the family - configs, models, pipeline(s), training objective, how `hfgen sample` drives it - and
ends with `family.py`, whose `FAMILY` (a `Family`) tells the rest of hfgen all it needs to know. The entry
below maps the family's command-line name to that module. Loading, sampling, evaluation, the zoo and the
CLI iterate this registry; none of them names a family or a pipeline class.

The list is explicit (no import side effects) and lazy: a family's module is imported only when it is used,
so `hfgen --help` or listing names imports no model code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

    from ..arguments import DataArguments
    from ..objective import Objective
    from ..sampling import SampleArguments

REGISTRY: dict[str, str] = {
    "diffusion": "hfgen.families.diffusion.family",
    "vae": "hfgen.families.vae.family",
    "gan": "hfgen.families.gan.family",
    "autoregressive": "hfgen.families.autoregressive.family",
    "latent-diffusion": "hfgen.families.latent_diffusion.family",
}
"""Command-line name -> the module whose `FAMILY` describes it, in the order tables and help list them."""


@dataclass(frozen=True)
class ZooPlan:
    """How long a family trains under one `hfgen zoo` budget, and the model flags it trains with."""

    max_steps: int
    flags: tuple[str, ...] = ()
    prerequisite: ZooPrerequisite | None = None
    """A model of another family the zoo trains first (latent diffusion's autoencoder)."""


@dataclass(frozen=True)
class ZooPrerequisite:
    """Another family's model that a family trains on top of: trained with `plan`, passed as `flag FOLDER`."""

    family: str
    flag: str
    plan: ZooPlan


@dataclass(frozen=True)
class LikelihoodSettings:
    """How held-out likelihoods are computed; each family's `likelihood_options` reads the fields it uses."""

    iwae_samples: int = 1000
    """Importance samples of an IWAE bound (the VAE)."""
    bpd_timesteps: int = 1000
    """UNet terms of a diffusion variational bound, subsampled from the noise schedule's T - 1."""
    grey_levels: int = 256
    """Grey levels of the data (17 for digits): the grid a continuous model's likelihood is discretised on, so
    every family's bits/dim counts the same outcomes."""
    test_images: int | None = None
    """Test images the bits/dim is measured on, the same seeded subset for every family (None: the whole split)."""


@dataclass(frozen=True)
class Preset:
    """A published architecture, as timm names one: a name, the model-argument values that build it, its source.

    `hfgen train <family> --preset NAME` starts from `arguments`; a --config file and command-line flags override
    them. `parameters` is the count the source gives (exact where its reference code does), per component.
    """

    name: str
    family: str
    resolution: int | None
    """Side of the images its network takes as published (latent diffusion: of the latent); None for text."""
    channels: int | None
    """Channels of those images (latent diffusion: of the latent); None for text."""
    parameters: Mapping[str, int]
    """Component -> parameter count (e.g. generator and discriminator), asserted by the tests."""
    source: str
    """Paper and table/section, or the reference code's URL."""
    arguments: Mapping[str, Any] = field(default_factory=dict)
    """Model-argument field -> value; empty: the family's defaults."""


@dataclass(frozen=True)
class Family:
    """Everything hfgen needs to know about one family, declared once in its own `family.py`."""

    name: str
    """Its name on the command line: `hfgen train <name>`."""
    summary: str
    """One line in the seed's words: what the family learns and how."""
    arguments: type
    """Dataclass of the options that build its model configs (parsed by HfArgumentParser)."""
    objective: Callable[[Any, DataArguments], Objective]
    """(arguments, data arguments) -> the training `Objective` the shared loop runs."""
    pipelines: tuple[type[DiffusionPipeline], ...]
    """The pipeline classes its folders hold (`_class_name` in model_index.json)."""
    sample: Callable[[SampleArguments], str]
    """What `hfgen sample` does with a model of this family; returns the line it prints."""
    zoo: Mapping[str, ZooPlan]
    """`hfgen zoo` budget name -> this family's plan."""
    model_types: tuple[str, ...] = ()
    """transformers `model_type`s of folders it writes without a pipeline (the text GPT)."""
    sampling_options: Callable[[DiffusionPipeline, str, int], dict[str, Any]] = field(default=lambda pipe, scheduler, steps: {})
    """(pipe, scheduler name, steps) -> extra call arguments for evaluation; may configure the pipe."""
    likelihood_options: Callable[[LikelihoodSettings], dict[str, Any]] = field(default=lambda settings: {})
    """How held-out likelihoods are computed (`--iwae_samples`, `--bpd_timesteps`, the data's grey levels) ->
    keyword arguments of the pipeline's `log_likelihood`; exact likelihoods ignore them."""
    zoo_rows: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    """Extra rows of the zoo table for one trained model: row label -> pipeline call options (e.g. the VAE's
    decoder mean and decoder sample). Empty: one row, named after the family."""
    card_folder: Path | None = None
    """Its folder of model-card texts, rendered into `model_cards/model_card.md`: `card.md` (the family in the
    seed's words: latent space, encoder, generator/decoder, loss; how it learns, what it is good for) and
    `card_usage.md` (a Jinja fragment: how to use a model, given `model_id` and `pipeline_class`). None: no card."""
    demo: str | None = None
    """"module:function" building its Gradio Space for a model path or repo id (imported only by `hfgen demo`)."""

    presets: tuple[Preset, ...] = ()
    """Its named published architectures (`presets.py` in its folder); the first is its CPU-sized defaults."""

    def preset(self, name: str) -> Preset:
        """The preset called `name`."""
        for preset in self.presets:
            if preset.name == name:
                return preset
        raise ValueError(f"Unknown preset {name!r} for {self.name}: use one of {', '.join(p.name for p in self.presets)}.")

    @property
    def card_text(self) -> str:
        return (self.card_folder / "card.md").read_text() if self.card_folder else ""

    @property
    def card_usage(self) -> str:
        return (self.card_folder / "card_usage.md").read_text() if self.card_folder else ""


def family_names() -> list[str]:
    """Every registered family's command-line name, without importing any of them."""
    return list(REGISTRY)


def get_family(name: str) -> Family:
    """The registered family called `name` (its module imported now, not before)."""
    if name not in REGISTRY:
        raise ValueError(f"Unknown family {name!r}: use one of {', '.join(REGISTRY)}.")
    return importlib.import_module(REGISTRY[name]).FAMILY


def families() -> Iterator[Family]:
    """Every registered family, imported as the iteration reaches it."""
    return (get_family(name) for name in REGISTRY)


def preset_table() -> str:
    """Every family's presets as a markdown table (what `hfgen presets` prints)."""
    rows = ["| preset | family | resolution | channels | parameters | source |", "| --- | --- | --- | --- | --- | --- |"]
    for preset in (preset for family in families() for preset in family.presets):
        parameters = ", ".join(f"{component} {count:,}" for component, count in preset.parameters.items())
        shape = [str(value) if value else "-" for value in (preset.resolution, preset.channels)]
        rows.append(f"| {preset.name} | {preset.family} | {shape[0]} | {shape[1]} | {parameters} | {preset.source} |")
    return "\n".join(rows)


def family_of_pipeline(pipeline: DiffusionPipeline | str) -> Family:
    """The family whose pipelines include `pipeline` (an instance or a `_class_name`)."""
    class_name = pipeline if isinstance(pipeline, str) else type(pipeline).__name__
    for family in families():
        if any(cls.__name__ == class_name for cls in family.pipelines):
            return family
    known = [cls.__name__ for family in families() for cls in family.pipelines]
    raise ValueError(f"hfgen provides no {class_name!r} pipeline: expected one of {', '.join(known)}.")


def pipeline_class_name(index: Mapping[str, Any]) -> str:
    """The pipeline class a model_index.json names; `_class_name` may be diffusers' remote-code ["module", "Class"]."""
    class_name = index.get("_class_name")
    return str(class_name[-1] if isinstance(class_name, list) else class_name)


def saved_pipeline_class(index: Mapping[str, Any]) -> type[DiffusionPipeline]:
    """The hfgen pipeline class a model_index.json names."""
    class_name = pipeline_class_name(index)
    return next(cls for cls in family_of_pipeline(class_name).pipelines if cls.__name__ == class_name)


def family_of_folder(index: Mapping[str, Any] | None, config: Mapping[str, Any] | None) -> Family:
    """The family of a saved model, from its model_index.json (pipelines) or config.json (transformers models)."""
    if index is not None:
        return family_of_pipeline(pipeline_class_name(index))
    model_type = (config or {}).get("model_type")
    for family in families():
        if model_type in family.model_types:
            return family
    raise ValueError(f"hfgen has no family for a model of type {model_type!r}: pass a folder written by `hfgen train`.")
