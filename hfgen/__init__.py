"""hfgen: a zoo of generative models - GAN, VAE, autoregressive, diffusion, latent diffusion - native to the Hugging Face ecosystem.

The public names below are imported lazily (transformers' `_LazyModule` idea, with a module `__getattr__`):
`import hfgen` and `hfgen --help` load no model code, and `from hfgen import VAEPipeline` imports the VAE family
only. Saved folders name the module paths under `hfgen.families` (`model_index.json`, `auto_map`), so those
paths are frozen; these top-level names are the stable way to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "DiffusionImagePipeline": "hfgen.families.diffusion",
    "GANConfig": "hfgen.families.gan",
    "GANDiscriminator": "hfgen.families.gan",
    "GANGenerator": "hfgen.families.gan",
    "GANPipeline": "hfgen.families.gan",
    "HfgenGPTConfig": "hfgen.families.autoregressive",
    "HfgenGPTForCausalLM": "hfgen.families.autoregressive",
    "HfgenGPTModel": "hfgen.families.autoregressive",
    "LatentDiffusionPipeline": "hfgen.families.latent_diffusion",
    "PixelGPTPipeline": "hfgen.families.autoregressive",
    "VAEConfig": "hfgen.families.vae",
    "VAEModel": "hfgen.families.vae",
    "VAEPipeline": "hfgen.families.vae",
}
"""Public name -> the family package that defines it."""

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hfgen' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from .families.autoregressive import HfgenGPTConfig, HfgenGPTForCausalLM, HfgenGPTModel, PixelGPTPipeline
    from .families.diffusion import DiffusionImagePipeline
    from .families.gan import GANConfig, GANDiscriminator, GANGenerator, GANPipeline
    from .families.latent_diffusion import LatentDiffusionPipeline
    from .families.vae import VAEConfig, VAEModel, VAEPipeline
