"""hfgen: a zoo of generative models - GAN, VAE, autoregressive, diffusion - native to the Hugging Face ecosystem.

Classes are re-exported here because saved checkpoints name them (`model_index.json`, `auto_map`):
`from hfgen import DiffusionImagePipeline` keeps working wherever a class's module moves.
"""

from .models.autoregressive import HfgenGPTConfig, HfgenGPTForCausalLM, HfgenGPTModel, PixelGPTPipeline
from .models.diffusion import DiffusionImagePipeline
from .models.gan import GANConfig, GANDiscriminator, GANGenerator, GANPipeline
from .models.vae import VAEConfig, VAEModel, VAEPipeline

__version__ = "0.1.0"

__all__ = [
    "DiffusionImagePipeline",
    "GANConfig",
    "GANDiscriminator",
    "GANGenerator",
    "GANPipeline",
    "HfgenGPTConfig",
    "HfgenGPTForCausalLM",
    "HfgenGPTModel",
    "PixelGPTPipeline",
    "VAEConfig",
    "VAEModel",
    "VAEPipeline",
    "__version__",
]
