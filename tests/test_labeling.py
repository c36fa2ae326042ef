import random

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers.cache_utils import DynamicLayer

from si_hf.labeling import BufferedLayer, Prediction, label
from si_hf.tasks import get_task
from si_hf.testing.models import lookup_model, random_model
from si_hf.tokenization import encode_prompt, get_tokenizer

torch.set_num_threads(1)


def greedy_reference(model, tokenizer, task, prompt):
    """Unbatched, uncached greedy decoding with plain forward calls: the slow obvious way."""
    ids = encode_prompt(tokenizer, prompt)
    bound, new = task.max_answer_tokens(prompt), []
    with torch.no_grad():
        while len(new) <= bound:
            nxt = int(model(torch.tensor([ids + new])).logits[0, -1].argmax())
            if nxt == tokenizer.eos_token_id:
                return new, True
            new.append(nxt)
    return new[:bound], False


def copy_prompts(n, seed=0):
    rng = random.Random(seed)
    return ["".join(rng.choices("0123456789", k=rng.randint(1, 9))) + "=" for _ in range(n)]


@pytest.mark.parametrize("position_encoding", ["nope", "rope"])
def test_batched_labels_match_unbatched_reference_in_input_order(char, copy_task, position_encoding):
    model = random_model(char, position_encoding)
    prompts = copy_prompts(12)
    assert len({len(p) for p in prompts}) > 3  # lengths differ: left padding and sorting are exercised
    batched = label(model, char, copy_task, prompts, batch_size=5, progress=False)
    one_by_one = [label(model, char, copy_task, [p], batch_size=1, progress=False)[0] for p in prompts]
    assert batched == one_by_one
    for prompt, pred in zip(prompts, batched):
        ids, finished = greedy_reference(model, char, copy_task, prompt)
        tokenizes = not set(ids) & set(char.all_special_ids)  # char: only specials break it
        assert pred.finished == finished and pred.tokenizes == tokenizes
        assert pred.complete == (finished and tokenizes) and pred.num_tokens == len(ids)
        assert pred.text == char.decode(ids, skip_special_tokens=True)
    assert len({p.text for p in batched}) > 3  # the outputs really depend on the prompt


def test_decoding_stops_at_eos_and_decodes_exactly(char, copy_task):
    model = lookup_model(char, {"=": "4", "4": "0", "0": "7", "7": "<eos>"})
    prompts = ["123456=", "123=", "12=", "5="]  # copy bounds 6, 3, 2, 1
    preds = label(model, char, copy_task, prompts, batch_size=4, progress=False)
    assert preds[0] == Prediction(text="407", finished=True, num_tokens=3)
    # An answer exactly at the bound still gets its EOS step.
    assert preds[1] == Prediction(text="407", finished=True, num_tokens=3)
    assert preds[2] == Prediction(text="40", finished=False, num_tokens=2)
    assert preds[3] == Prediction(text="4", finished=False, num_tokens=1)


def test_run_on_outputs_respect_the_bound_and_are_flagged(char, copy_task):
    model = lookup_model(char, {"=": "1", "1": "2", "2": "1"})  # cycles, never EOS
    prompts = copy_prompts(20, seed=1)
    preds = label(model, char, copy_task, prompts, batch_size=7, progress=False)
    for prompt, pred in zip(prompts, preds):
        bound = copy_task.max_answer_tokens(prompt)
        assert not pred.finished
        assert pred.num_tokens == bound and pred.text == ("12" * bound)[:bound]


def test_maze_tokens_decode_to_the_exact_string():
    maze_tok, maze = get_tokenizer("maze"), get_task("maze_hops", num_nodes=10)
    model = lookup_model(maze_tok, {"=": "61", "61": ">", ">": "7", "7": "<eos>"})
    prompt = "1>3#1:2-2:1,3,4-3:2-4:2="
    (pred,) = label(model, maze_tok, maze, [prompt], progress=False)
    assert pred == Prediction(text="61>7", finished=True, num_tokens=3)


