"""Text for the autoregressive family: a corpus -> a byte-level BPE tokenizer -> fixed-length token blocks.

Sources:
- `python-stdlib` (built in, no download): the top-level modules of the running Python's standard library,
  `sysconfig.get_paths()["stdlib"]/*.py` - about 4.7 MB on CPython 3.11. Sub-packages are left out (the
  `encodings` code tables, `idlelib`, `test` suites, `site-packages`), so the corpus is plain, varied Python
  that is the same on every machine with the same Python.
- a local text file, or a folder of text files (`TEXT_SUFFIXES`, searched recursively, sorted by path);
- a Hub dataset id with a text column (`text`, else its first string column), `train` split.

Documents are shuffled with a fixed seed and joined with `<|endoftext|>`; the last `validation_fraction` of the
characters is held out, the tokenizer is trained on the rest only, and both parts are cut into blocks of
`block_size` tokens (the tail shorter than a block is dropped). Tokenizer and token ids are cached under
`$HFGEN_CACHE` (default `~/.cache/hfgen`), keyed by a hash of the text and the options, so the 4.7 MB corpus
is tokenized once (about 10 s on a busy CPU) and every later run starts in well under a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from .sources import IMAGE_SUFFIXES

TEXT_CORPORA = ("python-stdlib",)
TEXT_SUFFIXES = {".txt", ".md", ".rst", ".py", ".json", ".csv", ".tsv", ".html", ".xml", ".yaml", ".yml", ".toml", ".c", ".h", ".js"}
END_OF_TEXT = "<|endoftext|>"


@dataclass
class TextData:
    tokenizer: PreTrainedTokenizerFast
    train: datasets.Dataset
    """Rows of `input_ids` (block_size,), torch format: `train[indices]` -> {"input_ids": (B, T)}."""
    validation: datasets.Dataset


def is_text_source(name: str) -> bool:
    """True for the built-in corpus, a local file that is not an image, and folders of text files with no images
    (an image folder's metadata.csv does not make it text)."""
    if name in TEXT_CORPORA:
        return True
    path = Path(name).expanduser()
    if path.is_file():
        return path.suffix.lower() not in IMAGE_SUFFIXES
    if not path.is_dir():
        return False
    suffixes = {p.suffix.lower() for p in path.rglob("*") if p.is_file()}
    return bool(suffixes & TEXT_SUFFIXES) and not suffixes & IMAGE_SUFFIXES


def python_stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(root.glob("*.py"))


def load_text_documents(name: str, max_chars: int | None = None) -> list[str]:
    """The documents of `name` (see the module docstring), at most `max_chars` characters in all (quick runs)."""
    if name == "python-stdlib":
        documents = [p.read_text(encoding="utf-8", errors="replace") for p in python_stdlib_files()]
    elif (path := Path(name).expanduser()).is_file():
        documents = [path.read_text(encoding="utf-8", errors="replace")]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        documents = [p.read_text(encoding="utf-8", errors="replace") for p in files]
    elif "/" in name and not name.startswith((".", "/", "~")):
        documents = _hub_documents(name)
    else:
        raise FileNotFoundError(
            f"Text source {name!r} not found: use {', '.join(TEXT_CORPORA)}, a text file, a folder of text files "
            f"({', '.join(sorted(TEXT_SUFFIXES))}) or a Hub dataset id with a text column."
        )
    documents = [d for d in documents if d.strip()]
    if max_chars is not None:
        if max_chars <= 0:
            raise ValueError(f"max_chars must be positive, got {max_chars}.")
        documents = _first_chars(documents, max_chars)
    if not documents:
        raise ValueError(f"Text source {name!r} is empty (no non-blank text): add text or choose another source.")
    return documents


def _hub_documents(name: str) -> list[str]:
    dataset = datasets.load_dataset(name, split="train")
    columns = [c for c, f in dataset.features.items() if isinstance(f, datasets.Value) and f.dtype in ("string", "large_string")]
    if not columns:
        raise ValueError(f"Dataset {name!r} has no text column (columns: {', '.join(dataset.features)}): use one with strings.")
    return list(dataset["text" if "text" in columns else columns[0]])


def _first_chars(documents: list[str], max_chars: int) -> list[str]:
    kept, total = [], 0
    for document in documents:
        if total >= max_chars:
            break
        kept.append(document[: max_chars - total])
        total += len(kept[-1])
    return kept


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE (GPT-2's scheme: any byte string is encodable, no unknown token) learned on `texts`."""
    if vocab_size < 257:
        raise ValueError(f"vocab_size must be at least 257 (256 bytes + {END_OF_TEXT}), got {vocab_size}.")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[END_OF_TEXT], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT, pad_token=END_OF_TEXT)


def cache_root() -> Path:
    return Path(os.environ.get("HFGEN_CACHE", Path.home() / ".cache" / "hfgen"))


def load_text_data(
    name: str,
    block_size: int,
    vocab_size: int,
    validation_fraction: float = 0.05,
    max_chars: int | None = None,
    seed: int = 0,
) -> TextData:
    """Tokenizer + train/validation blocks of `name`; computed once per (text, options), then read from the cache."""
    if block_size <= 0:
        raise ValueError(f"block_size must be positive, got {block_size}.")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}.")
    documents = load_text_documents(name, max_chars)
    key = hashlib.sha256(json.dumps([documents, vocab_size, validation_fraction, seed, tokenizers.__version__]).encode()).hexdigest()
    folder = cache_root() / "text" / key[:24]
    if not (folder / "validation.npy").is_file():
        _build_cache(documents, vocab_size, validation_fraction, seed, folder)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
    splits = {}
    for split in ("train", "validation"):
        ids = np.load(folder / f"{split}.npy")
        blocks = len(ids) // block_size
        if blocks == 0:
            raise ValueError(
                f"The {split} split of {name!r} has {len(ids)} tokens, fewer than one block of {block_size}: "
                "use more text (--max_chars), a smaller --block_size or a larger --validation_fraction."
            )
        rows = ids[: blocks * block_size].reshape(blocks, block_size).astype(np.int64)
        splits[split] = datasets.Dataset.from_dict({"input_ids": rows}).with_format("torch")
    return TextData(tokenizer, splits["train"], splits["validation"])


def _build_cache(documents: list[str], vocab_size: int, validation_fraction: float, seed: int, folder: Path) -> None:
    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    text = END_OF_TEXT.join(documents[i] for i in order)
    cut = int(len(text) * (1 - validation_fraction))
    parts = {"train": text[:cut].split(END_OF_TEXT), "validation": text[cut:].split(END_OF_TEXT)}
    # The BPE learns from the training text only, one document at a time so merges never span documents.
    tokenizer = train_tokenizer(parts["train"], vocab_size)
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    tokenizer.save_pretrained(tmp)
    for split, pieces in parts.items():
        # Encoding document by document (in parallel) and joining with the end-of-text id gives exactly the ids
        # of the joined text: the special token is split off before BPE runs.
        encodings = tokenizer.backend_tokenizer.encode_batch(pieces)
        ids = [i for n, e in enumerate(encodings) for i in ([tokenizer.eos_token_id] if n else []) + e.ids]
        np.save(tmp / f"{split}.npy", np.asarray(ids, dtype=np.int32))
    try:
        tmp.replace(folder)
    except OSError:  # another process (a multi-process launch) cached the same text first
        shutil.rmtree(tmp)
