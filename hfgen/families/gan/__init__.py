"""The GAN family: a generator that turns latent noise into images and a discriminator that tells real from fake."""

from transformers import AutoConfig

from ...hub.components import register_hub_components
from .configuration_gan import GANConfig
from .modeling_gan import GANDiscriminator, GANDiscriminatorOutput, GANGenerator, GANGeneratorOutput
from .pipeline_gan import GANPipeline

# AutoConfig only: AutoModel maps one config to one class, and GANConfig describes two networks.
AutoConfig.register(GANConfig.model_type, GANConfig, exist_ok=True)
# `GANPipeline.from_pretrained("owner/name")` downloads: diffusers accepts hfgen's component modules.
register_hub_components(GANGenerator, GANDiscriminator)

__all__ = ["GANConfig", "GANDiscriminator", "GANDiscriminatorOutput", "GANGenerator", "GANGeneratorOutput", "GANPipeline"]
