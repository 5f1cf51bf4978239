"""`hfgen sample <model>`: one set of options (`SampleArguments`), dispatched to the family of the model (its
`Family.sample`), which writes a grid, a strip or streamed text."""

from __future__ import annotations

from ..arguments import ArgumentParser
from ..loading import family_of_model
from ..sampling import SampleArguments
from . import positional_model


def run(argv: list[str]) -> None:
    (args,) = ArgumentParser(SampleArguments, prog="hfgen sample").parse_args_into_dataclasses(args=positional_model(argv))
    print(family_of_model(args.model, args.revision).sample(args))
