"""`hfgen demo <space>`: serve a Gradio Space locally (127.0.0.1 unless --host says otherwise) - a family's demo or
`zoo` - for a model folder or Hub repo id."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..arguments import ArgumentParser, require_model
from ..demo import DEFAULT_MODEL, MODEL_ENV, build_demo, demo_names, launch


@dataclass
class DemoArguments:
    model: str | None = field(
        default=None,
        metadata={"help": f"Model folder or Hub repo id (default: ${MODEL_ENV}, else {DEFAULT_MODEL}); for `zoo`, "
                  "the --output_dir of `hfgen zoo`."},
    )
    port: int | None = field(default=None, metadata={"help": "Port to serve on (default: 7860, or the next free one)."})
    host: str = field(default="127.0.0.1", metadata={"help": "Address to serve on; 0.0.0.0 opens it to the network."})

    def __post_init__(self) -> None:
        require_model("model", self.model)
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"--port must be in [1, 65535], got {self.port}.")


def run(argv: list[str]) -> None:
    if not argv or argv[0].startswith("-"):
        raise ValueError(f"`hfgen demo` needs a Space first: hfgen demo <{'|'.join(demo_names())}> [--model PATH_OR_REPO] [--port N].")
    (args,) = ArgumentParser(DemoArguments, prog="hfgen demo").parse_args_into_dataclasses(args=argv[1:])
    launch(build_demo(argv[0], args.model), args.host, args.port)
