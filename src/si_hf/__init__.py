"""si-hf: self-improving transformers on Hugging Face. Importing registers SI-Llama with the Auto classes;
other modules (si_hf.tasks, si_hf.rounds, ...) are imported on demand."""

from . import modeling  # noqa: F401  (registration side effect)
from .modeling import SILlamaConfig, SILlamaForCausalLM

__all__ = ["SILlamaConfig", "SILlamaForCausalLM"]
