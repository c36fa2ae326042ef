"""One member's round of training: its arguments, its D_0 stream and its mix."""

import pytest
from datasets import Dataset

from si_hf.configs import SelfImproveArguments, SITrainingArguments, TaskArguments, check_training_arguments
from si_hf.precision import precision_overrides
from si_hf.tasks import get_task
from si_hf.training import (
    d0_stream,
    round_seed,
    round_training_args,
    train,
    training_mix,
)


def test_each_round_reads_a_different_part_of_d0():
    """A fresh Trainer restarts D_0 at epoch 0 every round: the loop must not feed it the same rows."""
    task, args = get_task("copy"), TaskArguments(task="copy", d0="6", num_d0_examples=50_000)

    def head(r):
        return [row["prompt"] for _, row in zip(range(50), d0_stream(task, 6, args, r, 0, seed=7))]

    heads = [head(r) for r in (0, 1, 2)]
    assert len({tuple(h) for h in heads}) == 3
    assert heads[1] == head(1)  # but seeded


def test_round_training_args(tmp_path):
    args = SITrainingArguments(
        output_dir=str(tmp_path), seed=3, max_steps=100, learning_rate=1e-3, lr_scheduler_kwargs={"a": 1}
    )
    si = SelfImproveArguments(round_max_steps=7, round_decay_steps=5, round_learning_rate=2e-4)
    r0 = round_training_args(args, si, 0, 1, "w0", {"bf16": False, "fp16": False})
    assert (r0.seed, r0.max_steps, r0.learning_rate, r0.output_dir) == (round_seed(3, 0, 1), 100, 1e-3, "w0")
    r2 = round_training_args(args, si, 2, 0, "w2", {"bf16": False, "fp16": False})
    assert (r2.seed, r2.max_steps, r2.learning_rate) == (5, 7, 2e-4)
    assert r2.lr_scheduler_kwargs == {"a": 1, "num_decay_steps": 5}
    assert r2.accelerator_config.dispatch_batches is False and r2.push_to_hub is False
    # no checkpoints unless save_steps asks for them; the run's trackers, not the Trainer's own
    assert (r2.save_strategy, r2.report_to, r2.run_name) == ("no", [], str(tmp_path))
    saving = SITrainingArguments(output_dir=str(tmp_path), save_steps=0.25, report_to="tensorboard")
    voting = SelfImproveArguments(num_members=3)
    r1 = round_training_args(saving, voting, 1, 2, "w1", {"bf16": False, "fp16": False})
    assert (r1.save_strategy, r1.save_steps, r1.save_total_limit) == ("steps", 0.25, 1)
    assert (r1.report_to, r1.run_name) == ([], f"{tmp_path}/member-2")
    assert precision_overrides("fp32") == {"bf16": False, "fp16": False}


def rows(n, length):
    return Dataset.from_dict(
        {
            "prompt": ["1" * length + "="] * n,
            "completion": ["1" * length] * n,
            "difficulty": [str(length)] * n,
        }
    )


def test_training_mix_leaves_near_empty_rounds_out(caplog):
    task, args = get_task("copy"), TaskArguments(task="copy", d0="3", num_d0_examples=2000)
    si = SelfImproveArguments(examples_per_round=1000, min_round_examples=5)
    d0 = d0_stream(task, 3, args, 2, 0, seed=0)
    mix = training_mix(d0, {1: rows(50, 4), 2: rows(3, 5)}, si, d0_weight=3, seed=1, member=0)
    seen = [row["difficulty"] for _, row in zip(range(400), mix)]
    assert "5" not in seen and 0.35 < seen.count("4") / len(seen) < 0.65  # round 1 is now the newest
    assert "kept 3 labels" in caplog.text


@pytest.mark.parametrize(
    "field, value, hint",
    [
        ("push_to_hub", True, "hub_model_id"),
        ("resume_from_checkpoint", "ckpt", "rerun the same command"),
        ("save_strategy", "epoch", "set save_steps: N"),
        ("save_only_model", True, "needs the optimizer"),
        ("bf16", True, "precision: bf16"),
        ("fp16", True, "fp16 is not supported"),
    ],
)
def test_training_arguments_the_loop_sets_itself_are_refused(tmp_path, field, value, hint):
    with pytest.raises(ValueError, match=f"{field}=.*{hint}"):
        check_training_arguments(
            SITrainingArguments(output_dir=str(tmp_path), use_cpu=True, **{field: value})
        )


