"""Every example of README.md and docs/ runs, so a renamed option or a moved function breaks a test, not a reader.

`tests/markdown_examples.py` collects them and says how a page marks a block not run (with its reason) or gives it
tiny settings. A page's blocks run in order in one fresh folder, as a reader's terminal would: `zoo-report/` there
is a copy of the session's tiny zoo (what `make demo` leaves), `path/to/images/` a small folder of RGB images in
two class folders (what "train on your own images" expects) and `digit.png`, `a.png`, `b.png` three digits (what the
VAE's reconstruction and interpolation take).
"""

from __future__ import annotations

import doctest
import io
import math
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from markdown_examples import (
    PAGES, ROOT, Example, collect, parse_directive, reference_entries, run, run_shell, shell_commands,
)

RUNNABLE = [page for page in PAGES if any(not example.not_run for example in collect(page))]


def write_own_images(folder: Path) -> None:
    """144 images of 48x40 pixels in two classes: as few as `hfgen evaluate` still judges with its floor row."""
    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (folder / label).mkdir(parents=True)
        for index in range(72):
            pixels = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / label / f"{index}.png")


def write_reader_digits(folder: Path) -> None:
    """digit.png, a.png and b.png: three of scikit-learn's digits as a reader's own 8x8 grey PNGs."""
    from sklearn.datasets import load_digits

    for name, pixels in zip(("digit", "a", "b"), load_digits().images[:3]):
        Image.fromarray((pixels * 255 / 16).round().astype(np.uint8)).save(folder / f"{name}.png")


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE, ids=[str(page.relative_to(ROOT)) for page in RUNNABLE])
def test_the_examples_of_a_page_run(page, tiny_zoo, tmp_path, monkeypatch, record_property):
    shutil.copytree(tiny_zoo, tmp_path / "zoo-report")
    write_own_images(tmp_path / "path" / "to" / "images")
    write_reader_digits(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__example__"}
    for example in collect(page):
        if not example.not_run:
            run(example, monkeypatch, namespace)
            if example.language != "file":
                record_property("example_ran", example.where)  # counted at the session's end (conftest.py)


def test_directives_are_checked():
    assert parse_directive("not run - needs a GPU", "here") == ("needs a GPU", {})
    assert parse_directive("with train --max_steps 2; zoo --budget tiny", "here") == (
        None, {"train": ["--max_steps", "2"], "zoo": ["--budget", "tiny"]}
    )
    for text in ("not run - ", "skip", "not run"):
        with pytest.raises(ValueError, match="unknown directive"):
            parse_directive(text, "here")
    commands = shell_commands("hfgen train vae \\\n    --max_steps 2   # tiny\n\n# a comment\n")
    assert [shlex.split(command, comments=True) for command in commands] == [["hfgen", "train", "vae", "--max_steps", "2"]]


def test_shell_lines_run_in_bash_with_this_python_and_titled_blocks_are_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    page = tmp_path / "page.md"
    page.write_text(
        '<!-- example: not run - needs a GPU -->\n```bash\nhfgen train vae --device cuda\n```\n\n'
        '```yaml title="args.yaml"\nmax_steps: 2\n```\n\n'
        '```bash\npython -c "import hfgen, yaml; print(yaml.safe_load(open(\'args.yaml\')))" > seen.txt\n```\n'
    )
    examples = collect(page)
    assert [(example.language, example.not_run) for example in examples] == [
        ("shell", "needs a GPU"), ("file", None), ("shell", None)
    ]
    for example in examples[1:]:
        run(example, monkeypatch, {})
    assert (tmp_path / "seen.txt").read_text().strip() == "{'max_steps': 2}"
    with pytest.raises(AssertionError, match="(?s)`exit 3` exited 3.*not run - REASON"):
        run_shell(Example(page, 1, "shell", "exit 3"), monkeypatch)


def test_a_broken_example_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError, match="(?s)exited 2.*has no option .--no_such_option."):
        run_shell(Example(ROOT / "README.md", 1, "shell", "hfgen train vae --no_such_option 1"), monkeypatch)


DOCSTRING_MODELS = {
    "ddpm-digits": "diffusion", "vae-digits": "vae", "gan-digits": "gan", "ar-digits": "autoregressive",
    "ldm-digits": "latent-diffusion",
}
"""The folders the docstrings load (`out/<name>`, as the family pages train them) -> the tiny zoo's model."""


@pytest.mark.slow
def test_the_docstring_examples_of_the_api_reference_run(tiny_zoo, tmp_path, monkeypatch, record_property):
    """The `>>>` examples the API reference shows (every `:::` entry of docs/reference.md, its methods included)
    run with `torch` and `math` imported and print what they say, in a folder whose `out/` holds tiny models."""
    for name, family in DOCSTRING_MODELS.items():
        (tmp_path / "out").mkdir(exist_ok=True)
        (tmp_path / "out" / name).symlink_to(tiny_zoo / "models" / family)
    monkeypatch.chdir(tmp_path)
    ran = 0
    for path, value in reference_entries():
        for found in doctest.DocTestFinder().find(value, path):
            if not found.examples:
                continue
            text = "\n".join(line for line in (found.docstring or "").splitlines() if not line.strip().startswith("```"))
            test = doctest.DocTestParser().get_doctest(text, {"torch": torch, "math": math}, found.name, found.filename, found.lineno)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            output = io.StringIO()
            result = runner.run(test, out=output.write)
            assert result.failed == 0, output.getvalue()
            ran += result.attempted
            record_property("docstring_ran", found.name)
    assert ran >= 30  # the examples of 9 docstrings today
