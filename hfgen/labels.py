"""Class labels as every class-conditional pipeline takes them: one label for the batch, or one per image."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch

from .call_checks import check_batch_memory, check_int

ClassLabels = int | list[int] | torch.Tensor


def check_class_labels(class_labels: object) -> None:
    """Integers only: `torch.as_tensor(2.5, dtype=torch.long)` would quietly make class 2 of a float (and nan any
    class at all)."""
    values = class_labels.tolist() if isinstance(class_labels, (torch.Tensor, np.ndarray)) else class_labels
    values = values if isinstance(values, (list, tuple)) else [values]
    if not all(isinstance(value, Integral) and not isinstance(value, bool) for value in values):
        bad = next(value for value in values if isinstance(value, bool) or not isinstance(value, Integral))
        raise TypeError(
            f"class_labels must be an int, a list of ints or an integer tensor, got {type(bad).__name__} {bad!r}: "
            "pass class indices such as class_labels=3 or [3, 5]."
        )


def class_label_tensor(
    class_labels: ClassLabels, batch_size: int, num_classes: int | None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """-> (batch_size,) long tensor, refusing labels for an unconditional model and labels out of range.

    What `None` means differs by family (the "no class" label, cycling through classes, an error), so callers
    decide that before calling.
    """
    if num_classes is None:
        raise ValueError("class_labels were given but this model is unconditional: drop class_labels.")
    check_class_labels(class_labels)
    labels = torch.as_tensor(class_labels, dtype=torch.long, device=device).reshape(-1)
    if labels.numel() == 1:
        labels = labels.expand(batch_size)
    if labels.numel() != batch_size:
        raise ValueError(f"Got {labels.numel()} class_labels for batch_size {batch_size}: pass one label or one per image.")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"class_labels must be in [0, {num_classes - 1}], got {labels.tolist()}.")
    return labels


def batch_and_class_labels(
    batch_size: int | None,
    class_labels: ClassLabels | None,
    num_classes: int | None,
    num_images_per_prompt: int = 1,
    device: torch.device | str = "cpu",
    bytes_per_image: int = 0,
) -> tuple[int, torch.Tensor | None]:
    """-> (images to generate, their (images,) labels, or None when no labels were given).

    diffusers' rules, with class labels as the prompts: without `batch_size` the batch is one image per label
    (`DiTPipeline`), and each of the `batch_size` images (or labels) is drawn `num_images_per_prompt` times, copies
    side by side. What no labels means differs by family, so callers handle None. A batch whose `bytes_per_image`
    would not fit in `device`'s free memory is refused before any label is expanded to it.
    """
    if isinstance(num_images_per_prompt, bool) or not isinstance(num_images_per_prompt, int) or num_images_per_prompt <= 0:
        raise ValueError(f"num_images_per_prompt must be a positive integer, got {num_images_per_prompt!r}.")
    check_int("batch_size", batch_size, optional=True)
    if class_labels is not None:
        check_class_labels(class_labels)
    if batch_size is None:
        batch_size = 1 if class_labels is None else torch.as_tensor(class_labels).numel()
        if batch_size == 0:
            raise ValueError("class_labels is empty: pass at least one label, or drop class_labels.")
    check_batch_memory(batch_size * num_images_per_prompt, bytes_per_image, device)
    labels = None if class_labels is None else class_label_tensor(class_labels, batch_size, num_classes, device)
    if labels is not None:
        labels = labels.repeat_interleave(num_images_per_prompt)
    return batch_size * num_images_per_prompt, labels
