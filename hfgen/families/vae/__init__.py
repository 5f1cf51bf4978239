from transformers import AutoConfig, AutoModel

from ...registration import register_hub_components, register_pipelines
from .configuration_vae import VAEConfig
from .modeling_vae import VAEModel, VAEOutput
from .pipeline_vae import VAEPipeline

# `AutoModel.from_pretrained("out/vae-digits/vae")` works once hfgen is imported.
AutoConfig.register(VAEConfig.model_type, VAEConfig)
AutoModel.register(VAEConfig, VAEModel)
# `VAEPipeline.from_pretrained("owner/name")` downloads: diffusers accepts hfgen's component modules.
register_hub_components(VAEModel)
register_pipelines(VAEPipeline)

__all__ = ["VAEConfig", "VAEModel", "VAEOutput", "VAEPipeline"]
