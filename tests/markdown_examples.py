"""The examples of README.md and docs/: collected from the Markdown, run the way a reader would run them.

A fenced `bash` or `python` block is an example. It runs as written unless the line above its fence is a directive,
an HTML comment that the rendered page does not show:

    <!-- example: not run - REASON -->                never run; the reason is required (a GPU, the real Hub, hours)
    <!-- example: with train --max_steps 2; evaluate --num_samples 64 -->
                                                     run, with each subcommand's flags appended to the block's
                                                     lines of that subcommand: the tiny settings. argparse keeps
                                                     an option's last value, so the appended one wins.

A shell block runs line by line: an `hfgen` line in this process through `hfgen.cli.main` (what the `hfgen` script
calls, so a block costs its work and not another torch import; an environment prefix such as `OMP_NUM_THREADS=2` is
applied), any other line in bash with this Python's environment first on PATH. The Python blocks of a page share one
namespace, as a reader's session would, and run with `exec`. A block with a file name (```` ```yaml title="args.yaml"
````, which the site shows as the file's title) is written to that file when the page reaches it.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted(page for page in (ROOT / "docs").rglob("*.md") if not page.parent.name.startswith("zoo-"))]
"""The README and the docs pages; not the zoo reports copied into docs/, which record the commands of a past run."""
LANGUAGES = {"bash": "shell", "sh": "shell", "shell": "shell", "python": "python", "py": "python"}
DIRECTIVE = re.compile(r"<!-- example: (?P<body>.*?) -->")
FENCE = re.compile(r'^(?P<indent>\s*)```(?P<language>[\w-]*)(?: title="(?P<title>[^"]+)")?\s*$')

@dataclass
class Example:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str  # "shell", "python" or "file"
    code: str
    not_run: str | None = None  # the reason, when marked not run
    flags: dict[str, list[str]] = field(default_factory=dict)  # hfgen command -> flags appended to its lines
    title: str | None = None  # the file a titled block is

    @property
    def where(self) -> str:
        return f"{shown(self.page)}:{self.line}"


def shown(page: Path) -> str:
    return str(page.relative_to(ROOT) if page.is_relative_to(ROOT) else page)


def reference_entries() -> list[tuple[str, object]]:
    """(dotted path, object) of every `::: module.Name` entry of the API reference (docs/reference.md)."""
    paths = re.findall(r"^::: (\S+)$", (ROOT / "docs" / "reference.md").read_text(), flags=re.MULTILINE)
    modules_and_names = [path.rsplit(".", 1) for path in paths]
    return [(path, getattr(importlib.import_module(module), name)) for path, (module, name) in zip(paths, modules_and_names)]


def parse_directive(text: str, where: str) -> tuple[str | None, dict[str, list[str]]]:
    """(not-run reason, flags per hfgen command) of a directive's text."""
    if text.startswith("not run - ") and text.removeprefix("not run - ").strip():
        return text.removeprefix("not run - ").strip(), {}
    if text.startswith("with "):
        flags = {}
        for part in text.removeprefix("with ").split(";"):
            command, *tokens = shlex.split(part)
            flags[command] = tokens
        return None, flags
    raise ValueError(f"{where}: unknown directive {text!r}: use 'not run - REASON' or 'with COMMAND FLAGS; ...'")


def collect(page: Path) -> list[Example]:
    """The page's bash and python blocks, in order, with their directives."""
    examples, lines, index = [], page.read_text().splitlines(), 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
        language = "file" if opening["title"] else LANGUAGES.get(opening["language"])
        if language:
            indent = len(opening["indent"])
            code = "\n".join(line[indent:] for line in lines[index + 1:end])
            above = next((lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            directive = DIRECTIVE.fullmatch(above)
            where = f"{shown(page)}:{index + 1}"
            not_run, flags = parse_directive(directive["body"], where) if directive else (None, {})
            examples.append(Example(page, index + 1, language, code, not_run, flags, opening["title"]))
        index = end + 1
    return examples


def shell_commands(code: str) -> list[str]:
    """The block's commands: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    return [line for line in joined.splitlines() if shlex.split(line, comments=True)]


def run_shell(example: Example, monkeypatch: pytest.MonkeyPatch) -> None:
    for line in shell_commands(example.code):
        tokens = shlex.split(line, comments=True)
        if tokens[:3] == ["python", "-m", "hfgen"]:
            tokens = ["hfgen", *tokens[3:]]
        environment = []
        while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[0]):
            environment.append(tokens.pop(0).split("=", 1))
        if tokens and tokens[0] == "hfgen":
            for name, value in environment:
                monkeypatch.setenv(name, value)
            run_hfgen(example, tokens[1:] + (example.flags.get(tokens[1], []) if len(tokens) > 1 else []))
        else:
            run_bash(example, line)


def run_hfgen(example: Example, argv: list[str]) -> None:
    from hfgen.cli import main

    output = StringIO()
    with redirect_stdout(output), redirect_stderr(output):
        try:
            code = main(argv)
        except SystemExit as stop:  # --help
            code = stop.code or 0
    assert code == 0, f"{example.where}: `hfgen {shlex.join(argv)}` exited {code}:\n{output.getvalue()[-3000:]}"


def run_bash(example: Example, line: str) -> None:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(["bash", "-c", line], env=os.environ | {"PATH": path}, capture_output=True, text=True)
    assert done.returncode == 0, (
        f"{example.where}: `{line}` exited {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}\n"
        "(a block that cannot run in the test is marked `<!-- example: not run - REASON -->`)"
    )


def run(example: Example, monkeypatch: pytest.MonkeyPatch, namespace: dict) -> None:
    """Run one example in the current folder (the page's); `namespace` is the page's Python session."""
    if example.language == "shell":
        run_shell(example, monkeypatch)
    elif example.language == "python":
        exec(compile(example.code, example.where, "exec"), namespace)
    else:
        Path(example.title).write_text(example.code + "\n")


def summary(ran: list[str], docstrings: list[str]) -> str:
    """The end-of-session report: blocks, those that ran (`ran`: their `where`), those marked not run and why, and
    the docstrings whose examples ran."""
    examples = [example for page in PAGES for example in collect(page) if example.language != "file"]
    not_run = [example for example in examples if example.not_run]
    lines = [
        f"examples in README.md and docs/: {len(examples)} blocks, {len(set(ran))} ran in this session, "
        f"{len(not_run)} marked not run:"
    ]
    lines += [f"  {example.where}: {example.not_run}" for example in not_run]
    lines.append(f"docstring examples of the API reference: {len(set(docstrings))} docstrings ran in this session")
    return "\n".join(lines)
