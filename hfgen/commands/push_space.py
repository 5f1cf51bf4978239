"""`hfgen push-space <space> <owner/name>`: deploy a Space (a family's demo or `zoo`) with this hfgen's wheel."""

from __future__ import annotations

from ..arguments import ArgumentParser
from ..hub.push_space import PushSpaceArguments, push_space
from . import positionals


def run(argv: list[str]) -> None:
    parser = ArgumentParser(PushSpaceArguments, prog="hfgen push-space")
    (args,) = parser.parse_args_into_dataclasses(args=positionals(argv, "space", "repo_id"))
    print(f"deployed spaces/{args.space} to {push_space(args)}")
