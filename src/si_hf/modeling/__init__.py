"""SI-Llama: config + NoPE causal LM, registered with the Auto classes on import. Rounds are published
as native transformers checkpoints (SmolLM3 for NoPE, Llama for RoPE; see `native`)."""

from transformers import AutoConfig, AutoModelForCausalLM

from .build import ModelArgumentsLike, add_lora, build_model, merge_lora, model_defaults, train_in_fp32
from .configuration_si_llama import POSITION_ENCODINGS, SILlamaConfig
from .modeling_si_llama import NoPositionEmbedding, SILlamaForCausalLM
from .native import load_checkpoint, native_config, si_llama_config, to_native
from .presets import PRESETS, cpu_config, get_config, paper_config, tiny_config

AutoConfig.register("si_llama", SILlamaConfig, exist_ok=True)
AutoModelForCausalLM.register(SILlamaConfig, SILlamaForCausalLM, exist_ok=True)
# SILlamaForCausalLM.save_pretrained then writes `auto_map` and copies the two code files next to the
# weights, so a model saved directly (in-round Trainer checkpoints, users' own saves) still loads with
# trust_remote_code=True where si_hf is not installed. Published rounds go through `to_native` instead.
SILlamaConfig.register_for_auto_class("AutoConfig")
SILlamaForCausalLM.register_for_auto_class("AutoModelForCausalLM")

__all__ = [
    "add_lora",
    "model_defaults",
    "POSITION_ENCODINGS",
    "PRESETS",
    "ModelArgumentsLike",
    "NoPositionEmbedding",
    "SILlamaConfig",
    "SILlamaForCausalLM",
    "build_model",
    "load_checkpoint",
    "native_config",
    "si_llama_config",
    "to_native",
    "merge_lora",
    "train_in_fp32",
    "cpu_config",
    "get_config",
    "paper_config",
    "tiny_config",
]
