"""Images one pixel at a time: sample, complete a partly given image, and score the exact likelihood."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ImagePipelineOutput
from PIL import Image
from transformers.cache_utils import StaticCache

from ...call_checks import check_bool, check_float, check_generator, check_output_type
from ...callbacks import StepCallback, StepCallbacksMixin
from ...data.pixels import PixelVocabulary, images_to_uint8, raster, uint8_to_levels, unraster
from ...images import OutputType, postprocess
from ...labels import batch_and_class_labels, class_label_tensor
from ...pipeline_base import HfgenPipeline
from .modeling_hfgen_gpt import HfgenGPTForCausalLM

ImageInput = list[Image.Image] | torch.Tensor | np.ndarray


def grey_level_log_probs(logits: torch.Tensor, targets: torch.Tensor, grey_levels: int) -> torch.Tensor:
    """log p(target) per pixel, (B, D), normalised over the grey levels only (start/class tokens never follow)."""
    log_probs = F.log_softmax(logits[..., :grey_levels].float(), dim=-1)  # (B, D, G)
    return log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def check_temperature(temperature: object) -> None:
    """Checked when sampling starts and after every callback, which may have set `pipe._temperature`."""
    check_float("temperature", temperature, 0.0, above_minimum=True, meaning="1.0 samples the model's distribution")


class PixelGPTPipeline(StepCallbacksMixin, HfgenPipeline):
    r"""An autoregressive image model: p(x) = prod_i p(x_i | x_<i) over pixels in raster order.

    The generator/decoder is an [`HfgenGPTForCausalLM`] over grey-level tokens (see `hfgen.data.pixels`); there is
    no latent space - the image itself is the sequence, which is what makes the likelihood exact.

    Example:
    ```py
    >>> from hfgen import PixelGPTPipeline
    >>> pipe = PixelGPTPipeline.from_pretrained("out/ar-digits")
    >>> images = pipe(batch_size=16, generator=torch.manual_seed(0)).images
    >>> bits_per_dim = pipe.log_likelihood(images) / (-64 * math.log(2))
    ```
    """

    model_cpu_offload_seq = "model"
    _callback_tensor_inputs = ["tokens"]
    _temperature: float = 1.0
    _num_timesteps: int = 0

    # The image format is pipeline config (model_index.json); diffusers treats only arguments with defaults as
    # config values (required ones are components), hence the defaults: the built-in 8x8 digits.
    def __init__(
        self,
        model: HfgenGPTForCausalLM,
        resolution: int = 8,
        channels: int = 1,
        grey_levels: int = 17,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        vocabulary = PixelVocabulary(grey_levels, num_classes)
        if model.config.vocab_size != vocabulary.vocab_size:
            raise ValueError(
                f"The model has {model.config.vocab_size} tokens but {grey_levels} grey levels + start + "
                f"{num_classes or 0} classes need {vocabulary.vocab_size}: build the model with that vocab_size."
            )
        if model.config.max_position_embeddings < 1 + resolution * resolution * channels:
            raise ValueError(
                f"A {channels}x{resolution}x{resolution} image is {1 + resolution**2 * channels} tokens but the model's "
                f"context window is {model.config.max_position_embeddings}: raise max_position_embeddings."
            )
        self.register_modules(model=model)
        self.register_to_config(resolution=resolution, channels=channels, grey_levels=grey_levels, num_classes=num_classes)

    @property
    def vocabulary(self) -> PixelVocabulary:
        return PixelVocabulary(self.config.grey_levels, self.config.num_classes)

    @property
    def num_classes(self) -> int | None:
        """Classes the model is conditioned on through its first token (None when unconditional)."""
        return self.config.num_classes

    @property
    def num_pixels(self) -> int:
        """D: tokens per image (the dimensions bits/dim divides by)."""
        return self.config.resolution**2 * self.config.channels

    @property
    def num_timesteps(self) -> int:
        """Pixels the current (or last) sampling call draws, one step each: what a cutoff callback's ratio scales."""
        return self._num_timesteps

    @property
    def temperature(self) -> float:
        """The sampling temperature of the current (or last) call. A step-end callback may change it between pixels
        through `pipe._temperature`, as diffusion's callbacks change `pipe._guidance_scale`."""
        return self._temperature

    def bytes_per_image(self) -> int:
        """A lower bound on what one image takes while sampling: its float32 key/value cache across every layer and
        position, the last logits, and its long tokens."""
        config, length = self.model.config, 1 + self.num_pixels
        return 4 * (2 * config.num_hidden_layers * length * config.hidden_size + config.vocab_size) + 8 * 2 * length

    def first_tokens(self, class_labels: int | list[int] | torch.Tensor | None, batch_size: int) -> torch.Tensor:
        """(B, 1) conditioning tokens; class labels are required exactly when the model is class-conditional."""
        num_classes = self.config.num_classes
        if class_labels is None:
            if num_classes is not None:
                raise ValueError(f"This model is class-conditional: pass class_labels in [0, {num_classes - 1}].")
            return self.vocabulary.first_tokens(None, batch_size, self.device)
        labels = class_label_tensor(class_labels, batch_size, num_classes)
        return self.vocabulary.first_tokens(labels, batch_size, self.device)

    def _images_to_tokens(self, images: ImageInput) -> torch.Tensor:
        pixels = images_to_uint8(images, self.config.resolution, self.config.channels)  # (B, C, H, W)
        return raster(uint8_to_levels(pixels, self.config.grey_levels)).to(self.device)  # (B, D)

    def _tokens_to_output(self, tokens: torch.Tensor, output_type: OutputType):
        levels = unraster(tokens, self.config.resolution, self.config.channels)  # (B, C, H, W)
        images = levels.float() * (2 / (self.config.grey_levels - 1)) - 1  # [-1, 1]; 8-bit output is round(v * 255 / (G - 1))
        return postprocess(images, output_type)

    def _sample(
        self,
        tokens: torch.Tensor,
        known: torch.Tensor,
        generator: torch.Generator | None,
        temperature: float,
        callback: StepCallback | None = None,
        callback_tensor_inputs: list[str] | tuple[str, ...] = ("tokens",),
    ) -> torch.Tensor:
        """Fill the unknown positions of `tokens` (B, 1 + D) left to right; known ones are kept and conditioned on."""
        check_temperature(temperature)
        check_generator(generator, len(tokens), one_per_image=False)
        tensor_inputs = self.start_steps(callback, callback_tensor_inputs)
        self._temperature = temperature
        tokens, length = tokens.clone(), tokens.shape[1]
        # 1. encode the prefix every image knows in one pass (at least the start/class token)
        prefix = int(known.all(0).long().cumprod(0).sum())
        self._num_timesteps = length - prefix
        if prefix == length:
            return tokens
        # A cache written in place: a DynamicCache concatenates, copying the whole cache every step. On 28x28 images
        # at batch 250 that made sampling 3.7x slower (scripts/bench_autoregressive.py --pixels, docs/families/autoregressive.md).
        cache = StaticCache(config=self.model.config, max_cache_len=length)
        logits = self.model(tokens[:, :prefix], cache=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
        for step, t in enumerate(self.progress_bar(range(prefix, length))):
            # 2. sample the next grey level; keep the given one where it is known
            probs = F.softmax(logits[:, : self.config.grey_levels].float() / self._temperature, dim=-1)  # (B, G)
            sampled = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            tokens[:, t] = torch.where(known[:, t], tokens[:, t], sampled)
            # 3. the callback sees the tokens so far (and may replace the newest one), or stops the loop
            if callback is not None:
                tokens[:, t] = self._newest_token_from_callback(callback, tensor_inputs, step, t, tokens)
                check_temperature(self._temperature)
                if self.interrupt:
                    break
            # 4. feed it back through the KV cache
            if t + 1 < length:
                logits = self.model(tokens[:, t : t + 1], cache=cache, use_cache=True).logits[:, -1]
        return tokens

    def _newest_token_from_callback(
        self, callback: StepCallback, tensor_inputs: list[str], step: int, position: int, tokens: torch.Tensor
    ) -> torch.Tensor:
        """-> (B,) token at `position` after the callback, which gets a copy of `tokens` (B, 1 + D). Earlier tokens are
        already in the KV cache, so a callback that changes them is refused rather than silently ignored."""
        returned = self.end_step(callback, tensor_inputs, step, position, {"tokens": tokens.clone()})["tokens"]
        if returned.shape != tokens.shape or not torch.equal(returned[:, :position], tokens[:, :position]):
            raise ValueError(
                f"callback_on_step_end changed tokens before position {position}, which the model has already read: "
                "a callback may only replace the newest token."
            )
        return returned[:, position].to(tokens.device)

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int | None = None,
        generator: torch.Generator | None = None,
        class_labels: int | list[int] | torch.Tensor | None = None,
        temperature: float = 1.0,
        num_images_per_prompt: int = 1,
        output_type: OutputType = "pil",
        return_dict: bool = True,
        callback_on_step_end: StepCallback | None = None,
        callback_on_step_end_tensor_inputs: list[str] | tuple[str, ...] = ("tokens",),
    ) -> ImagePipelineOutput | tuple:
        r"""
        Args:
            batch_size (`int`, *optional*): images to generate; defaults to one per class label, else 1.
            generator (`torch.Generator`, *optional*): makes sampling deterministic.
            class_labels (`int`, `list[int]` or `torch.Tensor`, *optional*): class per image (conditional models).
            temperature (`float`, *optional*, defaults to 1.0): > 0; below 1 sharpens each pixel's distribution
                (a callback may change it between pixels: `pipe._temperature`).
            num_images_per_prompt (`int`, *optional*, defaults to 1): images per label (or per `batch_size` slot).
            output_type (`str`, *optional*, defaults to `"pil"`): `"pil"`, `"np"` or `"pt"` (in [0, 1]).
            return_dict (`bool`, *optional*, defaults to `True`): return an `ImagePipelineOutput`, else a tuple.
            callback_on_step_end (`Callable`, *optional*): `callback(pipe, step, position, callback_kwargs) -> dict`,
                called after each sampled pixel (token `position` of the sequence, 1 to D) with a copy of `"tokens"`
                (B, 1 + D): start/class token, then grey levels in raster order, not yet sampled ones 0. It may
                replace the newest token; `pipe._interrupt = True` stops early, leaving the rest black. There are
                `pipe.num_timesteps` steps.
            callback_on_step_end_tensor_inputs (`list[str]`, *optional*, defaults to `["tokens"]`): what it gets.
        """
        check_output_type(output_type, False, self)
        check_bool("return_dict", return_dict)
        batch_size, labels = batch_and_class_labels(
            batch_size, class_labels, self.num_classes, num_images_per_prompt, self.device, self.bytes_per_image()
        )
        first = self.first_tokens(labels, batch_size)
        tokens = torch.cat([first, first.new_zeros(batch_size, self.num_pixels)], dim=1)  # (B, 1 + D)
        known = torch.zeros_like(tokens, dtype=torch.bool)
        known[:, 0] = True
        sampled = self._sample(
            tokens, known, generator, temperature, callback_on_step_end, callback_on_step_end_tensor_inputs
        )
        images = self._tokens_to_output(sampled[:, 1:], output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)

    @torch.no_grad()
    def complete(
        self,
        images: ImageInput,
        known_rows: int | None = None,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        class_labels: int | list[int] | torch.Tensor | None = None,
        temperature: float = 1.0,
        output_type: OutputType = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        r"""Keep the known pixels of `images` and sample the others, each given every pixel before it.

        The other arguments are those of `__call__`.

        Args:
            images (`list[PIL.Image]` or `torch.Tensor` (B, C, H, W) in [0, 1]): the partly known images.
            known_rows (`int`, *optional*): the top rows are known, the rest is sampled (the classic completion).
            mask (`torch.Tensor` (H, W) or (B, H, W) of bools, *optional*): True where a pixel is known. Unknown pixels
                see only the pixels before them in raster order, known or sampled.
        """
        tokens = self._images_to_tokens(images)  # (B, D)
        batch, (side, channels) = tokens.shape[0], (self.config.resolution, self.config.channels)
        if (known_rows is None) == (mask is None):
            raise ValueError("Pass exactly one of known_rows (top rows kept) or mask (True where known).")
        if known_rows is not None:
            if not 0 <= known_rows <= side:
                raise ValueError(f"known_rows must be in [0, {side}], got {known_rows}.")
            mask = torch.zeros(side, side, dtype=torch.bool)
            mask[:known_rows] = True
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if mask.shape[-2:] != (side, side) or mask.ndim not in (2, 3):
            raise ValueError(f"mask must be shaped ({side}, {side}) or (B, {side}, {side}), got {tuple(mask.shape)}.")
        mask = mask.expand(batch, side, side).unsqueeze(1).expand(batch, channels, side, side)
        known = torch.cat([torch.ones(batch, 1, dtype=torch.bool), raster(mask)], dim=1).to(self.device)
        tokens = torch.cat([self.first_tokens(class_labels, batch), tokens], dim=1)
        completed = self._tokens_to_output(self._sample(tokens, known, generator, temperature)[:, 1:], output_type)
        return ImagePipelineOutput(images=completed) if return_dict else (completed,)

    @torch.no_grad()
    def log_likelihood(
        self,
        images: ImageInput,
        class_labels: int | list[int] | torch.Tensor | None = None,
        batch_size: int = 256,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Exact log p(image) in nats, (B,) float64; bits/dim = -log_likelihood / (D ln 2), D = `num_pixels`.

        Images are PIL images or tensors in [0, 1]. `generator` is part of the likelihood contract every hfgen
        pipeline shares; an exact likelihood draws nothing, so it is unused here.

        Class-conditional models give log p(image | class) when `class_labels` are passed, and otherwise the
        marginal log p(image) = logsumexp_c log p(image | c) - log C under a uniform class prior (C passes).
        """
        pixels = self._images_to_tokens(images)  # (B, D)
        if self.config.num_classes is not None and class_labels is None:
            per_class = [self._log_likelihood(pixels, c, batch_size) for c in range(self.config.num_classes)]
            return torch.logsumexp(torch.stack(per_class), dim=0) - math.log(self.config.num_classes)
        return self._log_likelihood(pixels, class_labels, batch_size)

    def _log_likelihood(
        self, pixels: torch.Tensor, class_labels: int | list[int] | torch.Tensor | None, batch_size: int
    ) -> torch.Tensor:
        tokens = torch.cat([self.first_tokens(class_labels, pixels.shape[0]), pixels], dim=1)  # (B, 1 + D)
        totals = []
        for chunk in tokens.split(batch_size):
            logits = self.model(chunk[:, :-1], use_cache=False).logits  # (b, D, vocab): position i predicts pixel i
            totals.append(grey_level_log_probs(logits, chunk[:, 1:], self.config.grey_levels).double().sum(-1))
        return torch.cat(totals)

    def bits_per_dim(self, images: ImageInput, class_labels: int | list[int] | torch.Tensor | None = None) -> float:
        """Mean negative log2-likelihood per pixel (and channel) over `images`."""
        return float(-self.log_likelihood(images, class_labels).mean() / (self.num_pixels * math.log(2)))
