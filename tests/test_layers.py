"""hfgen's imports point one way: commands on top, the library below, no circles.

The graph is read from the source (every `import` and `from ... import`, inside functions and under
`TYPE_CHECKING` too), so a lazy or type-only import cannot hide an upward arrow. `LAYERS` is the one statement
of the order; the layer table of docs/development.md is checked against it.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hfgen"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("entry points", ("hfgen", "hfgen.__main__", "hfgen.cli")),
    ("commands", ("hfgen.commands.*",)),
    ("shared work", ("hfgen.zoo.*", "hfgen.demo")),
    ("library", ("hfgen.families.*", "hfgen.training.*", "hfgen.evaluation.*", "hfgen.hub.*")),
    ("contracts", (
        "hfgen.families", "hfgen.objective", "hfgen.randomness", "hfgen.arguments", "hfgen.sampling", "hfgen.pipeline_base", "hfgen.loading",
        "hfgen.registration", "hfgen.widgets",
    )),
    ("foundation", ("hfgen.data.*", "hfgen.images", "hfgen.labels", "hfgen.callbacks", "hfgen.plots", "hfgen.call_checks")),
]
"""Top to bottom. A module may import its own layer (without a circle) or any layer below, never one above.
`name` is that module; `name.*` is a package and everything in it. The most specific pattern wins."""

FAMILY_COMPOSITION = {"latent_diffusion": {"vae", "diffusion"}}
"""The one family that may import others: latent diffusion composes the VAE's model and the diffusion pipeline."""


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports, anywhere in its file."""
    files = {module_name(path, root): path for path in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base for alias in node.names]
            else:
                continue
            for name in names:
                while name and name not in files:  # `hfgen.data.images_to_tensor` -> `hfgen.data`
                    name = name.rpartition(".")[0]
                if name and name != module:
                    targets.add(name)
        graph[module] = targets
    return graph


def layer_of(module: str) -> int:
    """The index in LAYERS of the most specific pattern matching `module`."""
    best: tuple[int, int] | None = None  # (specificity, layer)
    for index, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            package = pattern.removesuffix(".*")
            if module == pattern or (pattern.endswith(".*") and (module == package or module.startswith(package + "."))):
                specificity = len(package) * 2 + (pattern == module)
                best = max(best or (-1, -1), (specificity, index))
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS (and the layer table of docs/development.md)")
    return best[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} ({LAYERS[layer_of(module)][0]}) -> {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in graph.items() for target in targets if layer_of(target) < layer_of(module)
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def cross_family_imports(graph: dict[str, set[str]]) -> list[str]:
    def family(module: str) -> str | None:
        parts = module.split(".")
        return parts[2] if len(parts) > 2 and parts[1] == "families" else None

    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items() for target in targets
        if family(module) and family(target) and family(target) != family(module)
        and family(target) not in FAMILY_COMPOSITION.get(family(module), set())
    )


def test_every_import_points_down_and_none_goes_round():
    graph = import_graph()
    assert upward_imports(graph) == []
    assert circles(graph) == []
    assert cross_family_imports(graph) == []


def test_modules_imported_by_name_sit_below_who_names_them():
    """The lazy tables (the CLI's commands, the Spaces' demos) name modules as strings: those point down too."""
    from hfgen.cli import COMMANDS
    from hfgen.demo import ZOO_DEMO
    from hfgen.families import REGISTRY, families

    assert {LAYERS[layer_of(module)][0] for module in COMMANDS.values()} == {"commands"}
    assert layer_of(ZOO_DEMO.split(":")[0]) >= layer_of("hfgen.demo")
    demos = [family.demo.split(":")[0] for family in families() if family.demo]
    assert {LAYERS[layer_of(module)][0] for module in [*REGISTRY.values(), *demos]} == {"library"}
    assert all(module.startswith("hfgen.families.") for module in [*REGISTRY.values(), *demos])
    for module in [*COMMANDS.values(), ZOO_DEMO.split(":")[0], *demos]:
        importlib.import_module(module)


def test_the_check_reads_lazy_and_type_only_imports_and_fails_on_a_turned_back_import(tmp_path):
    """The check itself can fail: imports inside functions and under TYPE_CHECKING are edges, an import from the
    library up to a command is reported, and so is a circle inside one layer."""
    root = tmp_path / "hfgen"
    (root / "commands").mkdir(parents=True)
    for empty in ("__init__.py", "commands/__init__.py", "commands/train.py"):
        (root / empty).write_text("")
    (root / "images.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .commands.train import run\n"
        "def grid():\n    from . import labels\n"
    )
    (root / "labels.py").write_text("from .images import grid\n")
    graph = import_graph(root)
    assert graph["hfgen.images"] == {"hfgen.commands.train", "hfgen.labels"}
    assert upward_imports(graph) == ["hfgen.images (foundation) -> hfgen.commands.train (commands)"]
    assert circles(graph) == [["hfgen.images", "hfgen.labels"]]


def test_a_module_outside_every_layer_is_refused():
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("hfgen.somewhere_new")


def test_the_docs_state_the_same_layers():
    """The layer table of docs/development.md lists LAYERS in order, with the same modules."""
    readme = (ROOT / "docs" / "development.md").read_text()
    section = readme[readme.index("<!-- layers -->"): readme.index("<!-- /layers -->")]
    rows = [line for line in section.splitlines() if line.startswith("| **")]
    stated = [
        (cells[0].strip("* "), tuple(re.findall(r"`([^`]+)`", cells[1])))
        for cells in ([cell.strip() for cell in row.strip("|").split("|")] for row in rows)
    ]
    assert stated == LAYERS
