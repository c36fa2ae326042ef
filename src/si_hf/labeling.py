"""Batched greedy labeler: the model labels prompts on its own, without any ground truth.

The only length information is `task.max_answer_tokens(prompt)`, computed from the prompt alone
(the authors' code read the length off the true answer). A row may emit that many answer tokens and
then must emit EOS; a row that does not is a run-on output (`finished=False`). Paper section 3: a
prediction is correct only if *all tokens of the output sequence* match, and the EOS is one of
them, so a run-on output is never a correct answer (`Prediction.complete`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.cache_utils import Cache, DynamicLayer

from si_hf.checks import is_int, require_int
from si_hf.precision import decode_autocast
from si_hf.tokenization import encode_prompt


@dataclass(frozen=True)
class Prediction:
    text: str  # decoded answer up to EOS (or up to the bound for a run-on), special tokens stripped
    finished: bool  # EOS came within the prompt's length bound; False: a run-on output
    num_tokens: int  # answer tokens before EOS (never more than the bound)
    # The tokens spell a string that tokenizes back to exactly them (see `_spells`). A label that
    # does not (maze numbers run together) cannot be trained on under any filter.
    tokenizes: bool = True

    @property
    def complete(self) -> bool:
        """A whole output sequence: EOS within the bound and tokens that re-encode from the text.
        Only a complete prediction can be correct (paper section 3) or pass a filter other than none."""
        return self.finished and self.tokenizes


class _RowBounds(StoppingCriteria):
    """Stops each row after its own number of new tokens, so short rows don't run to the batch max."""

    def __init__(self, prompt_len: int, limits: torch.Tensor):
        self.prompt_len, self.limits = prompt_len, limits

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        return (input_ids.shape[1] - self.prompt_len) >= self.limits


def _bound(task, prompt: str) -> int:
    bound = task.max_answer_tokens(prompt)
    if not is_int(bound) or bound < 1:
        raise ValueError(f"{task.name}.max_answer_tokens({prompt!r}) = {bound!r}: expected an int >= 1")
    return bound


def _spells(tokenizer, text: str, ids: list[int]) -> bool:
    """`text` tokenizes back to exactly `ids`. A label that does not (a special token inside it, or
    maze numbers emitted back to back, "84" "49" -> "8449") cannot be trained on, so it is no label."""
    try:
        return tokenizer(text, add_special_tokens=False)["input_ids"] == ids
    except Exception:  # the tokenizers library raises a bare Exception for out-of-vocabulary words
        return False


