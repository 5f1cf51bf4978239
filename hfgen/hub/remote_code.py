"""Export a pipeline folder to diffusers' remote-code layout: plain diffusers loads it with `trust_remote_code=True`.

Measured on diffusers 0.42: `model_index.json` names a custom pipeline as `"_class_name": ["<module>", "<Class>"]`
with `<module>.py` at the repo root, and a custom component as `["<module>", "<Class>"]` with `<module>.py` in the
component's folder. From a repo it downloads only those files - never what they import - and runs every one of them
in one namespace (`diffusers_modules.local`). So each file is generated self-contained, from hfgen's current
modules at export time (the class's module with the hfgen modules it imports inlined, dependencies first), and is
named by a hash of its text: two repos with different code never collide, two with the same code share it.
Custom components also get a `config.json` `auto_map` naming the same file (copied to the repo root, where
transformers looks for it even when loading a subfolder), so transformers' `AutoModel` loads them the same way.
The code holds no weights; they stay in safetensors. `hfgen.loading` reads an export back with hfgen's own classes.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from ..families import family_of_folder, saved_pipeline_class
from ..pipeline_base import HfgenPipeline
from ..registration import auto_class_of, hub_components

PACKAGE = "hfgen"
FUTURE_ANNOTATIONS = "from __future__ import annotations"


def _is_internal(node: ast.ImportFrom) -> bool:
    return node.level > 0 or (node.module or "").split(".")[0] == PACKAGE


def _internal_imports(module: ModuleType) -> list[tuple[ast.ImportFrom, list[tuple[str, str, Any]]]]:
    """Each top-level `from hfgen... import` of `module`: the node and its (name, alias, object) triples."""
    tree = ast.parse(inspect.getsource(module))
    nested = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and _is_internal(n) and n not in tree.body]
    if nested:
        raise ValueError(f"{module.__name__} imports hfgen inside a function (line {nested[0].lineno}): exported code can only inline top-level imports.")
    imports = []
    for node in tree.body:
        if isinstance(node, ast.Import) and any(alias.name.split(".")[0] == PACKAGE for alias in node.names):
            raise ValueError(f"{module.__name__} line {node.lineno}: use `from ... import name` for hfgen modules, so the export can inline them.")
        if isinstance(node, ast.ImportFrom) and _is_internal(node):
            source = importlib.import_module(importlib.util.resolve_name("." * node.level + (node.module or ""), module.__package__))
            imports.append((node, [(a.name, a.asname or a.name, getattr(source, a.name)) for a in node.names]))
    return imports


def _defining_module(value: Any, imported_from: str) -> ModuleType:
    """The hfgen module whose source defines `value` (a package may only re-export it)."""
    module = importlib.import_module(imported_from)
    if not hasattr(module, "__path__"):  # a plain module: the name is defined (or re-exported) there
        return module
    defined_in = getattr(value, "__module__", None)
    if not (defined_in or "").startswith(PACKAGE):
        raise ValueError(f"Cannot tell which hfgen module defines {value!r}, imported from the package {imported_from}: import it from its module.")
    return importlib.import_module(defined_in)


def _left_out(value: Any, leave_out: set[type]) -> bool:
    return isinstance(value, type) and value in leave_out


def _modules_in_order(root: ModuleType, leave_out: set[type]) -> list[ModuleType]:
    """`root` and every hfgen module it needs, dependencies first. Classes in `leave_out` - the pipeline's
    components, which load from their own files, and hfgen's pipeline base - are not followed: their library base
    class takes their place (a pipeline uses its components' classes only as annotations)."""
    ordered: list[ModuleType] = []

    def visit(module: ModuleType, path: tuple[str, ...]) -> None:
        if module in ordered:
            return
        if module.__name__ in path:
            raise ValueError(f"Import cycle {' -> '.join((*path, module.__name__))}: exported code needs an order.")
        for node, names in _internal_imports(module):
            absolute = importlib.util.resolve_name("." * node.level + (node.module or ""), module.__package__)
            for _, _, value in names:
                if not _left_out(value, leave_out):
                    visit(_defining_module(value, absolute), (*path, module.__name__))
        ordered.append(module)

    visit(root, ())
    return ordered


def _top_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return {name for name in names if not name.startswith("__")}


def _replacement(name: str, alias: str, value: Any, leave_out: set[type]) -> str:
    """What stands for an inlined import: an alias, or for a left-out class the library class it derives from,
    which keeps the annotations diffusers reads (a component's own class loads from its folder's file)."""
    if _left_out(value, leave_out):
        base = next(b for b in value.__mro__ if b.__module__.split(".")[0] != PACKAGE)
        return f"from {base.__module__} import {base.__name__} as {alias}  # stands in for hfgen's {name}"
    return f"{alias} = {name}" if alias != name else ""


def bundle_source(root: ModuleType, leave_out: set[type] = frozenset()) -> str:
    """One self-contained module with the code of `root` and the hfgen modules it imports, for diffusers' loader.

    Raises a ValueError, rather than writing code that would break at a user's, when two inlined modules define
    the same top-level name or disagree on `from __future__ import annotations`.
    """
    modules = _modules_in_order(root, set(leave_out))
    sources = {module: inspect.getsource(module) for module in modules}
    futures = {module.__name__: FUTURE_ANNOTATIONS in source.splitlines() for module, source in sources.items()}
    if len(set(futures.values())) > 1:
        raise ValueError(f"Cannot inline modules that disagree on `{FUTURE_ANNOTATIONS}`: {futures}.")
    defined_by: dict[str, str] = {}
    parts = []
    for module, source in sources.items():
        tree = ast.parse(source)
        for name in _top_level_names(tree):
            if name in defined_by:
                raise ValueError(f"{name!r} is defined by both {defined_by[name]} and {module.__name__}: rename one so the exported code can inline both.")
            defined_by[name] = module.__name__
        lines = source.splitlines()
        for node, names in reversed(_internal_imports(module)):
            lines[node.lineno - 1 : node.end_lineno] = [_replacement(name, alias, value, leave_out) for name, alias, value in names]
        body = "\n".join(line for line in lines if line != FUTURE_ANNOTATIONS).strip()
        parts.append(f"# ---- {module.__name__} ----\n\n{body}\n")
    header = (
        f"# Generated by hfgen from {', '.join(m.__name__ for m in modules)}; do not edit.\n"
        "# Self-contained so that diffusers / transformers load it with `trust_remote_code=True` where hfgen is not installed.\n"
    )
    future = f"{FUTURE_ANNOTATIONS}\n\n" if any(futures.values()) else ""
    return header + future + "\n\n".join(parts)


def code_module_name(kind: str, family: str, source: str) -> str:
    """`pipeline_hfgen_gan_3f2a9c01d4`: unique per code, since all remote modules share one namespace."""
    return f"{kind}_hfgen_{family.replace('-', '_')}_{hashlib.sha256(source.encode()).hexdigest()[:10]}"


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)  # no copy of the weights where the file system allows
    except OSError:
        shutil.copy2(source, target)


