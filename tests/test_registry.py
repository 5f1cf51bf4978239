"""The family registry: every registered family works end to end, and nothing outside it names a family.

A new family is covered here by being registered: `hfgen zoo --budget tiny` trains it through the CLI with its
own tiny plan, then each test below loads, samples and checks it.
"""

from __future__ import annotations

import ast
import importlib
import json
import math
from pathlib import Path

import pytest

import hfgen
from hfgen.cli import main
from hfgen.zoo.run import table_rows
from hfgen.families import REGISTRY, families, family_names, family_of_pipeline, get_family
from hfgen.loading import family_of_model, load_pipeline

PACKAGE = Path(hfgen.__file__).parent

FROZEN_COMPONENTS = {
    "diffusion": {"unet": ["diffusers", "UNet2DModel"]},
    "vae": {"vae": ["hfgen.families.vae.modeling_vae", "VAEModel"]},
    "gan": {"gan_generator": ["hfgen.families.gan.modeling_gan", "GANGenerator"],
            "discriminator": ["hfgen.families.gan.modeling_gan", "GANDiscriminator"]},
    "autoregressive": {"model": ["hfgen.families.autoregressive.modeling_hfgen_gpt", "HfgenGPTForCausalLM"]},
    "latent-diffusion": {"vae": ["hfgen.families.vae.modeling_vae", "VAEModel"], "unet": ["diffusers", "UNet2DModel"]},
}
"""Module paths that saved folders name: public API once models are published - they must not move."""


@pytest.mark.parametrize("name", family_names())
def test_every_family_trains_loads_samples_and_is_evaluated(name, tiny_zoo, tmp_path, capsys):
    family = get_family(name)
    folder = tiny_zoo / "models" / name
    assert family_of_model(str(folder)) is family

    pipe = load_pipeline(str(folder))
    assert type(pipe) in family.pipelines and family_of_pipeline(pipe) is family
    assert main(["sample", str(folder), "--num_images", "4", "--output", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").stat().st_size > 0 and "wrote" in capsys.readouterr().out

    rows = json.loads((tiny_zoo / "metrics.json").read_text())["rows"]
    for row_name in table_rows(name):  # the family's row, or each of the rows it declares (`Family.zoo_rows`)
        row = rows[row_name]
        assert math.isfinite(row["fid"]) and row["samples_per_second"] > 0 and row["parameters"] > 0
        assert (row.get("bits_per_dim") is not None) == callable(getattr(pipe, "log_likelihood", None))


@pytest.mark.parametrize("name", family_names())
def test_saved_folders_load_through_exactly_the_names_they_hold(name, tiny_zoo):
    """model_index.json names each component's module and class; importing exactly those must keep working."""
    folder = tiny_zoo / "models" / name
    index = json.loads((folder / "model_index.json").read_text())
    components = {key: value for key, value in index.items() if isinstance(value, list) and value[0] is not None}
    if name in FROZEN_COMPONENTS:
        assert {k: v for k, v in components.items() if k in FROZEN_COMPONENTS[name]} == FROZEN_COMPONENTS[name]
    for component, (library, class_name) in components.items():
        component_class = getattr(importlib.import_module(library), class_name)
        if hasattr(component_class, "from_pretrained"):
            assert component_class.from_pretrained(folder / component) is not None
    assert index["_class_name"] in {cls.__name__ for cls in get_family(name).pipelines}


def test_family_descriptors_are_complete():
    assert list(REGISTRY) == family_names()
    for family in families():
        assert family.name in REGISTRY and family.summary and family.pipelines
        assert {"tiny", "laptop", "cpu", "full"} <= set(family.zoo), family.name
        assert REGISTRY[family.name] == f"hfgen.families.{family.name.replace('-', '_')}.family"


def string_constants(path: Path) -> set[str]:
    return {node.value for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_no_code_outside_the_families_names_a_family_or_a_pipeline():
    """The generic machinery asks the registry: no string equal to a family or pipeline class name outside
    `hfgen/families/<name>/`, the registry and the public API's lazy index (`hfgen/__init__.py`)."""
    names = set(family_names()) | {cls.__name__ for family in families() for cls in family.pipelines}
    allowed = {PACKAGE / "__init__.py", PACKAGE / "families" / "__init__.py"}
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(found)
        for path in PACKAGE.rglob("*.py")
        if path not in allowed and "families" not in path.relative_to(PACKAGE).parts
        for found in [string_constants(path) & names]
        if found
    }
    assert offenders == {}


def test_public_api_is_lazy_and_unchanged():
    """`import hfgen` loads no model code; every public name still resolves, to the class in its family folder."""
    import subprocess
    import sys

    probe = "import sys, hfgen; print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    for name in hfgen.__all__:
        value = getattr(hfgen, name)
        if name != "__version__":
            assert value.__module__.startswith("hfgen.families."), (name, value.__module__)
