"""SI-Llama configuration: a Llama config whose position encoding can be switched off (NoPE).

Self-contained (imports only transformers) because `save_pretrained` copies this file next to the
weights, and `trust_remote_code=True` loads it in processes that never installed si_hf.
"""

from transformers import LlamaConfig

POSITION_ENCODINGS = ("nope", "rope")


class SILlamaConfig(LlamaConfig):
    model_type = "si_llama"

    position_encoding: str = "nope"
    # The character tokenizers use pad/bos/eos = 0/1/2.
    pad_token_id: int | None = 0
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    # NoPE has no table to outgrow, but generate and the cache read this bound.
    max_position_embeddings: int = 4096

    def __post_init__(self, **kwargs):
        if self.position_encoding not in POSITION_ENCODINGS:
            raise ValueError(
                f"position_encoding={self.position_encoding!r} is invalid; expected one of {POSITION_ENCODINGS}"
            )
        super().__post_init__(**kwargs)


__all__ = ["SILlamaConfig"]
