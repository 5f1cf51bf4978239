"""The autoregressive family's named architectures: the CPU-sized default pixel GPT and GPT-2 small for text."""

from __future__ import annotations

from .. import Preset

PRESETS = (
    Preset(
        name="autoregressive-small",
        family="autoregressive",
        resolution=8,
        channels=1,
        parameters={"model": 803_968},
        source="hfgen's CPU-sized default (AutoregressiveArguments), for 8x8 digits' 17 grey levels",
    ),
    Preset(
        name="gpt2",
        family="autoregressive",
        resolution=None,
        channels=None,
        parameters={"model": 124_439_808},
        source="Radford et al. 2019 (GPT-2 small); nanoGPT's model.py 'gpt2' config, tied embeddings as HF's gpt2 counts them",
        # A 50,257-token BPE (GPT-2's size, trained on your corpus) and a 1,024-token context.
        arguments={
            "modality": "text",
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "hidden_size": 768,
            "block_size": 1024,
            "vocab_size": 50257,
        },
    ),
)
