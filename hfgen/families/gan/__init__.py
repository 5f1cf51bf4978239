"""The GAN family: a generator that turns latent noise into images and a discriminator that tells real from fake."""

from transformers import AutoConfig

from ...registration import register_hub_components, register_pipelines
from .configuration_gan import GANConfig
from .modeling_gan import GANDiscriminator, GANDiscriminatorOutput, GANGenerator, GANGeneratorOutput
from .pipeline_gan import GANPipeline

# AutoConfig only: AutoModel maps one config to one class, and GANConfig describes two networks.
AutoConfig.register(GANConfig.model_type, GANConfig, exist_ok=True)
# `GANPipeline.from_pretrained("owner/name")` downloads: diffusers accepts hfgen's component modules. Without
# hfgen, the generator loads with AutoModel and the discriminator - a real/fake classifier - with
# AutoModelForImageClassification (transformers maps one config class to one class per Auto class).
register_hub_components(GANGenerator, GANDiscriminator, auto_classes={GANDiscriminator: "AutoModelForImageClassification"})
register_pipelines(GANPipeline)

__all__ = ["GANConfig", "GANDiscriminator", "GANDiscriminatorOutput", "GANGenerator", "GANGeneratorOutput", "GANPipeline"]