def _left_padded(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids and attention_mask with every row's next token at the same column (left padding)."""
    width = max(len(ids) for ids in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, ids in enumerate(rows):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention_mask[row, width - len(ids) :] = 1
    return input_ids, attention_mask


class BufferedLayer(DynamicLayer):
    """transformers' DynamicLayer, with keys and values written into a buffer sized for the batch.

    DynamicLayer concatenates the whole cache with each new token, so decoding an answer of n tokens
    copies O(n^2) cache entries; on a CPU that was most of the time of a 163-token CoT multiplication
    answer (docs/results.md). Here each step writes its one position and attention reads a view of
    the filled part: the same keys and values as DynamicLayer's, in its dtype (the keys'), so the same
    attention inputs. A batch that outgrows the buffer gets one twice the size, never an error.
    Greedy decoding only: rows cannot be reordered, dropped or repeated (beam search, assisted
    decoding), and those calls raise."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self._buffers = self._allocate(key_states, value_states, self.capacity)

    @staticmethod
    def _allocate(keys: torch.Tensor, values: torch.Tensor, capacity: int):
        # both in the keys' dtype, as DynamicLayer's concatenation promotes bf16 values under autocast
        (b, h, _, dk), dv = keys.shape, values.shape[-1]
        return keys.new_empty(b, h, capacity, dk), keys.new_empty(b, h, capacity, dv)

    def update(self, key_states, value_states, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start = self.get_seq_length()
        end = start + key_states.shape[-2]
        if end > self.capacity:
            self.capacity = max(end, 2 * self.capacity)
            grown = self._allocate(key_states, value_states, self.capacity)
            for new, old in zip(grown, self._buffers):
                new[:, :, :start] = old[:, :, :start]
            self._buffers = grown
        keys, values = self._buffers
        keys[:, :, start:end], values[:, :, start:end] = key_states, value_states
        self._fill(end)
        return self.keys, self.values

    def _fill(self, length: int) -> None:
        self.keys, self.values = (buffer[:, :, :length] for buffer in self._buffers)

    def crop(self, tokens_to_remove: int) -> None:
        """DynamicLayer's crop (generate calls crop(0) each step on some devices): drop the last tokens."""
        if tokens_to_remove > 0:
            raise ValueError(
                f"crop({tokens_to_remove}): expected the number of tokens to remove as a negative int"
            )
        if tokens_to_remove < 0 and self.is_initialized:
            self._fill(max(self.get_seq_length() + tokens_to_remove, 0))

    def _greedy_only(self, *args, **kwargs) -> None:
        raise NotImplementedError("BufferedLayer holds one greedy decoding: its rows cannot change")

    reorder_cache = batch_select_indices = batch_repeat_interleave = offload = prefetch = _greedy_only


def _cache_kwargs(cache_implementation: str, capacity: int) -> dict:
    """generate's cache arguments for one batch whose sequences grow to `capacity` tokens. They
    override a `cache_implementation` the model's generation config may name."""
    if cache_implementation == "dynamic":
        cache = Cache(layer_class_to_replicate=partial(BufferedLayer, capacity))
        return {"past_key_values": cache, "cache_implementation": None}
    return {
        "cache_implementation": "static" if cache_implementation == "static" else None
    }  # None: DynamicCache


CACHE_IMPLEMENTATIONS = ("dynamic", "static", "concat")


def check_cache_implementation(value: str, key: str = "label_cache_implementation") -> str:
    if value not in CACHE_IMPLEMENTATIONS:
        raise ValueError(f"{key}: {value!r} is not one of {list(CACHE_IMPLEMENTATIONS)}")
    return value


def _prediction(tokenizer, new: list[int], bound: int, eos_id: int) -> Prediction:
    """The answer in the tokens generated after a prompt: up to EOS, or the bound for a run-on."""
    new = new[: bound + 1]
    finished = eos_id in new
    answer = new[: new.index(eos_id)] if finished else new[:bound]
    text = tokenizer.decode(answer, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return Prediction(
        text=text, finished=finished, num_tokens=len(answer), tokenizes=_spells(tokenizer, text, answer)
    )


def label(
    model,
    tokenizer,
    task,
    prompts: Sequence[str],
    *,
    batch_size: int = 256,
    progress: bool = True,
    cache_implementation: str = "dynamic",
    decode_dtype: str = "fp32",
    desc: str = "labeling",
) -> list[Prediction]:
    """Greedy labels for `prompts`, in the input order. Works for plain and peft-wrapped models.

    `cache_implementation`: "dynamic" (`BufferedLayer`), "concat" (transformers' DynamicCache: the
    same labels, 1.1-1.8x slower for CoT multiplication on a CPU) or "static" (a max-length cache
    `generate` compiles on a GPU). Static and `decode_dtype="bf16"` (bf16 autocast) give the default's labels up to float
    rounding: a near-tie may go the other way (docs/results.md)."""
    check_cache_implementation(cache_implementation, "cache_implementation")
    require_int(batch_size, "batch_size", 1)
    if isinstance(prompts, str):
        raise ValueError(f"prompts must be a sequence of strings, got the single string {prompts!r}")
    pad_id, eos_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    if pad_id is None or eos_id is None:
        raise ValueError(f"tokenizer needs pad and eos tokens, got pad={pad_id!r} eos={eos_id!r}")
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    bounds = [_bound(task, p) for p in prompts]
    # Longest first: similar lengths share a batch (less padding) and peak memory shows up at once.
    order = sorted(range(len(prompts)), key=lambda i: (-len(encoded[i]), -bounds[i]))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    results: list[Prediction | None] = [None] * len(prompts)
    bar = tqdm(total=len(prompts), desc=desc, unit="prompt", disable=not progress)
    autocast = decode_autocast(device, decode_dtype)
    try:
        with torch.inference_mode(), autocast:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                input_ids, attention_mask = _left_padded([encoded[i] for i in idx], pad_id)
                width = input_ids.shape[1]
                # One extra step per row so an answer of exactly `bound` tokens can still emit EOS.
                limits = torch.tensor([bounds[i] + 1 for i in idx], device=device)
                out = model.generate(
                    input_ids=input_ids.to(device),
                    attention_mask=attention_mask.to(device),
                    max_new_tokens=int(limits.max()),
                    do_sample=False,
                    eos_token_id=eos_id,
                    pad_token_id=pad_id,
                    stopping_criteria=StoppingCriteriaList([_RowBounds(width, limits)]),
                    # The model is whole in this process (si_hf.distributed), under ZeRO-3 too, and the
                    # processes label shards of different sizes: never wait for another's decoding steps
                    # (generate would by default while a ZeRO-3 config is registered).
                    synced_gpus=False,
                    **_cache_kwargs(cache_implementation, width + int(limits.max())),
                )
                for row, i in enumerate(idx):
                    results[i] = _prediction(tokenizer, out[row, width:].tolist(), bounds[i], eos_id)
                bar.update(len(idx))
    finally:
        bar.close()
        model.train(was_training)
    return results


def label_across_processes(
    state,
    model,
    tokenizer,
    task,
    prompts: Sequence[str],
    *,
    batch_size: int = 256,
    cache_implementation="dynamic",
    decode_dtype: str = "fp32",
    progress: bool = True,
) -> list[Prediction]:
    """`label` under `accelerate`: each process labels its shard of `prompts` and every process gets
    all the predictions back, in prompt order. One process labels everything itself; only the main
    process shows a progress bar."""
    progress = progress and state.is_main_process
    kwargs = {
        "batch_size": batch_size,
        "progress": progress,
        "cache_implementation": cache_implementation,
        "decode_dtype": decode_dtype,
    }
    if state.num_processes == 1:
        return label(model, tokenizer, task, prompts, **kwargs)
    from accelerate.utils import gather_object

    with state.split_between_processes(list(enumerate(prompts))) as shard:
        preds = label(model, tokenizer, task, [p for _, p in shard], **kwargs)
        mine = list(zip([i for i, _ in shard], preds))
    gathered = dict(gather_object(mine))
    return [gathered[i] for i in range(len(prompts))]
