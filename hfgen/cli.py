"""The `hfgen` command line: `hfgen train|sample|evaluate|zoo|push|push-space|demo ...`, dispatched to the command's
module in `hfgen/commands/`, with the one-line error every bad input gets."""

from __future__ import annotations

import importlib
import sys

from safetensors import SafetensorError

from .families import family_names

USAGE = """hfgen <command> [options]

commands:
  train <family>   train a family on a dataset and write a Hub-ready folder (families: {families})
  presets          the published architectures `hfgen train <family> --preset NAME` builds, with their sources
  sample <model>   generate from a trained model folder or Hub repo id and write a grid
  evaluate <model> FID, KID, precision/recall, bits/dim of a trained model; prints a table, writes JSON
  zoo              train every family on one dataset, evaluate all with the same code, write a report
  push <folder> <owner/name>
                   upload a trained folder (weights, configs, card, images, remote code) to the Hub
  push-space <space> <owner/name>
                   deploy a Space (a family's demo or `zoo`) with this hfgen's wheel; --model REPO
  demo <space>     serve a Gradio Space locally (127.0.0.1): a family's demo or `zoo`; --model PATH_OR_REPO, --port N

`hfgen <command> --help` lists a command's options."""

# Errors that mean "the input is wrong": shown as one line naming the fix, never as a traceback.
USER_ERRORS = (ValueError, OSError, SafetensorError, FloatingPointError)


COMMANDS = {
    "train": "hfgen.commands.train", "sample": "hfgen.commands.sample", "evaluate": "hfgen.commands.evaluate",
    "zoo": "hfgen.commands.zoo", "push": "hfgen.commands.push", "push-space": "hfgen.commands.push_space",
    "demo": "hfgen.commands.demo", "presets": "hfgen.commands.presets",
}
"""Command -> its module in `hfgen/commands/`, imported only when that command runs (so `hfgen --help` loads no model code)."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.format(families=", ".join(family_names())))
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"hfgen: error: unknown command {command!r}; use one of {', '.join(COMMANDS)}.", file=sys.stderr)
        return 2
    from .training.signals import STOPPED_EXIT_CODE, TrainingStopped

    try:
        importlib.import_module(COMMANDS[command]).run(rest)
    except USER_ERRORS as error:
        print(f"hfgen: error: {error}", file=sys.stderr)
        return 2
    except TrainingStopped as stop:
        if stop.is_main_process:
            print(f"hfgen: {stop}", file=sys.stderr)
        return STOPPED_EXIT_CODE
    return 0


if __name__ == "__main__":
    sys.exit(main())
