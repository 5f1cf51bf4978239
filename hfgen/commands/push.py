"""`hfgen push <folder> <owner/name>`: upload a trained folder - weights, configs, card, images, remote code."""

from __future__ import annotations

from ..arguments import ArgumentParser
from ..hub.push import PushArguments, push_folder
from . import positionals


def run(argv: list[str]) -> None:
    (args,) = ArgumentParser(PushArguments, prog="hfgen push").parse_args_into_dataclasses(args=positionals(argv, "folder", "repo_id"))
    print(f"pushed {args.folder} to {push_folder(args)}")
