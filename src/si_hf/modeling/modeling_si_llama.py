"""SI-Llama causal LM: Llama with NoPE (no positional encoding) or RoPE.

NoPE goes through Llama's public structure: `LlamaModel.forward` asks `self.rotary_emb` for
(cos, sin) and every attention layer computes q*cos + rotate_half(q)*sin, so cos=1, sin=0 leaves
queries and keys untouched. No forward is forked, so new transformers versions keep working.

Self-contained (torch, transformers and the sibling config only) so it travels with checkpoints.
"""

import torch
from torch import nn
from transformers import LlamaForCausalLM

from .configuration_si_llama import SILlamaConfig


class NoPositionEmbedding(nn.Module):
    """Drop-in for `LlamaRotaryEmbedding` that returns the identity rotation (cos=1, sin=0)."""

    def __init__(self, head_dim: int):
        super().__init__()
        self.head_dim = head_dim

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Same shape/dtype/device contract as LlamaRotaryEmbedding: (*position_ids.shape, head_dim).
        shape = (*position_ids.shape, self.head_dim)
        return x.new_ones(shape), x.new_zeros(shape)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}"


class SILlamaForCausalLM(LlamaForCausalLM):
    config_class = SILlamaConfig

    def __init__(self, config: SILlamaConfig):
        super().__init__(config)
        if config.position_encoding == "nope":
            self.model.rotary_emb = NoPositionEmbedding(config.head_dim)
        elif config.position_encoding != "rope":
            raise ValueError(
                f"position_encoding={config.position_encoding!r} is invalid; expected 'nope' or 'rope'"
            )


__all__ = ["NoPositionEmbedding", "SILlamaForCausalLM"]