def test_labels_that_do_not_retokenize_are_flagged_incomplete():
    """Two maze numbers back to back decode to "8449", which no tokenizer call can produce: the
    label must be unusable, or training on it would fail when the collator re-encodes it."""
    maze_tok, maze = get_tokenizer("maze"), get_task("maze_hops", num_nodes=10)
    model = lookup_model(maze_tok, {"=": "61", "61": ">", ">": "84", "84": "49", "49": "<eos>"})
    (pred,) = label(model, maze_tok, maze, ["1>3#1:2-2:1,3,4-3:2-4:2="], progress=False)
    assert pred.text == "61>8449" and pred.num_tokens == 4
    assert pred.finished and not pred.tokenizes and not pred.complete
    # a special token inside the answer is stripped by decode, so the label is unusable too
    char = get_tokenizer("char")
    model = lookup_model(char, {"=": "1", "1": "<bos>", "<bos>": "2", "2": "<eos>"})
    (pred,) = label(model, char, get_task("copy"), ["123="], progress=False)
    assert pred.text == "12" and pred.finished and not pred.tokenizes and not pred.complete


def test_peft_wrapped_model_labels_like_its_base(char, copy_task):
    model = random_model(char)
    prompts = copy_prompts(6, seed=2)
    base = label(model, char, copy_task, prompts, batch_size=4, progress=False)
    lora = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    # LoRA starts with B=0, so the wrapped model must give the base model's labels.
    assert label(lora, char, copy_task, prompts, batch_size=4, progress=False) == base


def test_training_mode_is_restored(char, copy_task):
    model = random_model(char).train()
    label(model, char, copy_task, ["12="], progress=False)
    assert model.training


def test_empty_prompts(char, copy_task):
    assert label(random_model(char), char, copy_task, [], progress=False) == []


def test_bad_inputs(char, copy_task):
    model = random_model(char)
    with pytest.raises(ValueError, match="batch_size=0"):
        label(model, char, copy_task, ["1="], batch_size=0)
    with pytest.raises(ValueError, match="single string '12='"):
        label(model, char, copy_task, "12=")
    with pytest.raises(ValueError, match="'!' at position 1"):
        label(model, char, copy_task, ["1!="], progress=False)


@pytest.mark.parametrize("position_encoding", ["nope", "rope"])
def test_static_and_concat_cache_labels_equal_dynamic_cache_labels(char, copy_task, position_encoding):
    """The buffered dynamic cache (the default) decodes like transformers' DynamicCache ("concat") and
    like the static cache (compiled by generate on a GPU; a trained model's near-ties, logits 5e-6
    apart, may still go another way there: docs/results.md)."""
    model = random_model(char, position_encoding)
    prompts = copy_prompts(12, seed=3)
    dynamic = label(model, char, copy_task, prompts, batch_size=5, progress=False)
    for other in ("static", "concat"):
        labels = label(
            model, char, copy_task, prompts, batch_size=5, progress=False, cache_implementation=other
        )
        assert labels == dynamic, other
    assert len({p.text for p in dynamic}) > 3
    with pytest.raises(
        ValueError, match=r"cache_implementation: 'paged' is not one of \['dynamic', 'static', 'concat'\]"
    ):
        label(model, char, copy_task, prompts, cache_implementation="paged")


def same_as(buffered, concat, k, v):
    got, want = buffered.update(k, v), concat.update(k, v)
    assert buffered.get_seq_length() == concat.get_seq_length()
    return all(g.dtype == w.dtype and torch.equal(g, w) for g, w in zip(got, want))


