from ...registration import register_pipelines
from .configuration_diffusion import default_unet_config
from .pipeline_diffusion import DiffusionImagePipeline

register_pipelines(DiffusionImagePipeline)

__all__ = ["DiffusionImagePipeline", "default_unet_config"]
