"""SI-Llama: config + NoPE causal LM, registered with the Auto classes on import."""

from transformers import AutoConfig, AutoModelForCausalLM

from .build import ModelArgumentsLike, add_lora, build_model, merge_lora, model_defaults, train_in_fp32
from .configuration_si_llama import POSITION_ENCODINGS, SILlamaConfig
from .modeling_si_llama import NoPositionEmbedding, SILlamaForCausalLM
from .presets import PRESETS, cpu_config, get_config, paper_config, tiny_config

AutoConfig.register("si_llama", SILlamaConfig, exist_ok=True)
AutoModelForCausalLM.register(SILlamaConfig, SILlamaForCausalLM, exist_ok=True)
# save_pretrained then writes `auto_map` and copies the two code files next to the weights, so
# checkpoints load with trust_remote_code=True where si_hf is not installed.
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
    "merge_lora",
    "train_in_fp32",
    "cpu_config",
    "get_config",
    "paper_config",
    "tiny_config",
]
