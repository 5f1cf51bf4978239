"""Class labels as every class-conditional pipeline takes them: one label for the batch, or one per image."""

from __future__ import annotations

import torch

ClassLabels = int | list[int] | torch.Tensor


def class_label_tensor(
    class_labels: ClassLabels, batch_size: int, num_classes: int | None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """-> (batch_size,) long tensor, refusing labels for an unconditional model and labels out of range.

    What `None` means differs by family (the "no class" label, cycling through classes, an error), so callers
    decide that before calling.
    """
    if num_classes is None:
        raise ValueError("class_labels were given but this model is unconditional: drop class_labels.")
    labels = torch.as_tensor(class_labels, dtype=torch.long, device=device).reshape(-1)
    if labels.numel() == 1:
        labels = labels.expand(batch_size)
    if labels.numel() != batch_size:
        raise ValueError(f"Got {labels.numel()} class_labels for batch_size {batch_size}: pass one label or one per image.")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"class_labels must be in [0, {num_classes - 1}], got {labels.tolist()}.")
    return labels
