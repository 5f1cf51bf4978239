"""The one part of training that differs between families: the objective.

The Trainer (`trainer.py`) owns everything else - Accelerate, accumulation, clipping, LR schedules, EMA,
checkpoints, resume, logs and sample grids - and talks to a family only through this contract, in the
order below:

1. ``build_modules() -> dict[str, nn.Module]``: the trainable networks, built from the family's model
   configs; new ones at every call. The Trainer trains the first call's (made after seeding, so the weights are
   the same on every process and every run) and gathers the whole weights into later ones for grids and saving.
2. ``optimizers() -> dict[str, OptimizerSpec]``: one optimizer per entry, called a *phase*. Each step the
   Trainer runs the phases in dict order; the default is a single phase ``"model"`` over every module.
   While a phase runs, the parameters of every other phase are frozen (``requires_grad=False``), so a
   phase's backward only reaches its own optimizer's parameters.
3. ``ema_modules``: names of modules that get an EMA copy; samples and the saved weights use the EMA.
4. ``train_dataset() -> datasets.Dataset``: rows indexable by a list of indices that come back as a dict
   of batched tensors (a batched ``with_transform``).
5. ``compute_loss(phase, batch, modules, randomness) -> ObjectiveOutput``: the loss for that phase on a
   micro-batch (a mean over its samples), plus named scalar terms to log. ``modules`` maps names to the
   *prepared* (possibly DDP-wrapped) modules; ``modules.unwrapped(name)`` gives the bare module, e.g. to run a
   frozen network without DDP hooks. Every random number comes from ``randomness`` (`hfgen.randomness`: one
   generator per sample and purpose), never from torch's global RNG, so the run does not depend on how its
   global batch is split over processes; ``randomness.step`` is the optimizer step, for schedules.
6. ``samples(modules, num, generator)``: images in [-1, 1] shaped (B, C, H, W) for the sample grid, or a
   list of strings for text models. Called on the main process with EMA weights, under ``no_grad``.
7. ``save_pretrained(modules, output_dir)``: write the Hub-ready weights and configs (safetensors).
8. Optional ``state_dict()`` / ``load_state_dict(state)``: an objective with state of its own defines both, and
   the Trainer saves and restores it with every checkpoint.

How the families fit it:

- diffusion: one phase; ``compute_loss`` noises images, returns MSE to epsilon or v.
- VAE: one phase; ``logs`` carries ``reconstruction``, ``kl`` and ``beta`` (warmed up by ``randomness.step``)
  beside the ELBO loss.
- GAN: ``optimizers()`` returns ``{"discriminator": ..., "generator": ...}`` with their own learning
  rates (TTUR); the discriminator phase makes fakes with ``modules.unwrapped("generator")`` under
  ``no_grad``, the generator phase scores fakes with ``modules.unwrapped("discriminator")`` (frozen, so no
  DDP reduction is expected for it). The Trainer runs each phase over all the micro-batches of an optimizer
  step before the next phase, so the generator always meets the discriminator already updated on the whole
  global batch, however it is split.
- autoregressive: ``train_dataset()`` yields token blocks ``{"input_ids": (B, T)}``; ``samples`` returns
  text; ``validation_logs`` reports validation loss and perplexity.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

import datasets
import torch
from torch import nn

from .randomness import SampleRandomness


@dataclass
class ObjectiveOutput:
    """The loss to backpropagate and the named scalar terms to log (detached by the Trainer)."""

    loss: torch.Tensor
    logs: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimizerSpec:
    """Which modules one AdamW optimizer trains, with an optional learning rate / betas of its own."""

    modules: tuple[str, ...]
    learning_rate: float | None = None
    betas: tuple[float, float] | None = None


class PreparedModules(Mapping[str, nn.Module]):
    """Name -> prepared module (maybe DDP-wrapped), with `unwrapped(name)` for the bare network."""

    def __init__(self, prepared: dict[str, nn.Module], unwrap: callable) -> None:
        self._prepared = prepared
        self._unwrap = unwrap

    def __getitem__(self, name: str) -> nn.Module:
        return self._prepared[name]

    def __iter__(self):
        return iter(self._prepared)

    def __len__(self) -> int:
        return len(self._prepared)

    def unwrapped(self, name: str) -> nn.Module:
        return self._unwrap(self._prepared[name])


class Objective(ABC):
    """A family's training objective; see the module docstring for the contract."""

    ema_modules: tuple[str, ...] = ()

    @abstractmethod
    def build_modules(self) -> dict[str, nn.Module]: ...

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"model": OptimizerSpec(modules=tuple(self.module_names))}

    @property
    @abstractmethod
    def module_names(self) -> tuple[str, ...]: ...

    @abstractmethod
    def train_dataset(self) -> datasets.Dataset: ...

    @abstractmethod
    def compute_loss(
        self, phase: str, batch: dict[str, torch.Tensor], modules: PreparedModules, randomness: SampleRandomness
    ) -> ObjectiveOutput: ...

    @abstractmethod
    def samples(
        self, modules: Mapping[str, nn.Module], num: int, generator: torch.Generator
    ) -> torch.Tensor | list[str]: ...

    def validation_logs(self, modules: Mapping[str, nn.Module]) -> dict[str, float]:
        """Held-out metrics logged with each sample grid (e.g. validation loss); none by default."""
        return {}

    @abstractmethod
    def save_pretrained(self, modules: Mapping[str, nn.Module], output_dir: str | os.PathLike) -> None: ...