@pytest.mark.parametrize("steps", [-1, 2.5, True])
def test_save_steps_must_be_a_cadence(tmp_path, steps):
    args = SITrainingArguments(output_dir=str(tmp_path), use_cpu=True)
    args.save_steps = steps
    with pytest.raises(
        ValueError, match=f"save_steps={steps!r}: expected 0 .* an int >= 1 .* a float in \\(0, 1\\)"
    ):
        check_training_arguments(args)


def test_save_strategy_steps_needs_save_steps(tmp_path):
    check_training_arguments(
        SITrainingArguments(output_dir=str(tmp_path), save_strategy="steps", save_steps=50, max_steps=100)
    )
    with pytest.raises(ValueError, match="save_strategy='steps' with save_steps=0"):
        check_training_arguments(SITrainingArguments(output_dir=str(tmp_path), save_strategy="steps"))


def test_precision_bf16_reaches_the_round_arguments(tmp_path):
    """The loop's own per-round copies set bf16 from `precision`: that must not trip the refusal."""
    args = SITrainingArguments(output_dir=str(tmp_path), use_cpu=True, max_steps=100)
    check_training_arguments(args)
    si = SelfImproveArguments(precision="bf16")
    r1 = round_training_args(args, si, 1, 0, "w", precision_overrides(si.precision))
    assert r1.bf16 is True and r1.fp16 is False


def test_packed_training_follows_the_padded_one(tmp_path, char):
    """Trainer steps on packed batches: the same losses and the same weights as on padded batches,
    up to float rounding (the mask comes from position_ids, which needs use_cache off in training)."""
    import torch
    from transformers import AutoModelForCausalLM

    from si_hf.collator import PromptCompletionCollator
    from si_hf.modeling import tiny_config

    task = get_task("copy")
    rows = task.generate(64, seed=0, purpose="d0", d0=8)
    data = Dataset.from_dict({"prompt": rows["prompt"], "completion": rows["answer"]})
    results = []
    for pack in (None, 32):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(tiny_config(len(char)))
        args = SITrainingArguments(
            output_dir=str(tmp_path / str(pack)),
            max_steps=4,
            per_device_train_batch_size=16,
            learning_rate=1e-3,
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            lr_scheduler_type="constant",
            seed=0,
        )
        model, out, _ = train(model, args, data, PromptCompletionCollator(char, pack_length=pack), char)
        assert model.config.use_cache is True  # restored for generation
        results.append((out.training_loss, [p.detach().clone() for p in model.parameters()]))
    (loss_a, w_a), (loss_b, w_b) = results
    assert abs(loss_a - loss_b) < 1e-4
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(w_a, w_b))


def test_torch_compile_trains_like_eager_and_returns_the_plain_model(tmp_path, char):
    """`torch_compile: true` (a TrainingArguments field the round loop passes on): the compiled steps
    on packed batches follow the eager ones up to float rounding (inductor fuses other ops), and what
    `train` hands back for labelling and publishing is the model itself, not torch's compiled wrapper."""
    import torch
    from transformers import AutoModelForCausalLM

    from si_hf.collator import PromptCompletionCollator
    from si_hf.modeling import tiny_config

    task = get_task("copy")
    rows = task.generate(64, seed=0, purpose="d0", d0=8)
    data = Dataset.from_dict({"prompt": rows["prompt"], "completion": rows["answer"]})
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(tiny_config(len(char)))
        args = SITrainingArguments(
            output_dir=str(tmp_path / str(compiled)),
            max_steps=4,
            per_device_train_batch_size=16,
            learning_rate=1e-3,
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            lr_scheduler_type="constant",
            seed=0,
            torch_compile=compiled,
        )
        trained, out, _ = train(model, args, data, PromptCompletionCollator(char, pack_length=32), char)
        assert trained is model and type(trained).__name__ == "SILlamaForCausalLM"
        trained.save_pretrained(tmp_path / f"saved-{compiled}")
        saved = (tmp_path / f"saved-{compiled}" / "model.safetensors").read_bytes()
        assert b"_orig_mod" not in saved  # the compiled wrapper's prefix never reaches a checkpoint
        results.append((out.training_loss, [p.detach().clone() for p in trained.parameters()]))
    (loss_a, w_a), (loss_b, w_b) = results
    assert abs(loss_a - loss_b) < 1e-4
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(w_a, w_b))
