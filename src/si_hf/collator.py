"""Prompt-masking data collator: the loss covers the completion and its EOS, never padding, and the
prompt only when asked to (`completion_only_loss=False`)."""

from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from si_hf.tokenization import encode_completions, encode_prompts

IGNORE_INDEX = -100


@dataclass
class PromptCompletionCollator:
    """Trainer data collator over examples of either form:

    - `{"prompt": str, "completion": str}`: framed as BOS + prompt and completion + EOS;
    - `{"input_ids": list[int], "prompt_length": int}`: already framed (BOS ... EOS); the first
      `prompt_length` tokens are masked.

    Other keys (difficulty, round, ...) are ignored, so use `remove_unused_columns=False` in the
    TrainingArguments when the dataset has string columns. Rows are right-padded with the pad token.
    An example longer than `max_length` raises instead of being truncated: cutting the answer would
    teach the model to stop early.

    `pack_length`: padding-free batches. The examples of a batch are packed first-fit (longest first)
    into rows of `max(pack_length, longest example)` tokens, and `position_ids` restart at 0 for every
    example instead of an attention mask; transformers then builds a block-diagonal causal mask (sdpa,
    eager) or uses variable-length kernels (flash attention), so no example attends to another. The
    batch holds the same examples with the same labels: the loss (the mean over its completion
    tokens) is the padded batch's, up to float rounding, for far fewer tokens of compute. With RoPE
    models the restarted positions are each example's own.

    `completion_only_loss`: True (default, the paper's setting: section 3 trains on the answer) labels
    the completion and its EOS only. False labels every token after BOS, prompt included, as a plain
    language model would: the same examples, more supervised tokens per example. It uses no answer the
    model has not been given, so self-labelled rounds stay free of ground truth.
    """

    tokenizer: PreTrainedTokenizerBase
    pad_to_multiple_of: int | None = None
    max_length: int | None = None
    pack_length: int | None = None
    completion_only_loss: bool = True

    def __post_init__(self):
        if self.tokenizer.pad_token_id is None:
            raise ValueError(
                f"tokenizer {self.tokenizer.name_or_path!r} has no pad_token; one is needed to pad"
            )
        for field in ("pad_to_multiple_of", "max_length", "pack_length"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{field} must be a positive int or None, got {value!r}")
        if not isinstance(self.completion_only_loss, bool):
            raise ValueError(f"completion_only_loss must be True or False, got {self.completion_only_loss!r}")

    def _loss_start(self, prompt_length: int) -> int:
        """Index of the first labelled token: the completion's, or the first after BOS (nothing predicts BOS)."""
        return prompt_length if self.completion_only_loss else 1

    def _pretokenized(self, example: dict[str, Any]) -> tuple[list[int], int]:
        ids, prompt_length = [int(i) for i in example["input_ids"]], int(example["prompt_length"])
        if not 0 < prompt_length < len(ids):
            raise ValueError(
                f"prompt_length {prompt_length} must leave at least one completion token in "
                f"input_ids of length {len(ids)}"
            )
        if ids[-1] != self.tokenizer.eos_token_id:
            raise ValueError(
                f"pre-tokenized input_ids must end with EOS id {self.tokenizer.eos_token_id}, got {ids[-1]}"
            )
        return ids, prompt_length

    def _frame(self, examples: list[dict[str, Any]]) -> list[tuple[list[int], int]]:
        framed: list[tuple[list[int], int] | None] = [None] * len(examples)
        texts = []  # (row, prompt, completion), encoded in one batched call
        for row, example in enumerate(examples):
            if "prompt" in example and "completion" in example:
                texts.append((row, example["prompt"], example["completion"]))
            elif "input_ids" in example and "prompt_length" in example:
                framed[row] = self._pretokenized(example)
            else:
                raise ValueError(
                    "example needs keys ('prompt', 'completion') or ('input_ids', 'prompt_length'), "
                    f"got {sorted(example)}"
                )
        if texts:
            rows, prompts, completions = zip(*texts)
            prompt_ids = encode_prompts(self.tokenizer, list(prompts))
            completion_ids = encode_completions(self.tokenizer, list(completions))
            for row, prompt, completion in zip(rows, prompt_ids, completion_ids):
                framed[row] = (prompt + completion, len(prompt))
        return framed

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not examples:
            raise ValueError("cannot collate an empty list of examples")
        framed = self._frame(examples)
        length = max(len(ids) for ids, _ in framed)
        if self.max_length is not None and length > self.max_length:
            i = max(range(len(framed)), key=lambda j: len(framed[j][0]))
            raise ValueError(
                f"example {i} has {length} tokens, more than max_length={self.max_length}; "
                "raise max_length or drop the example (it is not truncated, that would cut the answer)"
            )
        if self.pack_length is not None:
            return self._packed(framed, max(self.pack_length, length))
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        # Rows built as Python lists and turned into tensors once: per-row tensor writes cost more
        # than the model's step on small batches.
        pad, input_ids, attention_mask, labels = self.tokenizer.pad_token_id, [], [], []
        for ids, prompt_length in framed:
            fill, first = length - len(ids), self._loss_start(prompt_length)
            input_ids.append(ids + [pad] * fill)
            attention_mask.append([1] * len(ids) + [0] * fill)
            labels.append([IGNORE_INDEX] * first + ids[first:] + [IGNORE_INDEX] * fill)
        return {
            "input_ids": torch.tensor(input_ids, dtype=torch.long),
            "attention_mask": torch.tensor(attention_mask, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
        }

    def _packed(self, framed: list[tuple[list[int], int]], row_length: int) -> dict[str, torch.Tensor]:
        rows: list[list[tuple[list[int], int]]] = []
        free: list[int] = []  # tokens left in each row
        for ids, prompt_length in sorted(framed, key=lambda f: -len(f[0])):  # first-fit decreasing
            row = next((r for r, left in enumerate(free) if left >= len(ids)), None)
            if row is None:
                rows.append([])
                free.append(row_length)
                row = len(rows) - 1
            rows[row].append((ids, prompt_length))
            free[row] -= len(ids)
        width = row_length - min(free)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        pad, input_ids, labels, position_ids = self.tokenizer.pad_token_id, [], [], []
        for examples in rows:
            row_ids, row_labels, row_positions = [], [], []
            for ids, prompt_length in examples:
                first = self._loss_start(prompt_length)
                row_ids += ids
                row_labels += [IGNORE_INDEX] * first + ids[first:]
                row_positions += range(len(ids))
            fill = width - len(row_ids)
            input_ids.append(row_ids + [pad] * fill)
            labels.append(row_labels + [IGNORE_INDEX] * fill)
            position_ids.append(row_positions + list(range(fill)))  # the padding is a segment of its own
        return {
            "input_ids": torch.tensor(input_ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "position_ids": torch.tensor(position_ids, dtype=torch.long),
        }
