from .pipeline_latent_diffusion import LatentDiffusionPipeline

__all__ = ["LatentDiffusionPipeline"]
