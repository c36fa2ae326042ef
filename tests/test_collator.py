import pytest
import torch
from datasets import Dataset
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

from si_hf.collator import PromptCompletionCollator

EXAMPLES = [
    {"prompt": "54321+876=", "completion": "320310", "difficulty": "5", "round": 0},
    {"prompt": "4821937=", "completion": "7391284", "difficulty": "7", "round": 1},
    {
        "prompt": "4321*765=",
        "completion": "83680+040470(876280)+0007160=8769960",
        "difficulty": "4x3",
        "round": 2,
    },
    {"prompt": "1+1=", "completion": "20", "difficulty": "1", "round": 0},
]


@pytest.fixture(scope="module")
def tok(char):
    return char


def _bare(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_masks_prompt_and_padding_right_pads(tok):
    batch = PromptCompletionCollator(tok)(EXAMPLES)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    width = max(_num_tokens(e) for e in EXAMPLES)
    assert batch["input_ids"].shape == batch["labels"].shape == (len(EXAMPLES), width)
    for row, example in enumerate(EXAMPLES):
        prompt = [tok.bos_token_id, *_bare(tok, example["prompt"])]
        completion = [*_bare(tok, example["completion"]), tok.eos_token_id]
        pad = width - len(prompt) - len(completion)
        assert batch["input_ids"][row].tolist() == prompt + completion + [tok.pad_token_id] * pad
        assert batch["attention_mask"][row].tolist() == [1] * (len(prompt) + len(completion)) + [0] * pad
        assert batch["labels"][row].tolist() == [-100] * len(prompt) + completion + [-100] * pad


def test_pretokenized_examples_match_string_examples(tok):
    collator = PromptCompletionCollator(tok)
    pretokenized = []
    for example in EXAMPLES:
        prompt = [tok.bos_token_id, *_bare(tok, example["prompt"])]
        ids = prompt + _bare(tok, example["completion"]) + [tok.eos_token_id]
        pretokenized.append({"input_ids": ids, "prompt_length": len(prompt), "round": 3})
    from_strings, from_ids = collator(EXAMPLES), collator(pretokenized)
    mixed = collator([pretokenized[0], EXAMPLES[1], pretokenized[2], EXAMPLES[3]])
    for key in from_strings:
        assert torch.equal(from_strings[key], from_ids[key]), key
        assert torch.equal(from_strings[key], mixed[key]), key


def _num_tokens(example):
    return 1 + len(example["prompt"]) + len(example["completion"]) + 1  # BOS, chars, EOS


def test_pad_to_multiple_of(tok):
    batch = PromptCompletionCollator(tok, pad_to_multiple_of=8)(EXAMPLES[:2])
    longest = max(_num_tokens(e) for e in EXAMPLES[:2])
    assert longest % 8 != 0 and batch["input_ids"].shape[1] == (longest // 8 + 1) * 8
    assert (batch["labels"][:, longest:] == -100).all()
    assert (batch["input_ids"][:, longest:] == tok.pad_token_id).all()


def test_over_long_example_raises_instead_of_truncating(tok):
    collator = PromptCompletionCollator(tok, max_length=20)
    assert max(_num_tokens(e) for e in EXAMPLES[:2]) <= 20
    collator(EXAMPLES[:2])
    longest = _num_tokens(EXAMPLES[2])
    with pytest.raises(ValueError, match=f"example 2 has {longest} tokens, more than max_length=20"):
        collator(EXAMPLES)


@pytest.mark.parametrize(
    "example, message",
    [
        ({"prompt": "12+3=", "answer": "15"}, "needs keys.*'answer', 'prompt'"),
        ({"prompt": "12+3=", "completion": "1 5"}, "' ' at position 1"),
        ({"prompt": "12+3?", "completion": "15"}, "'\\?' at position 4"),
        ({"input_ids": [1, 4, 2], "prompt_length": 3}, "prompt_length 3"),
        ({"input_ids": [1, 4, 5], "prompt_length": 1}, "must end with EOS id 2, got 5"),
    ],
)
def test_bad_examples_raise_clear_errors(tok, example, message):
    with pytest.raises(ValueError, match=message):
        PromptCompletionCollator(tok)([example])


def test_bad_arguments_raise(tok):
    with pytest.raises(ValueError, match="max_length must be a positive int or None, got 0"):
        PromptCompletionCollator(tok, max_length=0)
    with pytest.raises(ValueError, match="cannot collate an empty list"):
        PromptCompletionCollator(tok)([])


def _tiny_trainer(tok, tmp_path, examples):
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        # A fresh model is close to uniform, where every masking gives about log(vocab); peaked
        # logits make the masked and unmasked losses far apart.
        model.lm_head.weight.mul_(50)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_eval_batch_size=len(examples),
        remove_unused_columns=False,  # the collator reads the string columns itself
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    dataset = Dataset.from_list(examples)
    return Trainer(model=model, args=args, data_collator=PromptCompletionCollator(tok), eval_dataset=dataset)


def _hand_loss(model, tok, examples):
    """Mean next-token NLL over completion + EOS positions, built without the collator."""
    nll = []
    for example in examples:
        prompt = [tok.bos_token_id, *_bare(tok, example["prompt"])]
        ids = prompt + _bare(tok, example["completion"]) + [tok.eos_token_id]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        # Position t predicts token t + 1; the targets are the completion tokens and EOS.
        nll += [-logp[t, ids[t + 1]] for t in range(len(prompt) - 1, len(ids) - 1)]
    return torch.stack(nll).mean().item()


def test_trainer_loss_is_completion_only_token_mean(tok, tmp_path):
    trainer = _tiny_trainer(tok, tmp_path, EXAMPLES)
    metrics = trainer.evaluate()
    # One eval batch: transformers 5.23 divides the summed NLL by num_items_in_batch, the number of
    # non -100 labels after the causal shift, i.e. a token mean over the whole batch.
    assert metrics["eval_loss"] == pytest.approx(_hand_loss(trainer.model, tok, EXAMPLES), rel=1e-5)

    batch = trainer.data_collator(EXAMPLES)
    full_sequence = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    with torch.no_grad():
        unmasked = trainer.model(input_ids=batch["input_ids"], labels=full_sequence).loss.item()
    assert unmasked != pytest.approx(metrics["eval_loss"], rel=1e-3)


def _loss_with_perturbed_logits(trainer, batch, positions):
    """Trainer.compute_loss with the logits at (row, position) pairs replaced by noise."""

    def perturb(module, inputs, output):
        output = output.clone()
        for row, position in positions:
            output[row, position] = torch.randn_like(output[row, position]) * 10
        return output

    handle = trainer.model.lm_head.register_forward_hook(perturb)
    try:
        with torch.no_grad():
            return trainer.compute_loss(trainer.model, dict(batch)).item()
    finally:
        handle.remove()


def test_predictions_of_prompt_tokens_do_not_change_the_loss(tok, tmp_path):
    trainer = _tiny_trainer(tok, tmp_path, EXAMPLES)
    batch = trainer.data_collator(EXAMPLES)
    base = _loss_with_perturbed_logits(trainer, batch, [])
    prompt_lengths = [len(e["prompt"]) + 1 for e in EXAMPLES]
    lengths = [_num_tokens(e) for e in EXAMPLES]
    width = batch["input_ids"].shape[1]
    # Positions before the last prompt token predict prompt tokens; positions from the last token on
    # predict padding. Neither may count.
    ignored = [(r, t) for r, p in enumerate(prompt_lengths) for t in range(p - 1)]
    ignored += [(r, t) for r, n in enumerate(lengths) for t in range(n - 1, width)]
    torch.manual_seed(1)
    assert _loss_with_perturbed_logits(trainer, batch, ignored) == pytest.approx(base, rel=1e-6)
    # The last prompt token predicts the first answer token: that one must count.
    counted = [(r, p - 1) for r, p in enumerate(prompt_lengths)]
    assert _loss_with_perturbed_logits(trainer, batch, counted) != pytest.approx(base, rel=1e-3)


def test_packed_batches_hold_the_same_examples_and_give_the_padded_loss(tok):
    """Padding-free packing changes the compute, not the maths: the same completion tokens are
    labelled, no example attends to another, and the batch loss equals the padded one. (transformers
    builds the block mask from position_ids only without a KV cache: training runs use_cache=False.)"""
    from si_hf.modeling import SILlamaForCausalLM, tiny_config

    torch.manual_seed(0)
    model = SILlamaForCausalLM(tiny_config(len(tok), initializer_range=0.3))
    examples = [{"prompt": "1" * n + "=", "completion": "2" * n} for n in (1, 9, 3, 7, 2, 5, 8, 4)]
    padded = PromptCompletionCollator(tok)(examples)
    packed = PromptCompletionCollator(tok, pack_length=24)(examples)
    assert set(packed) == {"input_ids", "labels", "position_ids"}
    assert packed["input_ids"].numel() < padded["input_ids"].numel()
    assert packed["input_ids"].shape[1] == 24 and packed["input_ids"].shape[0] < len(examples)
    # the same multiset of labelled tokens, and each row's positions restart per example
    assert sorted(packed["labels"][packed["labels"] != -100].tolist()) == sorted(
        padded["labels"][padded["labels"] != -100].tolist()
    )
    starts = (packed["position_ids"] == 0).sum().item()
    assert starts >= len(examples)
    loss_padded = model(**padded, use_cache=False).loss
    loss_packed = model(**packed, use_cache=False).loss
    assert torch.allclose(loss_padded, loss_packed, atol=1e-5)
    # an example longer than pack_length gets a row of its own length
    long = PromptCompletionCollator(tok, pack_length=4)(examples[:2])
    assert long["input_ids"].shape[1] == max(
        len(e["prompt"]) + len(e["completion"]) + 2 for e in examples[:2]
    )


def test_packing_without_the_mask_would_leak_between_examples(tok):
    """The packed loss is not an accident: with one position sequence for the whole row (examples
    attending to each other) the loss differs."""
    from si_hf.modeling import SILlamaForCausalLM, tiny_config

    torch.manual_seed(0)
    model = SILlamaForCausalLM(tiny_config(len(tok), initializer_range=0.3))
    examples = [{"prompt": "1" * n + "=", "completion": "2" * n} for n in (3, 4, 2)]
    packed = PromptCompletionCollator(tok, pack_length=32)(examples)
    assert packed["input_ids"].shape[0] == 1
    padded_loss = model(**PromptCompletionCollator(tok)(examples), use_cache=False).loss
    leaky = dict(packed, position_ids=torch.arange(packed["input_ids"].shape[1])[None])
    assert torch.allclose(model(**packed, use_cache=False).loss, padded_loss, atol=1e-5)
    assert not torch.allclose(model(**leaky, use_cache=False).loss, padded_loss, atol=1e-3)


def test_without_completion_only_loss_every_token_after_bos_is_labelled(tok):
    padded = PromptCompletionCollator(tok, completion_only_loss=False)(EXAMPLES)
    masked = PromptCompletionCollator(tok)(EXAMPLES)
    assert torch.equal(padded["input_ids"], masked["input_ids"])
    for row, example in enumerate(EXAMPLES):
        n = _num_tokens(example)
        ids = padded["input_ids"][row].tolist()
        # BOS is never a target (nothing predicts it); padding never is either
        assert padded["labels"][row].tolist() == [-100] + ids[1:n] + [-100] * (len(ids) - n)
    # the completion's labels are the masked collator's, so the option only adds prompt tokens
    completion = masked["labels"] != -100
    assert torch.equal(padded["labels"][completion], masked["labels"][completion])
    assert (padded["labels"] != -100).sum() > completion.sum()


def test_packing_keeps_the_prompt_labels_and_the_padded_loss(tok):
    from si_hf.modeling import SILlamaForCausalLM, tiny_config

    torch.manual_seed(0)
    model = SILlamaForCausalLM(tiny_config(len(tok), initializer_range=0.3))
    examples = [{"prompt": "1" * n + "=", "completion": "2" * n} for n in (1, 9, 3, 7, 2, 5, 8, 4)]
    padded = PromptCompletionCollator(tok, completion_only_loss=False)(examples)
    packed = PromptCompletionCollator(tok, pack_length=24, completion_only_loss=False)(examples)
    labelled = packed["labels"] != -100
    assert sorted(packed["labels"][labelled].tolist()) == sorted(
        padded["labels"][padded["labels"] != -100].tolist()
    )
    # every example's first token (BOS, position 0) is unlabelled, every other token of it labelled
    assert torch.equal(labelled, (packed["position_ids"] > 0) & (packed["input_ids"] != tok.pad_token_id))
    loss_padded = model(**padded, use_cache=False).loss
    loss_packed = model(**packed, use_cache=False).loss
    assert torch.allclose(loss_padded, loss_packed, atol=1e-5)
    masked = model(**PromptCompletionCollator(tok, pack_length=24)(examples), use_cache=False).loss
    assert not torch.allclose(loss_packed, masked, atol=1e-3)


def test_trainer_loss_without_completion_only_loss_is_the_full_sequence_token_mean(tok, tmp_path):
    trainer = _tiny_trainer(tok, tmp_path, EXAMPLES)
    trainer.data_collator = PromptCompletionCollator(tok, completion_only_loss=False)
    nll = []
    for example in EXAMPLES:
        ids = [tok.bos_token_id, *_bare(tok, example["prompt"] + example["completion"]), tok.eos_token_id]
        with torch.no_grad():
            logp = torch.log_softmax(trainer.model(torch.tensor([ids])).logits[0].float(), dim=-1)
        nll += [-logp[t, ids[t + 1]] for t in range(len(ids) - 1)]
    assert trainer.evaluate()["eval_loss"] == pytest.approx(torch.stack(nll).mean().item(), rel=1e-5)


def test_completion_only_loss_must_be_a_bool(tok):
    with pytest.raises(ValueError, match="completion_only_loss must be True or False, got 'no'"):
        PromptCompletionCollator(tok, completion_only_loss="no")
