"""diffusers' step-end callbacks for hfgen's step-by-step pipelines (diffusion denoising, pixel-by-pixel sampling).

After each step the pipeline calls `callback_on_step_end(pipe, step, timestep, callback_kwargs)` with the tensors
named in `callback_on_step_end_tensor_inputs` (a subset of the pipeline's `_callback_tensor_inputs`); the callback
returns a dict, whose tensors replace the pipeline's, and may stop the loop with `pipe._interrupt = True`.
diffusers' callback objects (`PipelineCallback`, `MultiPipelineCallbacks`) name their own tensor inputs.

As in diffusers, `pipe.num_timesteps` is the number of steps of the running call, and the state a callback may change
between steps sits behind properties: `pipe._guidance_scale` (diffusion) and `pipe._temperature` (pixel sampling).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback

from .call_checks import check_tensor_names

# callback(pipe, step, timestep, callback_kwargs) -> tensors to replace, or one of diffusers' callback objects
StepCallback = (
    Callable[[Any, int, Any, dict[str, torch.Tensor]], dict[str, torch.Tensor]] | PipelineCallback | MultiPipelineCallbacks
)


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
        check_tensor_names(tensor_inputs)
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
        self,
        callback: StepCallback | None,
        tensor_inputs: list[str],
        step: int,
        timestep: Any,
        tensors: dict[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Hand the callback the requested tensors; -> `tensors` with whatever it returned replacing them."""
        if callback is None:
            return tensors
        outputs = callback(self, step, timestep, {name: tensors[name] for name in tensor_inputs}) or {}
        return {name: outputs.get(name, tensor) for name, tensor in tensors.items()}


class ClassCFGCutoffCallback(PipelineCallback):
    """diffusers' `SDCFGCutoffCallback` for class-conditional diffusion: classifier-free guidance stops after step
    `cutoff_step_index`, or `int(pipe.num_timesteps * cutoff_step_ratio)`, halving each later UNet call.

    Late steps refine detail the class no longer decides, so guiding only the early ones keeps most of its effect
    at a fraction of the cost. Like diffusers' callback it drops the unconditional half of the UNet's inputs (here
    the "no class" labels) and sets `pipe._guidance_scale = 0.0`:
    `pipe(class_labels=3, guidance_scale=3.0, callback_on_step_end=ClassCFGCutoffCallback(cutoff_step_ratio=0.4))`.
    """

    tensor_inputs = ["class_labels"]

    def callback_fn(
        self, pipeline: Any, step_index: int, timestep: Any, callback_kwargs: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        index, ratio = self.config.cutoff_step_index, self.config.cutoff_step_ratio
        if step_index == (index if index is not None else int(pipeline.num_timesteps * ratio)):
            labels = callback_kwargs["class_labels"]
            if pipeline.do_classifier_free_guidance:  # labels holds the conditional half, then the unconditional one
                callback_kwargs["class_labels"] = labels[: len(labels) // 2]
            pipeline._guidance_scale = 0.0
        return callback_kwargs
