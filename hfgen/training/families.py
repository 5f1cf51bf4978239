"""The registry of families: name -> (model-building arguments dataclass, objective class)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .arguments import DataArguments
from .objective import Objective

# Imported lazily so `hfgen train diffusion` does not import every family.
FAMILY_MODULES = {
    "diffusion": "hfgen.training.objectives.diffusion",
    "vae": "hfgen.training.objectives.vae",
    "gan": "hfgen.training.objectives.gan",
    "autoregressive": "hfgen.training.objectives.autoregressive",
}


@dataclass(frozen=True)
class Family:
    name: str
    arguments: type
    """A dataclass of the options that build the family's model configs (parsed by HfArgumentParser)."""
    objective: Callable[[Any, DataArguments], Objective]


def get_family(name: str) -> Family:
    if name not in FAMILY_MODULES:
        raise ValueError(f"Unknown family {name!r}: use one of {', '.join(FAMILY_MODULES)}.")
    return importlib.import_module(FAMILY_MODULES[name]).FAMILY
