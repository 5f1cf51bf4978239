"""The base of hfgen's pipelines: `from_pretrained` goes through `hfgen.load_pipeline`.

That gives every family's class the loader's guarantees - safetensors only, one-line errors, `revision=` - and
lets it load a repo pushed with remote code (see hub/remote_code.py) with hfgen's installed classes, without
running the repo's copy. In that exported copy this class is replaced by `DiffusionPipeline` itself.
"""

from __future__ import annotations

import os

from diffusers import DiffusionPipeline


class HfgenPipeline(DiffusionPipeline):
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> DiffusionPipeline:
        from .loading import load_pipeline

        return load_pipeline(pretrained_model_name_or_path, pipeline_class=cls, **kwargs)  # it checks the path's type
