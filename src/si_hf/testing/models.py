"""Real SI-Llama models with a known greedy behaviour, for tests of decoding, evaluation and filters."""

from __future__ import annotations

import torch

from si_hf.modeling import SILlamaForCausalLM, tiny_config


def random_model(tokenizer, position_encoding: str = "nope", seed: int = 0) -> SILlamaForCausalLM:
    """A tiny SI-Llama with a wide init: its greedy output depends on the prompt, so order or padding
    mistakes show."""
    torch.manual_seed(seed)
    config = tiny_config(len(tokenizer), position_encoding=position_encoding, initializer_range=0.3)
    return SILlamaForCausalLM(config).eval()


def lookup_model(tokenizer, chain: dict[str, str]) -> SILlamaForCausalLM:
    """A real SI-Llama whose greedy output is a lookup on the last token: `chain[token]` is next.

    Attention and MLP outputs are zeroed, so the final hidden state is the normed embedding of the
    last token; one-hot embeddings and an lm_head that maps them to `chain` make the next token exact.
    E.g. {"=": "7", "7": "7"} writes 7s forever (a run-on model), {"=": "7", "7": "<eos>"} answers "7".
    """
    model = random_model(tokenizer)
    vocab = tokenizer.get_vocab()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.zero_()
        model.lm_head.weight.zero_()
        for dim, (token, nxt) in enumerate(chain.items()):
            model.model.embed_tokens.weight[vocab[token], dim] = 1.0
            model.lm_head.weight[vocab[nxt], dim] = 1.0
    return model
