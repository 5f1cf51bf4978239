from transformers import AutoConfig, AutoModel

from .configuration_vae import VAEConfig
from .modeling_vae import VAEModel, VAEOutput
from .pipeline_vae import VAEPipeline

# `AutoModel.from_pretrained("out/vae-digits/vae")` works once hfgen is imported.
AutoConfig.register(VAEConfig.model_type, VAEConfig)
AutoModel.register(VAEConfig, VAEModel)

__all__ = ["VAEConfig", "VAEModel", "VAEOutput", "VAEPipeline"]
