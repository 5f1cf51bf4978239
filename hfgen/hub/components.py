"""Let diffusers download pipelines whose components are hfgen classes.

A pipeline's model_index.json names each component's library by module path, e.g.
`["hfgen.families.vae.modeling_vae", "VAEModel"]` (diffusers' `save_pretrained` writes the full path of a
class defined outside its known libraries). From a local folder diffusers loads such a component when the
module is already imported (`_get_library_or_raise`), but before it *downloads* a repo,
`_get_custom_components_and_folders` accepts only libraries listed in `LOADABLE_CLASSES` (or a custom `.py`
file in the repo) and refuses the rest. Listing hfgen's component modules there - as each family package
registers its configs with `AutoConfig` - makes a Hub repo id load exactly like the folder it was pushed from.
"""

from __future__ import annotations

from diffusers.pipelines.pipeline_loading_utils import LOADABLE_CLASSES


def register_hub_components(*component_classes: type) -> None:
    """Declare the modules of `component_classes` as libraries diffusers may load pipeline components from.

    The entry holds no base classes: saving and loading still find `ModelMixin` / `PreTrainedModel` through
    diffusers' own libraries; only the download check reads this key.
    """
    for component_class in component_classes:
        LOADABLE_CLASSES.setdefault(component_class.__module__, {})
