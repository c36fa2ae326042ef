"""The identity of an experiment: which settings define it and how a changed one is found."""

import json

from si_hf.configs import ModelArguments, SelfImproveArguments, SITrainingArguments, TaskArguments
from si_hf.experiment import EXPERIMENT_KEYS, config_changes, config_snapshot
from si_hf.round_data import LABEL_SETTINGS


def test_a_setting_added_later_counts_as_its_old_value_in_an_older_snapshot():
    older = {
        "self_improve": {"filters": ["none"]},
        "model": {"preset": "cpu"},
    }  # before both settings existed
    same = {"self_improve": {"filters": ["none"], "decode_precision": "fp32", "completion_only_loss": True}}
    assert config_changes(older, same) == []
    changed = {
        "self_improve": {"filters": ["none"], "decode_precision": "bf16", "completion_only_loss": False}
    }
    assert config_changes(older, changed) == [
        "self_improve.decode_precision: 'fp32' -> 'bf16'",
        "self_improve.completion_only_loss: True -> False",
    ]
    # a snapshot without the section at all records nothing to hold the run to
    assert config_changes({"model": {"preset": "cpu"}}, changed) == []
    task = {"task": {"task": "forward_addition", "d0": "8"}}
    assert config_changes(task, {"task": {**task["task"], "d0_operand_lengths": "independent"}}) == []
    assert config_changes(task, {"task": {**task["task"], "d0_operand_lengths": "equal"}}) == [
        "task.d0_operand_lengths: 'independent' -> 'equal'"
    ]


def test_the_snapshot_holds_every_experiment_key_and_no_token(tmp_path):
    args = (
        TaskArguments(task="copy", d0="4"),
        SelfImproveArguments(filters=["length"], plugin_options={"x": {"y": 1}}),
        ModelArguments(preset="tiny"),
        SITrainingArguments(output_dir=str(tmp_path), seed=3, hub_token="hf_secret_value"),
    )
    snapshot = config_snapshot(*args)
    for section, keys in EXPERIMENT_KEYS.items():
        assert set(keys) <= set(snapshot[section]), section
    assert "hf_secret_value" not in json.dumps(snapshot, default=str)
    assert snapshot["model"]["tokenizer_name"] is None  # a setting, not a credential
    assert set(LABEL_SETTINGS) <= set(EXPERIMENT_KEYS["self_improve"])
    changed = config_snapshot(args[0], SelfImproveArguments(filters=["none"]), *args[2:])
    assert config_changes(snapshot, changed) == [
        "self_improve.filters: ['length'] -> ['none']",
        "self_improve.plugin_options: {'x': {'y': 1}} -> None",
    ]
