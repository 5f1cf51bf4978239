"""The autoregressive family: one GPT for text tokens and image pixels, registered with the transformers Auto classes."""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from ...registration import register_hub_components, register_pipelines
from .configuration_hfgen_gpt import HfgenGPTConfig
from .modeling_hfgen_gpt import HfgenGPTForCausalLM, HfgenGPTModel, HfgenGPTPreTrainedModel
from .pipeline_pixel_gpt import PixelGPTPipeline

# Once hfgen is imported, `AutoModelForCausalLM.from_pretrained(folder)` finds the class by model_type ...
AutoConfig.register(HfgenGPTConfig.model_type, HfgenGPTConfig, exist_ok=True)
AutoModel.register(HfgenGPTConfig, HfgenGPTModel, exist_ok=True)
AutoModelForCausalLM.register(HfgenGPTConfig, HfgenGPTForCausalLM, exist_ok=True)
# `PixelGPTPipeline.from_pretrained("owner/name")` downloads: diffusers accepts hfgen's component modules.
register_hub_components(HfgenGPTForCausalLM)
register_pipelines(PixelGPTPipeline)
# ... and `save_pretrained` ships the code + `auto_map`, so `trust_remote_code=True` works without hfgen.
HfgenGPTConfig.register_for_auto_class()
HfgenGPTModel.register_for_auto_class("AutoModel")
HfgenGPTForCausalLM.register_for_auto_class("AutoModelForCausalLM")

__all__ = ["HfgenGPTConfig", "HfgenGPTForCausalLM", "HfgenGPTModel", "HfgenGPTPreTrainedModel", "PixelGPTPipeline"]
