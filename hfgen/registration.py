"""Make hfgen's classes findable by diffusers' loaders, as each family package registers its configs with `AutoConfig`.

A pipeline's model_index.json names each component's library by module path, e.g.
`["hfgen.families.vae.modeling_vae", "VAEModel"]` (diffusers' `save_pretrained` writes the full path of a
class defined outside its known libraries). From a local folder diffusers loads such a component when the
module is already imported (`_get_library_or_raise`), but before it *downloads* a repo,
`_get_custom_components_and_folders` accepts only libraries listed in `LOADABLE_CLASSES` (or a custom `.py`
file in the repo) and refuses the rest. Listing hfgen's component modules there makes a Hub repo id load exactly
like the folder it was pushed from. The pipeline class itself is looked up by name on the `diffusers` module
(`DiffusionPipeline.from_pretrained` reads `_class_name`), so hfgen's pipelines are set there too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import diffusers
from diffusers.pipelines.pipeline_loading_utils import LOADABLE_CLASSES

_COMPONENTS: dict[str, type] = {}
"""Class name -> hfgen component class, for reading exported model_index.json files back (see remote_code.py)."""
_AUTO_CLASSES: dict[type, str] = {}
"""Component class -> the transformers Auto class an exported repo maps it to (default `AutoModel`)."""


def register_hub_components(*component_classes: type, auto_classes: dict[type, str] | None = None) -> None:
    """Declare the modules of `component_classes` as libraries diffusers may load pipeline components from.

    The entry holds no base classes: saving and loading still find `ModelMixin` / `PreTrainedModel` through
    diffusers' own libraries; only the download check reads this key. `auto_classes` names another Auto class
    than `AutoModel` for a component: transformers maps one config class to one class per Auto class.
    """
    for component_class in component_classes:
        LOADABLE_CLASSES.setdefault(component_class.__module__, {})
        _COMPONENTS[component_class.__name__] = component_class
    _AUTO_CLASSES.update(auto_classes or {})


def register_pipelines(*pipeline_classes: type) -> None:
    """Let `DiffusionPipeline.from_pretrained(folder)` find hfgen's pipelines by the name model_index.json gives."""
    for pipeline_class in pipeline_classes:
        if getattr(diffusers, pipeline_class.__name__, pipeline_class) is not pipeline_class:
            raise RuntimeError(f"diffusers already has a {pipeline_class.__name__}: hfgen cannot register its own under that name.")
        setattr(diffusers, pipeline_class.__name__, pipeline_class)


def auto_class_of(component_class: type) -> str:
    """The transformers Auto class that loads `component_class` from an exported repo."""
    return _AUTO_CLASSES.get(component_class, "AutoModel")


def hub_components(index: Mapping[str, Any]) -> dict[str, type]:
    """Component name -> registered hfgen class, for the components of a model_index.json (as hfgen saves it, or
    exported with remote code) that are hfgen's own; diffusers' and transformers' components are left out."""
    classes = {name: _COMPONENTS.get(spec[1]) for name, spec in index.items() if isinstance(spec, list) and not name.startswith("_")}
    return {name: component_class for name, component_class in classes.items() if component_class is not None}
