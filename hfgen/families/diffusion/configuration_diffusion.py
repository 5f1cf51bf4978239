"""Default `UNet2DModel` sizes: small enough to train on 8x8 digits on a laptop CPU, scaled by resolution."""

from __future__ import annotations

from typing import Any


def default_unet_config(
    resolution: int,
    channels: int,
    num_classes: int | None = None,
    block_out_channels: tuple[int, ...] | None = None,
    layers_per_block: int = 1,
    *,
    attention_levels: tuple[int, ...] | None = None,
    attention_head_dim: int = 16,
    norm_num_groups: int = 8,
    dropout: float = 0.0,
) -> dict[str, Any]:
    """A `UNet2DModel` config for square images of side `resolution`.

    Halve the resolution while it stays even and >= 2 (8 -> 4 -> 2, 28 -> 14 -> 7, 32 -> 16 -> 8 -> 4), at
    most four levels; self-attention at `attention_levels` (0 is full resolution), by default only where the
    feature map is 4x4 or smaller, where it is cheap. Class-conditional models get `num_classes + 1`
    embeddings: the last index is the "no class" label that classifier-free guidance needs. The keyword-only
    options default to the small CPU-sized network; published ones (Ho et al.'s, `presets.py`) set them.
    """
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2 pixels, got {resolution}.")
    sizes = [resolution]
    while len(sizes) < 4 and sizes[-1] % 2 == 0 and sizes[-1] // 2 >= 2:
        sizes.append(sizes[-1] // 2)
    if block_out_channels is None:
        block_out_channels = (32, 64, 64, 128)[: len(sizes)]
    if len(block_out_channels) != len(sizes):
        raise ValueError(
            f"block_out_channels has {len(block_out_channels)} entries but resolution {resolution} gives "
            f"{len(sizes)} UNet levels ({' -> '.join(map(str, sizes))}): pass {len(sizes)} channel counts."
        )
    if attention_levels is None:
        attention = [size <= 4 for size in sizes]
    elif all(0 <= level < len(sizes) for level in attention_levels):
        attention = [level in attention_levels for level in range(len(sizes))]
    else:
        raise ValueError(
            f"attention_levels {list(attention_levels)} name levels outside the {len(sizes)} of resolution {resolution}: "
            f"use levels 0 to {len(sizes) - 1}."
        )
    return {
        "sample_size": resolution,
        "in_channels": channels,
        "out_channels": channels,
        "block_out_channels": tuple(block_out_channels),
        "layers_per_block": layers_per_block,
        "down_block_types": tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention),
        "up_block_types": tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)),
        "norm_num_groups": norm_num_groups,
        "attention_head_dim": attention_head_dim,
        "dropout": dropout,
        "num_class_embeds": num_classes + 1 if num_classes else None,
    }
