"""Every hyperparameter of the hfgen GPT, serialized to config.json (loading never needs retyping)."""

from transformers import PreTrainedConfig


class HfgenGPTConfig(PreTrainedConfig):
    r"""
    Configuration of [`HfgenGPTForCausalLM`]: a GPT-2-shaped decoder-only transformer (learned positions, pre-norm
    blocks, GELU MLP, tied input/output embeddings) used for both text tokens and image pixels.

    vocab_size (`int`, *optional*, defaults to 8192):
        Tokens the model reads and predicts: the BPE vocabulary for text; grey levels + start + class tokens for pixels.
    max_position_embeddings (`int`, *optional*, defaults to 256):
        The context window: longest sequence (prompt + generated tokens) the learned positions cover.
    hidden_size (`int`, *optional*, defaults to 128):
        Width of the residual stream.
    num_hidden_layers (`int`, *optional*, defaults to 4):
        Transformer blocks (the KV cache holds one key/value pair per block).
    num_attention_heads (`int`, *optional*, defaults to 4):
        Attention heads per block; must divide `hidden_size`.
    intermediate_size (`int`, *optional*):
        Width of the MLP; `None` means `4 * hidden_size`, as in GPT-2.
    dropout (`float`, *optional*, defaults to 0.0):
        Dropout on embeddings, attention probabilities and residual branches (0 suits small data and short runs).
    layer_norm_epsilon (`float`, *optional*, defaults to 1e-5):
        Epsilon of every LayerNorm.
    initializer_range (`float`, *optional*, defaults to 0.02):
        Std of the normal init; residual projections are scaled by `1 / sqrt(2 * num_hidden_layers)` (GPT-2).
    use_cache (`bool`, *optional*, defaults to `True`):
        Return a KV cache from `forward` so `generate()` feeds only the newest token each step.
    bos_token_id (`int`, *optional*):
        Start token (text: `<|endoftext|>`; pixels: the start-of-image token).
    eos_token_id (`int`, *optional*):
        End token; generation stops there.
    pad_token_id (`int`, *optional*):
        Padding token for batched prompts.
    tie_word_embeddings (`bool`, *optional*, defaults to `True`):
        Share the token embedding with the output projection (fewer parameters, better small models).

    Example:

    ```python
    >>> from hfgen import HfgenGPTConfig, HfgenGPTForCausalLM
    >>> config = HfgenGPTConfig(vocab_size=512, num_hidden_layers=2, hidden_size=64, num_attention_heads=4)
    >>> model = HfgenGPTForCausalLM(config)
    ```"""

    model_type = "hfgen_gpt"
    base_model_fsdp_plan = {"wte": "free_full_weight", "h.*": "free_full_weight", "ln_f": "keep_full_weight"}

    vocab_size: int = 8192
    max_position_embeddings: int = 256
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int | None = None
    dropout: float = 0.0
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    use_cache: bool = True
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs) -> None:
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.hidden_size
        for name in ("vocab_size", "max_position_embeddings", "hidden_size", "num_hidden_layers", "num_attention_heads"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}.")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}): change one of them."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
        super().__post_init__(**kwargs)


__all__ = ["HfgenGPTConfig"]
