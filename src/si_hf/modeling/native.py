"""Published checkpoints in native transformers classes, and back to SI-Llama when si_hf loads them.

A round saved as `si_llama` (config with `auto_map` + modeling code) makes plain transformers either
run that code or, for `AutoTokenizer`, stop at the "run the custom code? [y/N]" prompt: `AutoTokenizer`
loads the checkpoint's config first. So rounds are published in classes transformers ships:

- NoPE -> `SmolLM3ForCausalLM` with `no_rope_layers = [0] * num_hidden_layers` (a 0 marks a layer that
  skips the rotation) and no sliding window. Its modules, parameter names and forward are Llama's
  (`LlamaAttention` applies the rotation unconditionally; with SI-Llama's identity rotation, cos=1 and
  sin=0, `q*1 + rotate_half(q)*0` is `q` exactly), so the weights load unchanged and the logits,
  greedy generations and gradients are bit-identical (tests/test_modeling.py checks each).
- RoPE -> `LlamaForCausalLM`, which SI-Llama with `position_encoding="rope"` is without any change.

Inside si_hf the model stays `SILlamaForCausalLM`: `load_checkpoint` maps an all-NoPE SmolLM3
checkpoint back, so a resumed run trains, labels and saves the same class as one that never stopped,
and `config.position_encoding` keeps telling NoPE from RoPE.
"""

from __future__ import annotations

import copy

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
    SmolLM3Config,
    SmolLM3ForCausalLM,
)

from .configuration_si_llama import SILlamaConfig
from .modeling_si_llama import SILlamaForCausalLM

# Written by save_pretrained from the class itself, never carried over from another model type.
_SAVE_OWNED = ("model_type", "architectures", "auto_map", "transformers_version", "_name_or_path")
# SmolLM3 fields that only a NoPE SI-Llama's exact values map onto (checked in `si_llama_config`).
_SMOLLM3_ONLY = (
    "no_rope_layers",
    "no_rope_layer_interval",
    "layer_types",
    "use_sliding_window",
    "sliding_window",
)


def _fields(cls) -> set[str]:
    # to_dict, not dataclasses.fields: it also lists what PreTrainedConfig keeps outside the dataclass
    # fields (output_attentions, ...).
    return set(cls().to_dict())


def _derived_head_dim(d: dict) -> int:
    return d["hidden_size"] // d["num_attention_heads"]


def native_config(config: SILlamaConfig) -> PretrainedConfig:
    """The transformers config that `config` is: SmolLM3 (all layers NoPE) or Llama (RoPE)."""
    if not isinstance(config, SILlamaConfig):
        raise TypeError(f"expected an SILlamaConfig, got {type(config).__name__}")
    d = {k: v for k, v in config.to_dict().items() if k not in _SAVE_OWNED}
    encoding = d.pop("position_encoding")
    if encoding == "rope":
        return LlamaConfig(**d)
    if d.pop("pretraining_tp", 1) != 1:
        raise ValueError(
            f"pretraining_tp={config.pretraining_tp!r}: SmolLM3 has no pretraining_tp; only 1 (the "
            "default, which transformers' Llama ignores) can be published as SmolLM3"
        )
    # SmolLM3 reads head_dim with getattr, defaulting to hidden_size // num_attention_heads: write it
    # only when it differs, as an extra attribute that SmolLM3's attention and rotary module honour.
    if d["head_dim"] == _derived_head_dim(d):
        del d["head_dim"]
    unknown = sorted(set(d) - _fields(SmolLM3Config) - {"head_dim"})
    if unknown:
        raise ValueError(
            f"{type(config).__name__} fields {unknown} have no SmolLM3Config equivalent: the NoPE "
            "checkpoint cannot be published as SmolLM3 without changing the model"
        )
    n = d["num_hidden_layers"]
    return SmolLM3Config(
        **d,
        no_rope_layers=[0] * n,
        layer_types=["full_attention"] * n,
        use_sliding_window=False,
        sliding_window=None,
    )


def si_llama_config(config: PretrainedConfig) -> SILlamaConfig | None:
    """The SILlamaConfig of a NoPE checkpoint published as SmolLM3 (an SILlamaConfig as it is); None
    for anything else, e.g. a Llama or a SmolLM3 with RoPE layers, which load as their own class."""
    if isinstance(config, SILlamaConfig):
        return config
    if not isinstance(config, SmolLM3Config):
        return None
    if any(config.no_rope_layers[: config.num_hidden_layers]) or config.use_sliding_window:
        return None
    d = {k: v for k, v in config.to_dict().items() if k not in _SAVE_OWNED and k not in _SMOLLM3_ONLY}
    d.setdefault("head_dim", _derived_head_dim(d))
    return SILlamaConfig(**d, position_encoding="nope")


def to_native(model: PreTrainedModel) -> PreTrainedModel:
    """`model` as the transformers class it is published as, sharing its parameter tensors (no copy).
    Models that are not SI-Llama (a pretrained Llama after LoRA, ...) are already native: returned."""
    if not isinstance(model, SILlamaForCausalLM):
        return model
    config = native_config(model.config)
    cls = SmolLM3ForCausalLM if isinstance(config, SmolLM3Config) else LlamaForCausalLM
    # Built on the meta device, then handed the live tensors: publishing a round allocates nothing.
    with torch.device("meta"):
        native = cls(config)
    native.load_state_dict(model.state_dict(), strict=True, assign=True)
    native.tie_weights()  # assign=True replaced the tied parameter objects
    # The rotary tables are non-persistent buffers, absent from the state dict: compute them where
    # the weights live (SmolLM3 computes its unused cos/sin even when every layer is NoPE).
    with torch.device(model.device):
        native.model.rotary_emb = type(native.model.rotary_emb)(config)
    left = [name for name, t in (*native.named_parameters(), *native.named_buffers()) if t.is_meta]
    if left:
        raise RuntimeError(f"{cls.__name__} has tensors that {type(model).__name__} does not provide: {left}")
    # The same attention kernel (to_dict leaves it out; sdpa and eager round differently), already
    # validated when `model` was built; the layers read it from the shared config at every forward.
    native.config._attn_implementation = model.config._attn_implementation
    native.generation_config = copy.deepcopy(model.generation_config)
    return native.train(model.training)


def load_checkpoint(
    name_or_path: str, *, revision: str | None = None, device=None, **kwargs
) -> PreTrainedModel:
    """The one model loader of si_hf: `AutoModelForCausalLM.from_pretrained`, except that a NoPE round
    (published as SmolLM3) comes back as the `SILlamaForCausalLM` it was trained as; other checkpoints
    as their own class. `device` moves it there (a round reloaded for labelling sits where a model that
    stayed in memory would); `kwargs` go to from_pretrained (dtype, attn_implementation, ...)."""
    hub = {"revision": revision} if revision is not None else {}
    config = AutoConfig.from_pretrained(name_or_path, **hub)
    si_config = si_llama_config(config)
    if si_config is not None:
        model = SILlamaForCausalLM.from_pretrained(name_or_path, config=si_config, **hub, **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, config=config, **hub, **kwargs)
    return model if device is None else model.to(device)


__all__ = ["load_checkpoint", "native_config", "si_llama_config", "to_native"]
