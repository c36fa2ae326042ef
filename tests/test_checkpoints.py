"""In-round checkpoints: a round's training resumes from its last complete checkpoint, exactly.

The end-to-end check (a run SIGKILLed mid-round, rerun and compared with an uninterrupted run) is
`test_rounds.py::test_resume_mid_round_from_checkpoint_matches_uninterrupted_run`."""

import json

import pytest
import torch
from datasets import Dataset
from transformers import TrainerCallback

from si_hf.checkpoints import SETTINGS_FILE, TRAINER_STATE, checkpoint_step, resume_checkpoint
from si_hf.collator import PromptCompletionCollator
from si_hf.configs import SelfImproveArguments, SITrainingArguments, TaskArguments
from si_hf.modeling import SILlamaForCausalLM, tiny_config
from si_hf.tasks import get_task
from si_hf.tokenization import get_tokenizer
from si_hf.training import d0_stream, round_training_args, train_round, training_mix


class Crash(Exception):
    pass


class CrashAt(TrainerCallback):
    """Stops training with an exception once `step` optimizer steps are done, as a crash would."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Crash(f"crashed at step {self.step}")


def round_one(tmp_path, name: str, **overrides):
    """The training of a round 1 (D_0 plus a round of labels) as the loop sets it up, in `name`."""
    task = get_task("copy")
    rows = task.generate(64, seed=0, purpose="round", keys=(1,), difficulty=5)
    labels = Dataset.from_dict(
        {"prompt": rows["prompt"], "completion": rows["answer"], "difficulty": rows["difficulty"]}
    )
    task_args = TaskArguments(task="copy", d0="4", num_d0_examples=2000)
    si = SelfImproveArguments(round_max_steps=12, round_decay_steps=4, examples_per_round=64)
    d0 = d0_stream(task, 4, task_args, 1, 0, seed=7)
    mix = training_mix(d0, {1: labels}, si, d0_weight=4, seed=8, member=0)
    base = {
        "output_dir": str(tmp_path / "run"),
        "seed": 7,
        "per_device_train_batch_size": 8,
        "learning_rate": 1e-3,
        "save_steps": 4,
        "logging_steps": 2,
        "disable_tqdm": True,
        "use_cpu": True,
        **overrides,
    }
    args = round_training_args(
        SITrainingArguments(**base), si, 1, 0, str(tmp_path / name), {"bf16": False, "fp16": False}
    )
    torch.manual_seed(0)
    model = SILlamaForCausalLM(tiny_config(49))
    return model, args, mix


def train(tmp_path, name, callbacks=(), **overrides):
    model, args, mix = round_one(tmp_path, name, **overrides)
    char = get_tokenizer("char")
    return train_round(model, args, mix, PromptCompletionCollator(char), char, callbacks)


def weights(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_a_crashed_round_resumes_from_its_checkpoint_exactly(tmp_path):
    model, uninterrupted = train(tmp_path, "a")
    reference = weights(model)
    assert uninterrupted["train_resumed_from_step"] == 0 and uninterrupted["train_steps"] == 12

    with pytest.raises(Crash):
        train(tmp_path, "b", callbacks=[CrashAt(6)])
    # save_steps 4 and only the latest kept: the crash at step 6 leaves checkpoint-4
    assert sorted(p.name for p in (tmp_path / "b").glob("checkpoint-*")) == ["checkpoint-4"]
    model, resumed = train(tmp_path, "b")
    assert resumed["train_resumed_from_step"] == 4
    after = weights(model)
    assert after.keys() == reference.keys() and all(torch.equal(after[k], reference[k]) for k in after)
    # Trainer's training_loss is the mean over the steps this call ran (5..12), not the round's
    assert resumed["train_loss"] != uninterrupted["train_loss"]


def test_a_checkpoint_cut_short_or_of_other_settings_is_not_resumed(tmp_path, caplog):
    with pytest.raises(Crash):
        train(tmp_path, "b", callbacks=[CrashAt(9)])
    assert sorted(p.name for p in (tmp_path / "b").glob("checkpoint-*")) == ["checkpoint-8"]
    _, args, _ = round_one(tmp_path, "b")
    settings = json.loads((tmp_path / "b" / SETTINGS_FILE).read_text())
    assert settings["max_steps"] == 12 and settings["learning_rate"] == 1e-3

    # a crash while checkpoint-8 was written (Trainer writes trainer_state.json last)
    (tmp_path / "b" / "checkpoint-8" / TRAINER_STATE).unlink()
    assert resume_checkpoint(str(tmp_path / "b"), settings) is None
    assert not (tmp_path / "b" / "checkpoint-8").exists() and "was being written" in caplog.text

    with pytest.raises(Crash):
        train(tmp_path, "b", callbacks=[CrashAt(5)])
    # rerun with another learning rate: the checkpoint of the old one is dropped, the round starts over
    _, other = train(tmp_path, "b", learning_rate=5e-4)
    assert other["train_resumed_from_step"] == 0
    assert "learning_rate: 0.001 -> 0.0005" in caplog.text


def test_a_settings_record_cut_short_by_a_kill_drops_its_checkpoints(tmp_path, caplog):
    """A run killed while it wrote `si_hf_training.json` must not stop the rerun: checkpoints whose
    settings cannot be read are trained again from the round's start, and the record is rewritten whole."""
    with pytest.raises(Crash):
        train(tmp_path, "b", callbacks=[CrashAt(9)])
    record = tmp_path / "b" / SETTINGS_FILE
    settings = json.loads(record.read_text())
    record.write_text("")  # what open-and-truncate leaves when the kill lands before the write
    assert resume_checkpoint(str(tmp_path / "b"), settings) is None
    assert not (tmp_path / "b" / "checkpoint-8").exists() and "is not the JSON" in caplog.text
    assert json.loads(record.read_text()) == settings
    assert sorted(p.name for p in (tmp_path / "b").iterdir() if p.name.startswith(".")) == []


def test_checkpoint_step():
    assert checkpoint_step(None) == 0
    assert checkpoint_step("/x/work/round-001/member-0/trainer/checkpoint-1500") == 1500
