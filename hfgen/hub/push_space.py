"""`hfgen push-space`: deploy one of hfgen's Spaces (`spaces/<name>`) to the Hub, with the hfgen it runs.

hfgen is not on PyPI, so a Space's requirements.txt cannot just name it: the wheel of the installed hfgen is built
(`pip wheel --no-deps`, from a copy of the package so the checkout stays clean), uploaded beside app.py and named
in requirements.txt. `--model` goes into the Space card's `models:` list, which app.py serves by default.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import SpaceCard

from ..arguments import require_repo_id
from .push import writing_to_hub

SOURCE_ROOT = Path(__file__).resolve().parents[2]
"""The hfgen checkout: the package, pyproject.toml and spaces/."""
SPACES_FOLDER = SOURCE_ROOT / "spaces"
WHEEL_LINE = re.compile(r"^\./hfgen-[^\s]*\.whl$", re.MULTILINE)
"""The requirements.txt line that names hfgen's wheel (rewritten with the one built)."""


def space_names() -> list[str]:
    return sorted(p.name for p in SPACES_FOLDER.iterdir() if (p / "app.py").is_file()) if SPACES_FOLDER.is_dir() else []


@dataclass
class PushSpaceArguments:
    space: str = field(metadata={"help": "The Space to deploy: a folder of spaces/ (a family's demo, or zoo)."})
    repo_id: str = field(metadata={"help": "The Space repo to push to: owner/name (created as a Gradio Space if missing)."})
    model: str | None = field(
        default=None, metadata={"help": "Hub repo id of the model the Space serves (default: the one its README names)."}
    )
    private: bool = field(default=False, metadata={"help": "Create the Space private (an existing one keeps its visibility)."})

    def __post_init__(self) -> None:
        if not SPACES_FOLDER.is_dir():
            raise FileNotFoundError(f"No spaces/ folder next to {SOURCE_ROOT / 'hfgen'}: run `hfgen push-space` from a checkout of hfgen.")
        if self.space not in space_names():
            raise ValueError(f"No Space called {self.space!r}: use one of {', '.join(space_names())}.")
        require_repo_id("repo_id", self.repo_id)
        require_repo_id("model", self.model)


def build_wheel(output_dir: Path) -> Path:
    """The wheel of this hfgen, built from a copy of its sources into `output_dir`."""
    with tempfile.TemporaryDirectory(prefix="hfgen-wheel-") as source:
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(SOURCE_ROOT / name, source)
        shutil.copytree(SOURCE_ROOT / "hfgen", Path(source) / "hfgen", ignore=shutil.ignore_patterns("__pycache__"))
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(output_dir), source]
        built = subprocess.run(command, capture_output=True, text=True)
    if built.returncode != 0:
        last = (built.stderr.strip().splitlines() or ["no output"])[-1]
        raise OSError(f"Could not build hfgen's wheel ({last}): `pip install setuptools` in this environment, then retry.")
    return next(output_dir.glob("hfgen-*.whl"))


def stage_space(args: PushSpaceArguments, target: Path) -> None:
    """The Space folder as it goes up: its files, hfgen's wheel named in requirements.txt, the model in its card."""
    shutil.copytree(SPACES_FOLDER / args.space, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    wheel = build_wheel(target)
    requirements = target / "requirements.txt"
    text = requirements.read_text()
    requirements.write_text(WHEEL_LINE.sub(f"./{wheel.name}", text) if WHEEL_LINE.search(text) else f"{text.rstrip()}\n./{wheel.name}\n")
    if args.model:
        card = SpaceCard.load(target / "README.md")
        card.data.models = [args.model]
        card.save(target / "README.md")


def push_space(args: PushSpaceArguments) -> str:
    """Deploy `args.space` to `args.repo_id`; returns the URL of the commit."""
    with tempfile.TemporaryDirectory(prefix="hfgen-space-") as staging:
        stage_space(args, Path(staging))
        with writing_to_hub(f"spaces/{args.space}", args.repo_id) as api:
            api.create_repo(args.repo_id, repo_type="space", space_sdk="gradio", private=args.private, exist_ok=True)
            commit = api.upload_folder(
                folder_path=staging, repo_id=args.repo_id, repo_type="space", commit_message=f"Deploy hfgen's {args.space} Space"
            )
    return commit.commit_url
