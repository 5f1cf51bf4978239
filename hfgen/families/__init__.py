"""hfgen's families, one folder each (`vae/`, `gan/`, `autoregressive/`, `diffusion/`, `latent_diffusion/`).

The registry that lists them lives in `hfgen/registry.py`, below the families, so that loading, the Hub and the
training engine can ask it without importing a family's folder; its names are re-exported here, where a family's
users look for them (`from hfgen.families import get_family`).
"""

from ..registry import (
    REGISTRY,
    Family,
    LikelihoodSettings,
    Preset,
    ZooPlan,
    ZooPrerequisite,
    families,
    family_names,
    family_of_folder,
    family_of_pipeline,
    get_family,
    pipeline_class_name,
    preset_table,
    saved_pipeline_class,
)

__all__ = [
    "REGISTRY",
    "Family",
    "LikelihoodSettings",
    "Preset",
    "ZooPlan",
    "ZooPrerequisite",
    "families",
    "family_names",
    "family_of_folder",
    "family_of_pipeline",
    "get_family",
    "pipeline_class_name",
    "preset_table",
    "saved_pipeline_class",
]
