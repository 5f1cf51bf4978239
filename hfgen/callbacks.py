"""diffusers' step-end callbacks for hfgen's step-by-step pipelines (diffusion denoising, pixel-by-pixel sampling).

After each step the pipeline calls `callback_on_step_end(pipe, step, timestep, callback_kwargs)` with the tensors
named in `callback_on_step_end_tensor_inputs` (a subset of the pipeline's `_callback_tensor_inputs`); the callback
returns a dict, whose tensors replace the pipeline's, and may stop the loop with `pipe._interrupt = True`.
diffusers' callback objects (`PipelineCallback`, `MultiPipelineCallbacks`) name their own tensor inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback

StepCallback = Callable[[Any, int, Any, dict[str, torch.Tensor]], dict[str, torch.Tensor]] | PipelineCallback | MultiPipelineCallbacks


class StepCallbacksMixin:
    """Mixed into a `DiffusionPipeline` whose `__call__` runs a loop of steps."""

    _callback_tensor_inputs: list[str] = []
    _interrupt: bool = False

    @property
    def interrupt(self) -> bool:
        """Set by a callback (`pipe._interrupt = True`) to stop the loop after the current step."""
        return self._interrupt

    def start_steps(self, callback: StepCallback | None, tensor_inputs: list[str] | tuple[str, ...]) -> list[str]:
        """Reset the interrupt flag and check the callback's tensor inputs -> the names to hand it."""
        self._interrupt = False
        if callback is not None and not callable(callback):
            raise TypeError(f"callback_on_step_end must be callable, got {type(callback).__name__}.")
        if isinstance(callback, (PipelineCallback, MultiPipelineCallbacks)):
            tensor_inputs = callback.tensor_inputs
        unknown = [name for name in tensor_inputs if name not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(
                f"callback_on_step_end_tensor_inputs {unknown} are not offered by {type(self).__name__}: "
                f"use names from {self._callback_tensor_inputs}."
            )
        return list(tensor_inputs)

    def end_step(
        self, callback: StepCallback | None, tensor_inputs: list[str], step: int, timestep: Any, tensors: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Hand the callback the requested tensors; -> `tensors` with whatever it returned replacing them."""
        if callback is None:
            return tensors
        outputs = callback(self, step, timestep, {name: tensors[name] for name in tensor_inputs}) or {}
        return {name: outputs.get(name, tensor) for name, tensor in tensors.items()}
