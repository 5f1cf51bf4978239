"""`hfgen push`: upload the Hub-ready part of a trained folder, card included, in one commit.

A pipeline goes up in diffusers' remote-code layout (remote_code.py), so plain diffusers loads it too.
Everything goes through `huggingface_hub` (`create_repo(exist_ok=True)`, `create_branch`, `upload_folder` with
allow/ignore patterns). Pushing the card in the same commit as the weights means the repo never shows the
generic README diffusers' and transformers' `push_to_hub` would write. Every failure - no token, a rejected
token, someone else's namespace, no network - is one line naming the fix, and the local folder is untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError

from ..arguments import require_existing, require_repo_id
from ..loading import check_component_weights, model_files, read_model_file
from ..training.checkpoints import CHECKPOINT_BRANCH, CHECKPOINTS_FOLDER, list_checkpoints
from ..training.trainer import TRAINING_ARGS_FILE
from .cards import write_card
from .remote_code import exported_for_hub

HUB_READY_PATTERNS = [
    "*.safetensors",  # weights
    "*.json",  # configs, model_index.json, tokenizer, training arguments, evaluation results
    "*.txt", "*.model",  # tokenizer vocabularies and merges
    "*.py",  # remote code next to transformers configs
    "*.png", "*.md",  # sample grids, loss curves, the card
]
"""What goes up: the files that load, describe and show the model."""
NEVER_PUSHED_PATTERNS = [
    "checkpoints/*", "logs/*",  # training state and tensorboard logs
    "*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle",  # pickles: never published
    "*.jsonl", ".*",  # raw logs, hidden files
]
"""What never goes up, even when it matches `HUB_READY_PATTERNS`."""
CHECKPOINT_PATTERNS = ["*.safetensors", "*.json", "*.bin", "*.pkl", "*.pt"]
"""A checkpoint's files (`--include_checkpoints`): the `.bin`/`.pkl`/`.pt` ones are `torch.save`d tensors and numbers
that resume loads with `weights_only=True` (training/checkpoints.py), never a full unpickle."""


def newest_checkpoint(folder: Path) -> Path:
    """The newest complete checkpoint of a training folder, or the error that says there is none."""
    found = list_checkpoints(folder / CHECKPOINTS_FOLDER)
    if not found:
        raise FileNotFoundError(
            f"--include_checkpoints: {folder} has no complete checkpoint under {CHECKPOINTS_FOLDER}/ - train with "
            "--checkpointing_steps, or push without it."
        )
    return found[-1]


@dataclass
class PushArguments:
    folder: str = field(metadata={"help": "A folder written by `hfgen train`."})
    repo_id: str = field(metadata={"help": "The Hub repo to push to: owner/name (created if missing)."})
    private: bool = field(default=False, metadata={"help": "Create the repo private (an existing repo keeps its visibility)."})
    revision: str | None = field(default=None, metadata={"help": "Branch to push to (created from main if missing)."})
    commit_message: str | None = field(default=None, metadata={"help": "Commit message (default: names the folder)."})
    include_checkpoints: bool = field(
        default=False,
        metadata={"help": f"Also push the newest checkpoint to the branch {CHECKPOINT_BRANCH!r}, so training can resume "
                          "from the Hub (`hfgen train ... --resume_from_checkpoint owner/name`)."},
    )

    def __post_init__(self) -> None:
        require_existing("folder", self.folder, "folder")
        require_repo_id("repo_id", self.repo_id)


def require_token() -> str:
    """The Hub token from the usual places (HF_TOKEN, `hf auth login`), or the error that says how to set one."""
    token = get_token()
    if not token:
        raise OSError("No Hub token: set HF_TOKEN or run `hf auth login` with a token that can write.")
    return token


def push_folder(args: PushArguments) -> str:
    """Push `args.folder` to `args.repo_id`; returns the URL of the commit."""
    folder = Path(args.folder).expanduser()
    index = read_model_file(str(folder), "model_index.json")
    if index is not None:
        check_component_weights(str(folder), index, model_files(str(folder)))
    elif read_model_file(str(folder), "config.json") is None:
        raise FileNotFoundError(f"{args.folder!r} has no model_index.json or config.json: pass a folder written by `hfgen train`.")

    checkpoint = newest_checkpoint(folder) if args.include_checkpoints else None
    with writing_to_hub(args.folder, args.repo_id) as api:
        api.create_repo(args.repo_id, private=args.private, exist_ok=True)
        if (folder / TRAINING_ARGS_FILE).is_file():  # an hfgen run: its card, naming this repo in the snippets
            write_card(folder, args.repo_id)
        if args.revision:
            api.create_branch(args.repo_id, branch=args.revision, exist_ok=True)
        with exported_for_hub(folder) if index is not None else nullcontext(folder) as upload:
            commit = api.upload_folder(
                folder_path=upload, repo_id=args.repo_id, revision=args.revision,
                commit_message=args.commit_message or f"Upload {folder.name} with hfgen",
                allow_patterns=HUB_READY_PATTERNS, ignore_patterns=NEVER_PUSHED_PATTERNS,
            )
        if checkpoint is not None:  # training state, on its own branch: main stays what users load
            api.create_branch(args.repo_id, branch=CHECKPOINT_BRANCH, exist_ok=True)
            api.upload_folder(
                folder_path=checkpoint, path_in_repo=f"{CHECKPOINTS_FOLDER}/{checkpoint.name}", repo_id=args.repo_id,
                revision=CHECKPOINT_BRANCH, commit_message=f"Training state at {checkpoint.name}",
                allow_patterns=CHECKPOINT_PATTERNS,
            )
    return commit.commit_url


@contextmanager
def writing_to_hub(source: str, repo_id: str) -> Iterator[HfApi]:
    """An `HfApi` with the user's token, checked; whatever fails inside - a rejected token, someone else's
    namespace, no network - becomes one line naming the fix, and never shows the token."""
    token = require_token()
    api = HfApi(token=token)
    try:
        api.whoami()
    except HfHubHTTPError as error:
        raise _push_error(error, source, repo_id, token, "the Hub rejected the token: log in again with `hf auth login` or set a valid HF_TOKEN") from None
    except OSError as error:
        raise _push_error(error, source, repo_id, token, f"could not reach {constants.ENDPOINT}: check the network or HF_ENDPOINT") from None
    try:
        yield api
    except HFValidationError as error:
        raise ValueError(f"Invalid Hub repo id {repo_id!r}: {error}") from None
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status in (401, 403):
            fix = f"you cannot write to {repo_id!r}: push under your own user name or an organization you belong to"
        else:
            fix = "the Hub refused the upload"
        raise _push_error(error, source, repo_id, token, fix) from None
    except OSError as error:
        raise _push_error(error, source, repo_id, token, f"could not reach {constants.ENDPOINT}: check the network or HF_ENDPOINT") from None


def _push_error(error: Exception, source: str, repo_id: str, token: str, fix: str) -> OSError:
    """One line: what failed and the fix, with the server's first line - and never the token."""
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return OSError(f"Could not push {source!r} to {repo_id!r}: {fix} ({detail.replace(token, '***')}).")
