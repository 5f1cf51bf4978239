"""Autoregressive objective: predict every next token (text) or next pixel (images) - the mean NLL in nats."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import datasets
import torch
from torch import nn

from ...arguments import DataArguments, require_in, require_positive
from ...data import describe_images, load_image_dataset
from ...data.pixels import PixelVocabulary, pixel_transform
from ...data.text import TEXT_CORPORA, is_text_source, load_text_data
from ...objective import Objective, ObjectiveOutput, PreparedModules
from ...randomness import SampleRandomness
from . import HfgenGPTConfig, HfgenGPTForCausalLM, PixelGPTPipeline
from .pipeline_pixel_gpt import grey_level_log_probs


@dataclass
class AutoregressiveArguments:
    """Build the GPT config (and, for text, the tokenizer); saved with the model, never needed to load it."""

    modality: Literal["auto", "text", "pixels"] = field(
        default="auto",
        metadata={"help": f"auto: text for {', '.join(TEXT_CORPORA)} and text files/folders, pixels for image data."},
    )
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    hidden_size: int = 128
    dropout: float = 0.0
    block_size: int = field(default=128, metadata={"help": "Text: tokens per training block = the context window."})
    vocab_size: int = field(default=4096, metadata={"help": "Text: size of the byte-level BPE vocabulary to train."})
    validation_fraction: float = field(default=0.05, metadata={"help": "Text: share of the corpus held out."})
    max_chars: int | None = field(default=None, metadata={"help": "Text: use only the first N characters (quick runs)."})
    class_conditional: bool = field(default=False, metadata={"help": "Pixels: start each image with its class token."})
    validation_max_examples: int | None = field(
        default=1024, metadata={"help": "Blocks (text) / test images (pixels) scored at each validation; None: all."}
    )
    sample_max_new_tokens: int = field(default=96, metadata={"help": "Text: tokens per sample written during training."})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "Recompute blocks in backward to save memory."})

    def __post_init__(self) -> None:
        require_positive(
            self, "num_hidden_layers", "num_attention_heads", "hidden_size", "block_size", "sample_max_new_tokens",
            "validation_max_examples", "vocab_size", "max_chars",
        )
        require_in(self, "dropout", 0.0, 1.0, high_open=True)
        require_in(self, "validation_fraction", 0.0, 1.0, low_open=True, high_open=True)

    def gpt_config(self, **data_kwargs) -> HfgenGPTConfig:
        """The GPT config these options build, given what the data decides (vocab_size, max_position_embeddings, ...)."""
        return HfgenGPTConfig(
            num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads,
            hidden_size=self.hidden_size, dropout=self.dropout, **data_kwargs,
        )


class AutoregressiveObjective(Objective):
    """Teacher-forced next-token cross-entropy (GPT; ImageGPT for pixels, normalised over grey levels only)."""

    ema_modules = ("model",)
    module_names = ("model",)

    def __init__(self, arguments: AutoregressiveArguments, data: DataArguments) -> None:
        self.arguments, self.data = arguments, data
        modality = arguments.modality
        if modality == "auto":
            modality = "text" if is_text_source(data.dataset) else "pixels"
        self.is_text = modality == "text"
        if self.is_text:
            if arguments.class_conditional:
                raise ValueError("--class_conditional is for pixel models; text has no labels: drop the flag.")
            self.text = load_text_data(
                data.dataset, arguments.block_size, arguments.vocab_size, arguments.validation_fraction, arguments.max_chars
            )
            eos = self.text.tokenizer.eos_token_id
            self.config_kwargs = dict(
                vocab_size=len(self.text.tokenizer), max_position_embeddings=arguments.block_size,
                bos_token_id=eos, eos_token_id=eos, pad_token_id=eos,
            )
            return
        self.dataset = data.load_images("train")
        self.info = describe_images(self.dataset, data.dataset, data.resolution, data.channels)
        if arguments.class_conditional and self.info.num_classes is None:
            raise ValueError(f"--class_conditional needs labels, but dataset {data.dataset!r} has none: drop the flag.")
        if self.info.resolution != max(self.dataset[0]["image"].size):
            raise ValueError(
                f"--resolution {data.resolution} differs from the images' own size: pixel models read images as they "
                "are (resizing would invent grey levels outside the vocabulary) - drop --resolution."
            )
        self.vocabulary = PixelVocabulary(self.info.grey_levels, self.info.num_classes if arguments.class_conditional else None)
        self.test_images = self._test_images(data)
        self.config_kwargs = dict(
            vocab_size=self.vocabulary.vocab_size,
            max_position_embeddings=1 + self.info.resolution**2 * self.info.channels,
            bos_token_id=self.vocabulary.start_token,
        )

    def _test_images(self, data: DataArguments) -> dict[str, list] | None:
        """The test images (and labels) bits/dim is measured on; None for image folders without a test split."""
        try:
            test = load_image_dataset(data.dataset, "test", data.data_dir)
        except ValueError:
            return None
        return test[: self.arguments.validation_max_examples or len(test)]

    def build_modules(self) -> dict[str, nn.Module]:
        model = HfgenGPTForCausalLM(self.arguments.gpt_config(**self.config_kwargs))
        if self.arguments.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        return {"model": model}

    def train_dataset(self) -> datasets.Dataset:
        if self.is_text:
            return self.text.train
        return self.dataset.with_transform(
            pixel_transform(
                self.info.resolution, self.info.channels, self.vocabulary, self.arguments.class_conditional,
                self.data.center_crop, self.data.random_flip,
            )
        )

    def compute_loss(
        self, phase: str, batch: dict[str, torch.Tensor], modules: PreparedModules, randomness: SampleRandomness
    ) -> ObjectiveOutput:
        """Teacher forcing draws nothing: `randomness` is unused (dropout, if set, draws from the seeded global RNG)."""
        input_ids = batch["input_ids"]  # (B, T): text block, or conditioning token + D pixels
        if self.is_text:
            return ObjectiveOutput(modules["model"](input_ids, labels=input_ids, use_cache=False).loss)
        logits = modules["model"](input_ids[:, :-1], use_cache=False).logits  # (B, D, vocab): predicts pixels 1..D
        loss = -grey_level_log_probs(logits, input_ids[:, 1:], self.vocabulary.grey_levels).mean()
        return ObjectiveOutput(loss, {"bits_per_dim": loss.detach() / math.log(2)})

    def pipeline(self, model: nn.Module) -> PixelGPTPipeline:
        return PixelGPTPipeline(
            model=model, resolution=self.info.resolution, channels=self.info.channels,
            grey_levels=self.vocabulary.grey_levels, num_classes=self.vocabulary.num_classes,
        )

    def validation_logs(self, modules: Mapping[str, nn.Module]) -> dict[str, float]:
        model = modules["model"]
        if self.is_text:
            limit = self.arguments.validation_max_examples or len(self.text.validation)
            ids = self.text.validation[:limit]["input_ids"].to(model.device)  # (N, T)
            # Every block predicts T - 1 tokens, so weighting chunk means by their block count gives the token mean.
            loss = float(sum(model(b, labels=b, use_cache=False).loss.double() * len(b) for b in ids.split(256)) / len(ids))
            return {"validation_loss": loss, "validation_perplexity": math.exp(loss)}
        if self.test_images is None:
            return {}
        if self.vocabulary.num_classes:  # one pass with the true labels (the marginal p(x) costs one pass per class)
            bits = self.pipeline(model).bits_per_dim(self.test_images["image"], self.test_images["label"])
            return {"test_bits_per_dim_given_class": bits}
        return {"test_bits_per_dim": self.pipeline(model).bits_per_dim(self.test_images["image"])}

    def samples(self, modules: Mapping[str, nn.Module], num: int, generator: torch.Generator) -> torch.Tensor | list[str]:
        model = modules["model"]
        if self.is_text:
            tokenizer = self.text.tokenizer
            start = torch.full((min(num, 8), 1), tokenizer.eos_token_id, device=model.device)
            new_tokens = min(self.arguments.sample_max_new_tokens, self.arguments.block_size - 1)
            # generate() samples with the global RNG: seed a forked copy from `generator`, leave the real one alone.
            with torch.random.fork_rng(devices=[] if model.device.type == "cpu" else [model.device]):
                torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator, device=generator.device)))
                ids = model.generate(
                    start, attention_mask=torch.ones_like(start), do_sample=True, max_new_tokens=new_tokens,
                    pad_token_id=tokenizer.eos_token_id,
                )
            return tokenizer.batch_decode(ids[:, 1:], skip_special_tokens=True)
        pipe = self.pipeline(model)
        pipe.set_progress_bar_config(disable=True)
        labels = [i % self.vocabulary.num_classes for i in range(num)] if self.vocabulary.num_classes else None
        return pipe(batch_size=num, generator=generator, class_labels=labels, output_type="pt").images * 2 - 1

    def save_pretrained(self, modules: Mapping[str, nn.Module], output_dir: str | os.PathLike) -> None:
        if self.is_text:
            modules["model"].save_pretrained(output_dir)
            self.text.tokenizer.save_pretrained(output_dir)
        else:
            self.pipeline(modules["model"]).save_pretrained(output_dir, safe_serialization=True)
