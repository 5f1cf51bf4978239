"""The `hfgen` subcommands, one module each, on top of the library: each parses its options and calls the layers
below, and no library module imports a command (diffusers' `commands/`, transformers' `cli/`). A module's `run(argv)`
is what `hfgen <command> ...` calls; `hfgen.cli` imports it only when that command runs.
"""

from __future__ import annotations


def positionals(argv: list[str], *names: str) -> list[str]:
    """`hfgen push out/model you/model --flags` -> `--folder out/model --repo_id you/model --flags`."""
    flags = []
    for name in names:
        if not argv or argv[0].startswith("-"):
            break
        flags, argv = [*flags, f"--{name}", argv[0]], argv[1:]
    return [*flags, *argv]


def positional_model(argv: list[str]) -> list[str]:
    """`hfgen sample out/model --flags` -> `--model out/model --flags` (the model is the first positional)."""
    return positionals(argv, "model")
