"""Remote code (hfgen/hub/remote_code.py): every family's folder exports to diffusers' remote-code layout, generated
from the package's current modules, and hfgen itself keeps loading its own classes - without running that code.

Loading the export where hfgen is *not* importable, from a Hub repo, is tested end to end in test_hub.py.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import sys

import pytest
import torch
from diffusers import DiffusionPipeline

from hfgen.families import family_names, get_family
from hfgen.hub.remote_code import export_remote_code
from hfgen.loading import load_pipeline

FAMILIES = family_names()


def exported_code(folder, index) -> dict[str, str]:
    """Relative path -> text of every module the exported model_index.json names."""
    paths = [f"{index['_class_name'][0]}.py"]
    paths += [f"{name}/{spec[0]}.py" for name, spec in index.items() if isinstance(spec, list) and (folder / name / f"{spec[0]}.py").is_file()]
    return {path: (folder / path).read_text() for path in paths}


@pytest.mark.parametrize("name", FAMILIES)
def test_export_is_self_contained_and_generated_from_current_modules(name, tiny_zoo, tmp_path):
    folder = tiny_zoo / "models" / name
    index = export_remote_code(folder, tmp_path)
    pipe = load_pipeline(str(folder))
    module, class_name = index["_class_name"]
    assert class_name == type(pipe).__name__
    files = exported_code(tmp_path, index)
    assert f"{module}.py" in files
    for path, text in files.items():
        # named by the hash of its text: two repos never share a module name for different code
        assert path.removesuffix(".py").endswith(hashlib.sha256(text.encode()).hexdigest()[:10]), path
        for node in ast.walk(ast.parse(text)):  # diffusers fetches only this file: no hfgen, no sibling imports
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0 and not node.module.startswith("hfgen"), (path, ast.unparse(node))
            if isinstance(node, ast.Import):
                assert not any(alias.name.startswith("hfgen") for alias in node.names), (path, ast.unparse(node))
    assert inspect.getsource(type(pipe)) in files[f"{module}.py"]
    for component, spec in index.items():
        if isinstance(spec, list) and f"{component}/{spec[0]}.py" in files:
            text = files[f"{component}/{spec[0]}.py"]
            assert inspect.getsource(type(getattr(pipe, component))) in text
            auto_map = json.loads((tmp_path / component / "config.json").read_text())["auto_map"]
            assert f"{spec[0]}.{spec[1]}" in auto_map.values()  # transformers' Auto classes load it from the same file,
            assert (tmp_path / f"{spec[0]}.py").read_text() == text  # which sits at the root too, where they look

def test_export_follows_the_source_it_is_generated_from(tiny_zoo, tmp_path, monkeypatch):
    """Changing hfgen's code changes the exported code - and its module name - on the next export."""
    folder = tiny_zoo / "models" / "gan"
    before = export_remote_code(folder, tmp_path / "before")
    module = sys.modules[type(load_pipeline(str(folder))).__module__]
    getsource = inspect.getsource
    monkeypatch.setattr(inspect, "getsource", lambda obj: getsource(obj) + ("\nEDITED = 1\n" if obj is module else ""))
    after = export_remote_code(folder, tmp_path / "after")
    assert after["_class_name"] != before["_class_name"]
    assert "EDITED = 1" in (tmp_path / "after" / f"{after['_class_name'][0]}.py").read_text()
    assert after["gan_generator"] == before["gan_generator"]  # the component's modules did not change


@pytest.mark.parametrize("name", FAMILIES)
def test_hfgen_loads_its_own_classes_from_both_layouts(name, tiny_zoo, tmp_path):
    folder = tiny_zoo / "models" / name
    export_remote_code(folder, tmp_path)
    family_class = type(load_pipeline(str(folder)))
    # with hfgen imported, the generic diffusers entry point finds hfgen's class for a folder hfgen saved
    assert type(DiffusionPipeline.from_pretrained(str(folder))) is family_class
    # an exported folder loads with hfgen's installed classes: the same samples, and its code never runs
    loaded = family_class.from_pretrained(str(tmp_path))
    assert type(loaded) is family_class
    assert not [m for m in sys.modules if m.startswith("diffusers_modules") and "_hfgen_" in m]

    def sample(pipe):
        options = get_family(name).sampling_options(pipe, "ddim", 2)
        return pipe(batch_size=2, generator=torch.Generator().manual_seed(0), output_type="pt", **options).images

    torch.testing.assert_close(sample(loaded), sample(load_pipeline(str(folder))), rtol=0, atol=0)
    # plain diffusers runs the exported code only when told to
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        DiffusionPipeline.from_pretrained(str(tmp_path))