def test_buffered_layer_returns_dynamic_layers_keys_and_values_from_one_buffer():
    """Prefill, then one token per step: every step returns exactly DynamicLayer's keys and values,
    written into one buffer until it is full, then into one twice the size holding the old entries."""
    torch.manual_seed(0)
    buffered, concat = BufferedLayer(capacity=6), DynamicLayer()
    buffers = []
    for n in [4, 1, 1, 1, 1]:  # 4 prompt tokens, then decoding steps; the 7th position outgrows 6
        assert same_as(buffered, concat, torch.randn(3, 2, n, 8), torch.randn(3, 2, n, 5))
        assert buffered.keys.untyped_storage().data_ptr() == buffered._buffers[0].untyped_storage().data_ptr()
        buffers.append(buffered._buffers[0].untyped_storage().data_ptr())
    assert len(set(buffers[:3])) == 1 and buffers[3] != buffers[2] and buffered.capacity == 12


def test_buffered_layer_crops_resets_and_promotes_like_dynamic_layer():
    """crop(0) (called by generate every step on some devices) and crop(-n), reset, and bf16 values
    beside fp32 keys (bf16 autocast): after each, the same keys and values as DynamicLayer's."""
    torch.manual_seed(0)
    buffered, concat = BufferedLayer(capacity=8), DynamicLayer()
    assert same_as(buffered, concat, torch.randn(2, 2, 5, 4), torch.randn(2, 2, 5, 4).bfloat16())
    assert buffered.values.dtype == torch.float32  # promoted to the keys' dtype, as concatenation does
    for n in (0, -2):
        buffered.crop(n), concat.crop(n)
        assert same_as(buffered, concat, torch.randn(2, 2, 1, 4), torch.randn(2, 2, 1, 4))
    buffered.reset(), concat.reset()
    assert same_as(buffered, concat, torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4))
    with pytest.raises(ValueError, match="crop\\(2\\)"):
        buffered.crop(2)
    for call in (
        lambda: buffered.reorder_cache(torch.tensor([0])),
        lambda: buffered.batch_repeat_interleave(2),
    ):
        with pytest.raises(NotImplementedError, match="greedy decoding"):
            call()


@pytest.mark.parametrize("model_cache", ["static", "dynamic"])
def test_a_cache_named_in_the_models_generation_config_does_not_override_the_option(
    char, copy_task, model_cache
):
    """A checkpoint whose generation config names a cache (static, hybrid, ...) is labelled with the
    cache the option names, and gives the same labels."""
    model = random_model(char)
    prompts = copy_prompts(6, seed=5)
    expected = label(model, char, copy_task, prompts, batch_size=4, progress=False)
    model.generation_config.cache_implementation = model_cache
    layers = []
    model.register_forward_hook(
        lambda module, args, kwargs, out: layers.append(type(kwargs["past_key_values"].layers[0])),
        with_kwargs=True,
    )
    for option, layer in (("dynamic", BufferedLayer), ("concat", DynamicLayer)):
        layers.clear()
        labels = label(
            model, char, copy_task, prompts, batch_size=4, progress=False, cache_implementation=option
        )
        assert labels == expected and set(layers) == {layer}, option


def test_bf16_decoding_runs_under_autocast_and_leaves_the_weights(char, copy_task):
    """decode_dtype="bf16": every decoding step computes its logits in bf16 and the fp32 weights stay
    fp32; on a model without near-ties (an exact lookup) the labels are fp32's."""
    model = lookup_model(char, {"=": "4", "4": "0", "0": "7", "7": "<eos>"})
    dtypes = []
    model.lm_head.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    prompts = ["123456=", "123=", "12=", "5="]
    fp32 = label(model, char, copy_task, prompts, batch_size=4, progress=False)
    assert dtypes and set(dtypes) == {torch.float32}
    dtypes.clear()
    bf16 = label(model, char, copy_task, prompts, batch_size=4, progress=False, decode_dtype="bf16")
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert bf16 == fp32 and bf16[0] == Prediction(text="407", finished=True, num_tokens=3)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    with pytest.raises(ValueError, match=r"decode_dtype='fp16': expected one of \('fp32', 'bf16'\)"):
        label(model, char, copy_task, prompts, decode_dtype="fp16")
