"""GAN objective: a discriminator phase then a generator phase per step, each with its own optimizer (TTUR).

Discriminator phase: fakes come from the bare generator under `no_grad` (its parameters are frozen anyway);
real, fake and - for WGAN-GP - interpolated images go through the discriminator in ONE concatenated batch.
That single pass is the BatchNorm-under-DDP choice: a DDP module broadcasts its buffers in place at every
forward, so two forwards (real, then fake) before one backward overwrite BatchNorm buffers between them - the
reported source of "modified by an inplace operation" errors in DDP GAN code (CUDA reports; a 2-process gloo
check on CPU with torch 2.13 did not reproduce it). One pass per backward never has a second broadcast, needs
no SyncBatchNorm or `broadcast_buffers=False`, and is one kernel launch instead of two. The price: with
`discriminator_norm="batch"` the statistics are those of the mixed real+fake batch (as in BigGAN's code).
Gradient penalties (R1, WGAN-GP) need each sample's score to depend on that sample alone, so they refuse
batch norm in the discriminator.

Generator phase: fakes from the DDP-wrapped generator, scored by the bare discriminator (frozen, so no DDP
reduction is due for it).

Spectral norm's power iteration (its running estimate of each layer's largest singular value) advances once per
optimizer step, at the discriminator phase's first forward - Miyato et al. (2018)'s Algorithm 1, one iteration per
update of D - not once per forward as torch does in training mode: so neither the generator phase nor the number of
micro-batches a step is split into changes it (`hfgen.randomness`).

Logged besides `discriminator_loss` / `generator_loss`: `d_real_logit` and `d_fake_logit` (mean raw logits
of the discriminator on the real and fake halves, before any sigmoid), `d_accuracy` (share of real scored > 0
and fake < 0: 0.5 is chance), and the penalties in use.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

import datasets
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import _SpectralNorm

from ...arguments import DataArguments, require_non_negative, require_positive
from ...data import describe_images
from ...loading import load_pipeline
from ...objective import Objective, ObjectiveOutput, OptimizerSpec, PreparedModules
from ...randomness import SampleRandomness
from . import GANConfig, GANDiscriminator, GANGenerator, GANPipeline
from .diffaugment import diff_augment, parse_policy


@dataclass(frozen=True)
class AdversarialLoss:
    """The two sides of one GAN game, on raw logits (never a sigmoid followed by BCELoss)."""

    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (real logits, fake logits) -> loss
    generator: Callable[[torch.Tensor], torch.Tensor]  # fake logits -> loss


LOSSES: dict[str, AdversarialLoss] = {
    # Goodfellow et al. 2014, non-saturating generator: softplus(-x) is BCEWithLogits(x, target=1).
    "non_saturating": AdversarialLoss(
        discriminator=lambda real, fake: F.softplus(-real).mean() + F.softplus(fake).mean(),
        generator=lambda fake: F.softplus(-fake).mean(),
    ),
    # Lim & Ye 2017; Miyato et al. 2018 (with spectral norm).
    "hinge": AdversarialLoss(
        discriminator=lambda real, fake: F.relu(1 - real).mean() + F.relu(1 + fake).mean(),
        generator=lambda fake: -fake.mean(),
    ),
    # Gulrajani et al. 2017: the critic's Wasserstein estimate; its gradient penalty is added in the objective.
    "wgan_gp": AdversarialLoss(
        discriminator=lambda real, fake: fake.mean() - real.mean(),
        generator=lambda fake: -fake.mean(),
    ),
}
LossName = Literal["non_saturating", "hinge", "wgan_gp"]


@dataclass
class GANArguments:
    """Build the GANConfig (saved with both networks) and choose the game: loss, penalties, learning rates."""

    latent_dim: int = field(default=64, metadata={"help": "Size of the latent z the generator starts from."})
    generator_channels: int = field(default=128, metadata={"help": "Generator width at its smallest feature map."})
    discriminator_channels: int = field(default=64, metadata={"help": "Discriminator width at full resolution."})
    generator_norm: Literal["batch", "layer", "none"] = "batch"
    discriminator_norm: Literal["batch", "layer", "none"] = field(
        default="none", metadata={"help": "'batch' is DCGAN's; penalties (R1, WGAN-GP) need 'layer' or 'none'."}
    )
    spectral_norm: bool = field(default=True, metadata={"help": "Spectral normalisation of the discriminator."})
    layout: Literal["hfgen", "dcgan"] = field(
        default="hfgen", metadata={"help": "hfgen: 3x3 convs at the image; dcgan: Radford et al.'s exact stack (GANConfig)."}
    )
    class_conditional: bool = field(default=False, metadata={"help": "Class embedding in G, projection in D."})
    loss: LossName = field(default="hinge", metadata={"help": "non_saturating, hinge or wgan_gp."})
    gradient_penalty_weight: float = field(default=10.0, metadata={"help": "WGAN-GP lambda (wgan_gp only)."})
    r1_gamma: float = field(default=0.0, metadata={"help": "R1 penalty weight on real images (Mescheder et al. 2018); 0: off."})
    diffaugment: str = field(
        default="",
        metadata={"help": "DiffAugment policy (Zhao et al. 2020): a comma-separated subset of color,translation,cutout, "
                          "applied to every image D sees; the paper's for small data: color,translation,cutout. '': off."},
    )
    generator_learning_rate: float = field(default=2e-4, metadata={"help": "Generator Adam learning rate."})
    discriminator_learning_rate: float = field(
        default=2e-4, metadata={"help": "Discriminator Adam learning rate (TTUR: often higher)."}
    )
    adam_betas: list[float] = field(
        default_factory=lambda: [0.5, 0.999], metadata={"help": "Adam betas of both networks (DCGAN's 0.5 0.999; or 0.0 0.99)."}
    )
    init_from: str | None = field(
        default=None, metadata={"help": "A GAN folder (or Hub id) saved with its discriminator: fine-tune both networks."}
    )

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"Unknown loss {self.loss!r}: use one of {', '.join(LOSSES)}.")
        require_positive(
            self, "generator_learning_rate", "discriminator_learning_rate", "gradient_penalty_weight", "latent_dim",
            "generator_channels", "discriminator_channels",
        )
        require_non_negative(self, "r1_gamma")
        parse_policy(self.diffaugment)
        if len(self.adam_betas) != 2 or not all(0.0 <= b < 1.0 for b in self.adam_betas):
            raise ValueError(f"--adam_betas needs two values in [0, 1), e.g. 0.5 0.999; got {self.adam_betas}.")
        if self.discriminator_norm == "batch" and (self.loss == "wgan_gp" or self.r1_gamma > 0):
            raise ValueError(
                "Gradient penalties (wgan_gp, --r1_gamma) need per-sample discriminator scores, which batch norm "
                "mixes across the batch: use --discriminator_norm layer or none."
            )

    def gan_config(self, image_size: int, num_channels: int, num_classes: int | None) -> GANConfig:
        """The config of both networks these options build for such images (labels: `num_classes`)."""
        return GANConfig(
            latent_dim=self.latent_dim,
            image_size=image_size,
            num_channels=num_channels,
            generator_channels=self.generator_channels,
            discriminator_channels=self.discriminator_channels,
            num_classes=num_classes if self.class_conditional else None,
            generator_norm=self.generator_norm,
            discriminator_norm=self.discriminator_norm,
            spectral_norm=self.spectral_norm,
            layout=self.layout,
        )


@contextlib.contextmanager
def power_iteration(discriminator: nn.Module, enabled: bool) -> Iterator[None]:
    """Let spectral norm advance its power iteration in the forwards inside (torch does in training mode), or not."""
    paused = [] if enabled else [m for m in discriminator.modules() if isinstance(m, _SpectralNorm) and m.training]
    for norm in paused:
        norm.eval()  # uses the current singular vectors without updating them
    try:
        yield
    finally:
        for norm in paused:
            norm.train()


class GANObjective(Objective):
    """The adversarial game: D learns to score real above fake, G learns to raise D's score of its fakes."""

    module_names = ("generator", "discriminator")
    ema_modules = ("generator",)
    power_iteration_step: int | None = None
    """The optimizer step whose discriminator phase last advanced spectral norm's power iteration."""

    def __init__(self, arguments: GANArguments, data: DataArguments) -> None:
        self.arguments, self.data = arguments, data
        self.loss = LOSSES[arguments.loss]
        self.dataset = data.load_images("train")
        self.info = describe_images(self.dataset, data.dataset, data.resolution, data.channels)
        if arguments.class_conditional and self.info.num_classes is None:
            raise ValueError(f"--class_conditional needs labels, but dataset {data.dataset!r} has none: drop the flag.")
        self.pretrained = self._load_pretrained(arguments.init_from) if arguments.init_from else None
        self.config = self.pretrained.gan_generator.config if self.pretrained else arguments.gan_config(
            self.info.resolution, self.info.channels, self.info.num_classes
        )

    def _load_pretrained(self, path: str) -> GANPipeline:
        """Both networks of a saved GAN, checked against the data they will now train on."""
        pipe = load_pipeline(path)
        if not isinstance(pipe, GANPipeline):
            raise ValueError(
                f"--init_from {path!r} holds a {type(pipe).__name__}, not a GAN: pass a folder written by `hfgen train gan`."
            )
        if pipe.discriminator is None:
            raise ValueError(f"--init_from {path!r} was saved without its discriminator: pass a folder that has discriminator/.")
        config = pipe.gan_generator.config
        if (config.image_size, config.num_channels) != (self.info.resolution, self.info.channels):
            raise ValueError(
                f"--init_from {path!r} makes {config.num_channels}x{config.image_size}x{config.image_size} images but "
                f"the data is {self.info.channels}x{self.info.resolution}x{self.info.resolution}: "
                "pass --resolution/--channels to match."
            )
        return pipe

    def build_modules(self) -> dict[str, nn.Module]:
        if self.pretrained:
            pretrained = copy.deepcopy(self.pretrained)  # new networks at every call, as the contract says
            return {"generator": pretrained.gan_generator.train(), "discriminator": pretrained.discriminator.train()}
        return {"generator": GANGenerator(self.config), "discriminator": GANDiscriminator(self.config)}

    def optimizers(self) -> dict[str, OptimizerSpec]:
        betas = tuple(self.arguments.adam_betas)
        return {
            "discriminator": OptimizerSpec(("discriminator",), self.arguments.discriminator_learning_rate, betas),
            "generator": OptimizerSpec(("generator",), self.arguments.generator_learning_rate, betas),
        }

    def train_dataset(self) -> datasets.Dataset:
        return self.dataset.with_transform(self.data.image_transform(self.info.resolution, self.info.channels))

    def compute_loss(
        self, phase: str, batch: dict[str, torch.Tensor], modules: PreparedModules, randomness: SampleRandomness
    ) -> ObjectiveOutput:
        real = batch["pixel_values"]  # (B, C, H, W) in [-1, 1]
        labels = batch["labels"] if self.config.num_classes else None  # fakes share the real batch's classes
        latents = randomness.normal(f"{phase}_latent", (self.config.latent_dim,), real.dtype)  # (B, latent_dim)
        iterate = phase == "discriminator" and randomness.step != self.power_iteration_step
        if iterate:
            self.power_iteration_step = randomness.step
        with power_iteration(modules.unwrapped("discriminator"), iterate):
            if phase == "discriminator":
                return self._discriminator_loss(real, latents, labels, modules, randomness)
            fake = self._augment(modules["generator"](latents, class_labels=labels).sample, randomness, "generator/fake")
            fake_logits = modules.unwrapped("discriminator")(fake, class_labels=labels).logits
        return ObjectiveOutput(self.loss.generator(fake_logits))

    def _augment(self, images: torch.Tensor, randomness: SampleRandomness, purpose: str) -> torch.Tensor:
        """`--diffaugment`'s transforms (none by default) of images on their way into the discriminator."""
        return diff_augment(images, parse_policy(self.arguments.diffaugment), randomness, purpose)

    def _discriminator_loss(
        self, real: torch.Tensor, latents: torch.Tensor, labels: torch.Tensor | None, modules: PreparedModules,
        randomness: SampleRandomness,
    ) -> ObjectiveOutput:
        batch_size = real.shape[0]
        with torch.no_grad():
            fake = modules.unwrapped("generator")(latents, class_labels=labels).sample
        parts = [self._augment(real, randomness, "discriminator/real"), self._augment(fake, randomness, "discriminator/fake")]
        real, fake = parts
        gradient_penalty = self.arguments.loss == "wgan_gp"
        if gradient_penalty:  # random points on the lines between real and fake samples
            weights = randomness.uniform("interpolation", (1, 1, 1))
            parts.append(torch.lerp(fake, real, weights))
        penalised = gradient_penalty or self.arguments.r1_gamma > 0
        inputs = torch.cat(parts).requires_grad_(penalised)  # (n B, C, H, W): one pass, see the module docstring
        part_labels = labels.repeat(len(parts)) if labels is not None else None
        logits = modules["discriminator"](inputs, class_labels=part_labels).logits  # (n B,)
        real_logits, fake_logits, *interpolated_logits = logits.split(batch_size)
        loss = self.loss.discriminator(real_logits, fake_logits)
        accuracy = ((real_logits > 0).float().mean() + (fake_logits < 0).float().mean()) / 2
        logs = {"d_real_logit": real_logits.mean(), "d_fake_logit": fake_logits.mean(), "d_accuracy": accuracy}
        if penalised:
            # Each sample's score depends on that sample alone, so one gradient call serves both penalties:
            # rows [0, B) hold d(real score)/d(real), rows [2B, 3B) d(interpolate score)/d(interpolate).
            scored = (real_logits.sum() if self.arguments.r1_gamma > 0 else 0) + sum(x.sum() for x in interpolated_logits)
            (gradients,) = torch.autograd.grad(scored, inputs, create_graph=True)
            gradients = gradients.flatten(1)  # (n B, C H W)
            if self.arguments.r1_gamma > 0:
                r1 = gradients[:batch_size].square().sum(dim=1).mean()
                loss = loss + self.arguments.r1_gamma / 2 * r1
                logs["r1_penalty"] = r1
            if gradient_penalty:
                penalty = (gradients[2 * batch_size :].norm(dim=1) - 1).square().mean()
                loss = loss + self.arguments.gradient_penalty_weight * penalty
                logs["gradient_penalty"] = penalty
        return ObjectiveOutput(loss, logs)

    def pipeline(self, modules: Mapping[str, nn.Module]) -> GANPipeline:
        return GANPipeline(gan_generator=modules["generator"], discriminator=modules["discriminator"])

    def samples(self, modules: Mapping[str, nn.Module], num: int, generator: torch.Generator) -> torch.Tensor:
        return self.pipeline(modules)(batch_size=num, generator=generator, output_type="pt").images * 2 - 1

    def save_pretrained(self, modules: Mapping[str, nn.Module], output_dir: str | os.PathLike) -> None:
        self.pipeline(modules).save_pretrained(output_dir, safe_serialization=True)