def export_remote_code(folder: Path, target: Path) -> dict[str, Any]:
    """Write `folder` (a pipeline saved by hfgen) to `target` in diffusers' remote-code layout; returns the
    exported model_index.json. Files other than model_index.json, component configs and the code are linked."""
    index = json.loads((folder / "model_index.json").read_text())
    family = family_of_folder(index, None)
    pipeline_class = saved_pipeline_class(index)
    components = hub_components(index)
    target.mkdir(parents=True, exist_ok=True)
    exported = dict(index)
    rewritten = {"model_index.json"}
    for name, component_class in components.items():
        source = bundle_source(inspect.getmodule(component_class))
        module = code_module_name("modeling", family.name, source)
        # in the component's folder for diffusers; at the root too, where transformers looks for `auto_map` code
        for code_folder in (target / name, target):
            code_folder.mkdir(parents=True, exist_ok=True)
            (code_folder / f"{module}.py").write_text(source)
        exported[name] = [module, component_class.__name__]
        config = json.loads((folder / name / "config.json").read_text())
        auto_map = config.get("auto_map") or {"AutoConfig": component_class.config_class.__name__, auto_class_of(component_class): component_class.__name__}
        config["auto_map"] = {auto: f"{module}.{reference.rsplit('.', 1)[-1]}" for auto, reference in auto_map.items()}
        (target / name / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        rewritten.add(f"{name}/config.json")
    source = bundle_source(inspect.getmodule(pipeline_class), {HfgenPipeline, *components.values()})
    module = code_module_name("pipeline", family.name, source)
    (target / f"{module}.py").write_text(source)
    exported["_class_name"] = [module, pipeline_class.__name__]
    (target / "model_index.json").write_text(json.dumps(exported, indent=2, sort_keys=True) + "\n")
    for file in folder.rglob("*"):
        relative = file.relative_to(folder).as_posix()
        if file.is_file() and relative not in rewritten and not (target / relative).exists():
            _link_or_copy(file, target / relative)
    return exported


@contextmanager
def exported_for_hub(folder: Path) -> Iterator[Path]:
    """A temporary export of `folder` next to it (same file system, so the weights are linked, not copied)."""
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}-hub-") as target:
        export_remote_code(folder, Path(target))
        yield Path(target)
