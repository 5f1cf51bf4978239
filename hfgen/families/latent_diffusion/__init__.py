from ...registration import register_pipelines
from .pipeline_latent_diffusion import LatentDiffusionPipeline

register_pipelines(LatentDiffusionPipeline)

__all__ = ["LatentDiffusionPipeline"]
