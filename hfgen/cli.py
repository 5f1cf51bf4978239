"""The `hfgen` command line: `hfgen train|sample|evaluate|zoo|push|push-space|demo ...`. Each command parses its options with HfArgumentParser."""

from __future__ import annotations

import sys

from safetensors import SafetensorError

from .families import family_names

USAGE = """hfgen <command> [options]

commands:
  train <family>   train a family on a dataset and write a Hub-ready folder (families: {families})
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


def _train(argv: list[str]) -> None:
    from .training.launch import train

    if not argv or argv[0].startswith("-"):
        raise ValueError(f"`hfgen train` needs a family first: hfgen train <{'|'.join(family_names())}> [options].")
    output = train(argv[0], argv[1:])
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(f"trained {output.global_step} steps in {output.train_seconds:.1f} s")


def _sample(argv: list[str]) -> None:
    from .training.arguments import ArgumentParser

    from .sampling import SampleArguments, sample

    parser = ArgumentParser(SampleArguments, prog="hfgen sample")
    (args,) = parser.parse_args_into_dataclasses(args=_positional_model(argv))
    print(sample(args))


def _evaluate(argv: list[str]) -> None:
    from .training.arguments import ArgumentParser

    from .evaluation import EvaluateArguments, evaluate

    parser = ArgumentParser(EvaluateArguments, prog="hfgen evaluate")
    (args,) = parser.parse_args_into_dataclasses(args=_positional_model(argv))
    evaluate(args)


def _zoo(argv: list[str]) -> None:
    from .training.arguments import ArgumentParser

    from .evaluation.zoo import ZooArguments, run_zoo

    parser = ArgumentParser(ZooArguments, prog="hfgen zoo")
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    run_zoo(args)


def _push(argv: list[str]) -> None:
    from .training.arguments import ArgumentParser

    from .hub.push import PushArguments, push_folder

    parser = ArgumentParser(PushArguments, prog="hfgen push")
    (args,) = parser.parse_args_into_dataclasses(args=_positionals(argv, "folder", "repo_id"))
    print(f"pushed {args.folder} to {push_folder(args)}")


def _push_space(argv: list[str]) -> None:
    from .training.arguments import ArgumentParser

    from .hub.push_space import PushSpaceArguments, push_space

    parser = ArgumentParser(PushSpaceArguments, prog="hfgen push-space")
    (args,) = parser.parse_args_into_dataclasses(args=_positionals(argv, "space", "repo_id"))
    print(f"deployed spaces/{args.space} to {push_space(args)}")


def _demo(argv: list[str]) -> None:
    from .training.arguments import ArgumentParser

    from .demo import DemoArguments, build_demo, demo_names, launch

    if not argv or argv[0].startswith("-"):
        raise ValueError(f"`hfgen demo` needs a Space first: hfgen demo <{'|'.join(demo_names())}> [--model PATH_OR_REPO] [--port N].")
    (args,) = ArgumentParser(DemoArguments, prog="hfgen demo").parse_args_into_dataclasses(args=argv[1:])
    launch(build_demo(argv[0], args.model), args.host, args.port)


def _positionals(argv: list[str], *names: str) -> list[str]:
    """`hfgen push out/model you/model --flags` -> `--folder out/model --repo_id you/model --flags`."""
    flags = []
    for name in names:
        if not argv or argv[0].startswith("-"):
            break
        flags, argv = [*flags, f"--{name}", argv[0]], argv[1:]
    return [*flags, *argv]


def _positional_model(argv: list[str]) -> list[str]:
    """`hfgen sample out/model --flags` -> `--model out/model --flags` (the model is the first positional)."""
    if argv and not argv[0].startswith("-"):
        return ["--model", argv[0], *argv[1:]]
    return argv


COMMANDS = {
    "train": _train, "sample": _sample, "evaluate": _evaluate, "zoo": _zoo, "push": _push, "push-space": _push_space,
    "demo": _demo,
}


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
        COMMANDS[command](rest)
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
