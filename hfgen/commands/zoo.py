"""`hfgen zoo`: train every family on one dataset, evaluate all with the same code, write a report."""

from __future__ import annotations

from ..arguments import ArgumentParser
from ..zoo.run import ZooArguments, run_zoo


def run(argv: list[str]) -> None:
    (args,) = ArgumentParser(ZooArguments, prog="hfgen zoo").parse_args_into_dataclasses(args=argv)
    run_zoo(args)
