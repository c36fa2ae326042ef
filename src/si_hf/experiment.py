"""The identity of an experiment: which settings define it, their snapshot in every round, and drift.

A store continued with another value of one of `EXPERIMENT_KEYS` would mix two experiments in one
run, so the round loop refuses it unless --allow_config_change is given (README, "What the store
guarantees"). Every other argument may change between invocations (logging, batch sizes of decoding,
the Hub repos, ...). Every round records the whole configuration (`config_snapshot`) in its marker.
"""

from __future__ import annotations

import dataclasses
import json

from si_hf.round_data import LABEL_SETTINGS, LABEL_SETTINGS_ADDED_LATER

_TASK = (
    "task",
    "d0",
    "num_d0_examples",
    "maze_num_nodes",
    "maze_num_hops",
    "d0_operand_lengths",
    "data_seed_base",
)
_SELF_IMPROVE = (
    "schedule",
    "difficulty_step",
    "accelerate_threshold",
    *LABEL_SETTINGS,  # what a round's labels depend on
    "newest_round_probability",
    "min_round_examples",
    "precision",
    "completion_only_loss",
    "vote_variant",
    "round_init",
)
_MODEL = (
    "model_name_or_path",
    "model_revision",
    "preset",
    "model_overrides",
    "position_encoding",
    "attn_implementation",
    "dtype",
    "use_peft",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "lora_modules_to_save",
    "use_rslora",
    "use_dora",
    "tokenizer_name",
)
_TRAINING = (
    "seed",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_steps",
    "learning_rate",
    "warmup_steps",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "weight_decay",
    "max_grad_norm",
)
EXPERIMENT_KEYS = {"task": _TASK, "self_improve": _SELF_IMPROVE, "model": _MODEL, "training": _TRAINING}

# Settings added after stores were written: the value those stores ran with.
KEYS_ADDED_LATER = {
    "completion_only_loss": True,
    "d0_operand_lengths": "independent",
    "vote_variant": "independent",
    "round_init": "continue",
    **LABEL_SETTINGS_ADDED_LATER,
}


def _no_secrets(values: dict) -> dict:
    """Credentials (`hub_token`) are never recorded; `tokenizer_name` and token counts are settings."""
    return {k: v for k, v in values.items() if not k.endswith("_token")}


def config_snapshot(task_args, si, model_args, train_args) -> dict:
    """Every argument of the run (credentials left out), by section, as a round records it."""
    return {
        "task": _no_secrets(dataclasses.asdict(task_args)),
        "self_improve": _no_secrets(dataclasses.asdict(si)),
        "model": _no_secrets(dataclasses.asdict(model_args)),
        "training": _no_secrets(train_args.to_dict()),
    }


def config_changes(recorded: dict, current: dict) -> list[str]:
    """`section.key: recorded -> current` for every setting of EXPERIMENT_KEYS that differs. Both are
    `config_snapshot`s. A key a recorded section lacks (an older version of si-hf did not have it) counts
    as the value that version ran with (KEYS_ADDED_LATER), or is not compared when there is none."""
    current = json.loads(json.dumps(current, default=str))  # compare as they are stored
    changes = []
    for section, keys in EXPERIMENT_KEYS.items():
        old, new = recorded.get(section, {}), current.get(section, {})
        if section in recorded:
            old = {**{k: v for k, v in KEYS_ADDED_LATER.items() if k in keys}, **old}
        for key in keys:
            if key in old and key in new and old[key] != new[key]:
                changes.append(f"{section}.{key}: {old[key]!r} -> {new[key]!r}")
    return changes
