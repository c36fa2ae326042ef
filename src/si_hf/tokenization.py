"""Character and maze tokenizers, built with the `tokenizers` library and saved as plain fast tokenizers.

Both are a `WordLevel` model over a fixed vocabulary behind a regex pre-tokenizer:

- "char": one token per character. Digits, the task symbols `+ * = ( ) > # : , -` and lowercase a-z
  (unused by the paper's tasks; there so string tasks can be extended without changing any token id).
- "maze": every node label 1..99 is one token, plus `> # : , - =` (paper appendix C.2.3).

Ids 0, 1, 2 are `<pad>`, `<bos>`, `<eos>`. The post-processor prepends `<bos>` and never appends `<eos>`
(the completion carries its own EOS, see `encode_completion`). The decoder is `Fuse`, so decoding
concatenates tokens without spaces.

There is no unknown token on purpose: an unknown piece must never be silently learned as `<unk>`.
`WordLevel` without an unk token in its vocabulary makes the raw tokenizer fail loudly, but with a
bare `Exception("WordLevel error: Missing [UNK] token from the vocabulary")` that does not say which
character was bad; `check_text` (called by `encode_prompt` / `encode_completion`) gives the clear
`ValueError`. It also rejects a literal "<eos>" in the text, which the raw tokenizer would map to the
special token.
"""

import os

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from si_hf import atomic

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIAL_TOKENS = (PAD, BOS, EOS)
CHAR_SYMBOLS = "0123456789" + "+*=()>#:,-" + "abcdefghijklmnopqrstuvwxyz"
MAZE_SYMBOLS = ">#:,-="
MAZE_MAX_NODE = 99
# Large enough that long maze / multiplication prompts never trigger the "sequence too long" warning.
MODEL_MAX_LENGTH = 100_000

# (?m) makes "." match newlines too in Oniguruma, so every character is its own piece.
_PATTERNS = {"char": r"(?m).", "maze": r"[0-9]+|(?m)."}


def _vocab(name: str) -> list[str]:
    if name == "char":
        return [*SPECIAL_TOKENS, *CHAR_SYMBOLS]
    return [*SPECIAL_TOKENS, *(str(i) for i in range(1, MAZE_MAX_NODE + 1)), *MAZE_SYMBOLS]


TOKENIZER_NAMES = tuple(_PATTERNS)


def get_tokenizer(name: str, padding_side: str = "right") -> PreTrainedTokenizerFast:
    """Build the "char" or "maze" tokenizer in memory (deterministic)."""
    if name not in _PATTERNS:
        raise ValueError(f"unknown tokenizer name {name!r}; expected one of {list(TOKENIZER_NAMES)}")
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    vocab = {token: i for i, token in enumerate(_vocab(name))}
    backend = Tokenizer(models.WordLevel(vocab))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(_PATTERNS[name]), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        model_max_length=MODEL_MAX_LENGTH,
        padding_side=padding_side,
        clean_up_tokenization_spaces=False,
        name_or_path=name,
    )


def save_tokenizers(output_dir: str | os.PathLike) -> list[str]:
    """Write `output_dir/char` and `output_dir/maze`; returns the two folder paths.

    Each folder is written to a temporary sibling and swapped in, so no stale file from an older
    layout survives and the result is byte-identical on every run.
    """
    paths = []
    for name in TOKENIZER_NAMES:
        target = os.path.join(output_dir, name)
        with atomic.staged_dir(target) as tmp:
            get_tokenizer(name).save_pretrained(tmp)
        paths.append(target)
    return paths


def _describe_vocab(allowed: list[str]) -> str:
    if all(len(t) == 1 for t in allowed):
        return f"characters from {''.join(allowed)!r}"
    numbers = [int(t) for t in allowed if t.isdigit()]
    others = "".join(t for t in allowed if not t.isdigit())
    return f"numbers {min(numbers)}..{max(numbers)} or one of {others!r}"


def check_texts(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> None:
    """`check_text` over many strings, reading the vocabulary once."""
    if isinstance(texts, str):
        raise ValueError(f"expected a list of str, got the str {texts!r}")
    vocab = tokenizer.get_vocab()
    allowed = vocab.keys() - set(tokenizer.all_special_tokens)
    pre_tokenize = tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str
    for text in texts:
        if not isinstance(text, str):
            raise ValueError(f"expected a str to tokenize, got {type(text).__name__}: {text!r}")
        for piece, (start, _) in pre_tokenize(text):
            if piece not in allowed:
                what = "character" if len(piece) == 1 else "token"
                context = text if len(text) <= 80 else text[max(0, start - 30) : start + 30]
                expected = _describe_vocab(sorted(allowed, key=vocab.get))
                raise ValueError(
                    f"{what} {piece!r} at position {start} of {context!r} is not in the vocabulary of "
                    f"tokenizer {tokenizer.name_or_path!r}; expected {expected}"
                )


def check_text(tokenizer: PreTrainedTokenizerBase, text: str) -> None:
    """Raise ValueError naming the first piece of `text` (and its position) outside the vocabulary."""
    check_texts(tokenizer, [text])


def _special_id(tokenizer: PreTrainedTokenizerBase, attribute: str, expected: str) -> int:
    token_id = getattr(tokenizer, f"{attribute}_id")
    if token_id is None:
        raise ValueError(f"tokenizer {tokenizer.name_or_path!r} has no {attribute}; expected {expected!r}")
    return token_id


def _bare_ids(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> list[list[int]]:
    check_texts(tokenizer, texts)
    # One batched call: the Rust backend encodes the whole list at once.
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []


def encode_prompts(tokenizer: PreTrainedTokenizerBase, prompts: list[str]) -> list[list[int]]:
    """BOS + prompt tokens for each prompt, after `check_texts`."""
    bos = _special_id(tokenizer, "bos_token", BOS)
    return [[bos, *ids] for ids in _bare_ids(tokenizer, prompts)]


def encode_completions(tokenizer: PreTrainedTokenizerBase, completions: list[str]) -> list[list[int]]:
    """Completion tokens + EOS for each completion, after `check_texts`."""
    eos = _special_id(tokenizer, "eos_token", EOS)
    return [[*ids, eos] for ids in _bare_ids(tokenizer, completions)]


def encode_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> list[int]:
    """BOS + prompt tokens, after `check_text`."""
    return encode_prompts(tokenizer, [prompt])[0]


def encode_completion(tokenizer: PreTrainedTokenizerBase, completion: str) -> list[int]:
    """Completion tokens + EOS, after `check_text`."""
    return encode_completions(tokenizer, [completion])[0]
