"""Model size presets. Every preset takes the tokenizer's vocabulary size and config overrides."""

from collections.abc import Callable

from .configuration_si_llama import SILlamaConfig


def _config(vocab_size: int, layers: int, width: int, heads: int, mlp: int, overrides: dict) -> SILlamaConfig:
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 3:
        raise ValueError(
            f"vocab_size={vocab_size!r} is invalid; expected an int >= 3 (pad, bos, eos + symbols)"
        )
    kwargs = dict(
        vocab_size=vocab_size,
        num_hidden_layers=layers,
        hidden_size=width,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        intermediate_size=mlp,
        tie_word_embeddings=False,
        attention_dropout=0.0,
    )
    return SILlamaConfig(**(kwargs | overrides))


def paper_config(vocab_size: int, **overrides) -> SILlamaConfig:
    """The paper's model (appendix C.3): 6 layers, width 384, 6 heads, MLP 1536, ~14M parameters."""
    return _config(vocab_size, 6, 384, 6, 1536, overrides)


def cpu_config(vocab_size: int, **overrides) -> SILlamaConfig:
    """~1.05M parameters: the smallest size that learned multi-digit tasks on 2 CPU cores (docs/results.md)."""
    return _config(vocab_size, 4, 128, 4, 512, overrides)


def tiny_config(vocab_size: int, **overrides) -> SILlamaConfig:
    """For tests only: fast, learns nothing useful."""
    return _config(vocab_size, 2, 64, 2, 128, overrides)


PRESETS: dict[str, Callable[..., SILlamaConfig]] = {
    "paper": paper_config,
    "cpu": cpu_config,
    "tiny": tiny_config,
}


def get_config(preset: str, vocab_size: int, **overrides) -> SILlamaConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[preset](vocab_size, **overrides)
