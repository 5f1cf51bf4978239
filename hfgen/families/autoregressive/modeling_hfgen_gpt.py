"""The hfgen GPT: a decoder-only transformer read top to bottom - attention -> block -> bare model -> LM head.

This file imports only torch, transformers and its own config (relatively), so `save_pretrained` can ship it
beside the weights and `AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)` runs it where hfgen
is not installed.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, slice_logits_to_keep
from transformers.utils import can_return_tuple
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .configuration_hfgen_gpt import HfgenGPTConfig


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention written out, so the weights can be returned: softmax(q k^T * scaling + mask) v.

    `attention_mask` is the additive float mask `create_causal_mask` builds for eager attention (0 or -inf).
    """
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling  # (B, heads, T, past + T)
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = F.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    output = torch.matmul(F.dropout(weights, p=dropout, training=module.training), value)  # (B, heads, T, head_dim)
    return output.transpose(1, 2).contiguous(), weights  # (B, T, heads, head_dim), (B, heads, T, past + T)


class HfgenGPTAttention(nn.Module):
    """Causal multi-head self-attention, with keys/values kept in a `Cache`.

    The kernel is `config._attn_implementation`: "sdpa" (the default, `F.scaled_dot_product_attention`) or "eager"
    (the only one that returns attention weights), looked up in transformers' attention registry.
    """

    is_causal = True  # read by the registry's SDPA function: no mask means causal attention

    def __init__(self, config: HfgenGPTConfig, layer_idx: int) -> None:
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)  # one matmul for query, key and value
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.attention_dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, cache: Cache | None = None, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, _ = hidden_states.shape
        qkv = self.qkv(hidden_states).view(batch, length, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, T, head_dim)
        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx)  # (B, heads, past + T, head_dim)
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        output, weights = attention(
            self, query, key, value, attention_mask,
            dropout=self.attention_dropout if self.training else 0.0, scaling=self.scaling, **kwargs,
        )  # (B, T, heads, head_dim); weights (B, heads, T, past + T) from eager, else None
        output = output.reshape(batch, length, -1)  # (B, T, hidden)
        return self.resid_dropout(self.proj(output)), weights


class HfgenGPTMLP(nn.Module):
    def __init__(self, config: HfgenGPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.hidden_size, config.intermediate_size)
        self.proj = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(hidden_states), approximate="tanh")))


class HfgenGPTBlock(GradientCheckpointingLayer):
    """Pre-norm block: x + attention(LN(x)), then x + MLP(LN(x)). The unit FSDP shards and checkpointing recomputes."""

    def __init__(self, config: HfgenGPTConfig, layer_idx: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.attn = HfgenGPTAttention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.mlp = HfgenGPTMLP(config)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, cache: Cache | None = None, **kwargs
    ) -> torch.Tensor:
        # `cache` is a keyword so gradient checkpointing can drop it (a replayed block must not append twice).
        attention, _ = self.attn(self.ln_1(hidden_states), attention_mask, cache=cache, **kwargs)
        hidden_states = hidden_states + attention
        return hidden_states + self.mlp(self.ln_2(hidden_states))


class HfgenGPTPreTrainedModel(PreTrainedModel):
    config_class = HfgenGPTConfig
    base_model_prefix = "transformer"
    supports_gradient_checkpointing = True
    _no_split_modules = ["HfgenGPTBlock"]
    # Attention kernels this model runs: "sdpa" (default) and "eager" (always allowed); transformers refuses the
    # others (flash, flex) with a ValueError at load time instead of silently running SDPA.
    _supports_sdpa = True
    # What `output_hidden_states` / `output_attentions` collect, by forward hooks (`capture_outputs`): the input of
    # the first block (the embeddings) and each block's output (the last one replaced by the final LayerNorm's), and
    # each attention's weights (eager only).
    _can_record_outputs = {"hidden_states": HfgenGPTBlock, "attentions": HfgenGPTAttention}

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        # GPT-2: scale the projections that write into the residual stream by 1/sqrt(2 * layers), so its variance
        # does not grow with depth.
        if isinstance(module, (HfgenGPTAttention, HfgenGPTMLP)):
            std = self.config.initializer_range / math.sqrt(2 * self.config.num_hidden_layers)
            init.normal_(module.proj.weight, mean=0.0, std=std)


class HfgenGPTModel(HfgenGPTPreTrainedModel):
    """Token + learned position embeddings -> blocks -> final LayerNorm: hidden states (B, T, hidden)."""

    def __init__(self, config: HfgenGPTConfig) -> None:
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.hidden_size)
        self.wpe = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([HfgenGPTBlock(config, i) for i in range(config.num_hidden_layers)])
        self.ln_f = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.wte

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.wte = value

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        r"""
        Also takes transformers' output flags: `return_dict`, `output_hidden_states` (embeddings + each block, the
        last after the final LayerNorm) and `output_attentions` (needs `attn_implementation="eager"`).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        if inputs_embeds is None:
            inputs_embeds = self.wte(input_ids)  # (B, T, hidden)
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        past = cache.get_seq_length() if cache is not None else 0
        length = inputs_embeds.shape[1]
        if past + length > self.config.max_position_embeddings:
            raise ValueError(
                f"The sequence is {past + length} tokens ({past} cached + {length} new) but the context window is "
                f"{self.config.max_position_embeddings}: shorten the prompt or generate fewer new tokens."
            )
        if position_ids is None:
            position_ids = torch.arange(past, past + length, device=inputs_embeds.device).unsqueeze(0)  # (1, T)
        hidden_states = self.drop(inputs_embeds + self.wpe(position_ids))
        # SDPA: None for plain causal attention (its is_causal fast path), a boolean (B, 1, T, past + T) mask with
        # padding; eager: always an additive float mask (0 or -inf) of that shape.
        mask = create_causal_mask(
            config=self.config, inputs_embeds=inputs_embeds, attention_mask=attention_mask, cache=cache,
            position_ids=position_ids,
        )
        for block in self.h:
            hidden_states = block(hidden_states, mask, cache=cache, **kwargs)
        return BaseModelOutputWithPast(last_hidden_state=self.ln_f(hidden_states), cache=cache if use_cache else None)


class HfgenGPTForCausalLM(HfgenGPTPreTrainedModel, GenerationMixin):
    """The GPT with its language-model head (tied to the token embedding): next-token logits and loss."""

    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: HfgenGPTConfig) -> None:
        super().__init__(config)
        self.transformer = HfgenGPTModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Targets, shifted inside (pass `labels=input_ids`); -100 is ignored. Gives the mean next-token NLL in nats.
        logits_to_keep (`int`, *optional*, defaults to 0):
            Compute logits for the last N positions only (0: all) - generation needs just the last one.
        """
        outputs = self.transformer(
            input_ids, attention_mask=attention_mask, position_ids=position_ids, cache=cache,
            inputs_embeds=inputs_embeds, use_cache=use_cache, **kwargs, return_dict=True,
        )  # a dict whatever `config.return_dict` says: `can_return_tuple` makes the tuple at the end
        logits = self.lm_head(slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep))  # (B, T, vocab)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(
            loss=loss, logits=logits, cache=outputs.cache, hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """Also map `AutoModel` to the bare model, so the exported code serves both Auto classes."""
        if self._auto_class is not None:
            module = type(self).__module__.rsplit(".", 1)[-1]
            self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), "AutoModel": f"{module}.HfgenGPTModel"}
        super().save_pretrained(save_directory, *args, **kwargs)


__all__ = ["HfgenGPTForCausalLM", "HfgenGPTModel", "HfgenGPTPreTrainedModel"]
