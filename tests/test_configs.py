"""Every recipe parses through the real TrlParser, and bad keys/values fail loudly."""

import dataclasses
import re
from pathlib import Path

import pytest

from si_hf.configs import (
    ModelArguments,
    SelfImproveArguments,
    SITrainingArguments,
    TaskArguments,
    check_training_arguments,
)
from si_hf.rounds import parse_args
from si_hf.tasks import task_from_args
from si_hf.validation import validate

RECIPE_DIR = Path(__file__).resolve().parents[1] / "recipes"
RECIPES = sorted(RECIPE_DIR.rglob("*.yaml"))


def test_there_are_recipes_for_every_task():
    tasks = {p.parent.name for p in RECIPES}
    assert {
        "reverse_addition",
        "forward_addition",
        "copy",
        "reverse_string",
        "multiplication",
        "maze_hops",
        "maze_nodes",
    } <= tasks


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_parses(path):
    task_args, si, model_args, train_args = parse_args(["--config", str(path)])
    task = task_from_args(task_args, si)
    task.parse_difficulty(task_args.d0)  # d0 is a valid difficulty of the recipe's task
    assert train_args.max_steps > 0 and si.round_max_steps > 0
    assert train_args.lr_scheduler_kwargs["num_decay_steps"] <= train_args.max_steps
    assert si.round_decay_steps + si.round_warmup_steps <= si.round_max_steps
    assert str(path.parent.name) in train_args.output_dir
    check_training_arguments(train_args)
    if path.name.startswith("config_cpu"):  # minutes per round: trackers on, no in-round checkpoints
        assert train_args.report_to == ["tensorboard"] and train_args.save_steps == 0
    else:  # hours per round: a crash resumes from the round's last checkpoint
        assert 0 < train_args.save_steps < si.round_max_steps
    header = path.read_text().splitlines()[:3]
    assert any("Hardware" in line and "batch" in line for line in header), "header must name hardware + batch"


# the CPU contrasts (docs/results.md): the filtered recipe against the unfiltered one of the same task
CONTRASTS = [
    ("forward_addition", "config_cpu_no_filter.yaml", "config_cpu_length_filter.yaml"),
    ("multiplication", "config_cpu_no_filter.yaml", "config_cpu_majority_vote_length.yaml"),
    ("maze_hops", "config_cpu_no_filter.yaml", "config_cpu_verifier.yaml"),
]
FILTER_FIELDS = {
    "filters",
    "num_members",
    "vote_threshold",
    "vote_labels",
    "length_filter_tau",
    "verifier_checks",
}


@pytest.mark.parametrize("task, unfiltered, filtered", CONTRASTS, ids=[c[0] for c in CONTRASTS])
def test_cpu_contrasts_differ_in_the_filter_only(task, unfiltered, filtered):
    """A contrast measures the filter: round 0, schedule, rounds and evaluation are the same."""
    a, b = (parse_args(["--config", str(RECIPE_DIR / task / name)]) for name in (unfiltered, filtered))
    differ = set()
    for x, y in zip(a, b, strict=True):
        differ |= {f.name for f in dataclasses.fields(x) if getattr(x, f.name) != getattr(y, f.name)}
    assert differ - {"output_dir", "logging_dir"} <= FILTER_FIELDS, sorted(differ)
    assert a[1].filters == ["none"] and b[1].filters != ["none"]


def test_unknown_yaml_key_is_named(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("task: copy\nd0: '5'\nnum_rouns: 3\n")
    with pytest.raises(ValueError, match="num_rouns"):
        parse_args(["--config", str(cfg)])


def test_unknown_cli_flag_is_named():
    with pytest.raises(ValueError, match="--bogus"):
        parse_args(["--task", "copy", "--bogus", "1"])


def test_d0_operand_lengths_reaches_the_task(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("task: forward_addition\nd0: '4'\nmax_steps: 10\nd0_operand_lengths: equal\n")
    task_args, *_ = parse_args(["--config", str(cfg)])
    task = task_from_args(task_args)
    prompts = task.generate(100, seed=0, purpose="d0", d0=task_args.d0)["prompt"]
    assert all(len(a) == len(b) for a, b in (p[:-1].split("+") for p in prompts))
    task_args, *_ = parse_args(["--config", str(cfg), "--d0_operand_lengths", "independent"])
    prompts = task_from_args(task_args).generate(100, seed=0, purpose="d0", d0=4)
    assert any(len(a) != len(b) for a, b in (p[:-1].split("+") for p in prompts["prompt"]))
    cfg.write_text(cfg.read_text().replace("equal", "same"))
    with pytest.raises(
        ValueError,
        match=r"d0_operand_lengths: 'same' is not one of \['independent', 'equal', 'equal_weighted'\]",
    ):
        parse_args(["--config", str(cfg)])
    with pytest.raises(
        ValueError, match=r"d0_operand_lengths: 'equal' applies to task .* only.*task: 'copy'"
    ):
        parse_args(["--task", "copy", "--max_steps", "10", "--d0_operand_lengths", "equal"])


def test_cli_overrides_yaml(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "task: copy\nd0: '5'\nmax_steps: 10\nround_max_steps: 10\nround_decay_steps: 5\nfilters: [length]\n"
    )
    _, si, _, _ = parse_args(["--config", str(cfg), "--round_max_steps", "7"])
    assert si.round_max_steps == 7 and si.filters == ["length"]


def test_model_overrides_from_yaml_and_from_the_command_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "task: copy\nd0: '5'\nmax_steps: 10\npreset: cpu\nmodel_overrides: {num_hidden_layers: 2}\n"
    )
    _, _, model_args, _ = parse_args(["--config", str(cfg)])
    assert model_args.model_overrides == {"num_hidden_layers": 2}
    flag = '{"hidden_size": 192, "num_attention_heads": 3}'
    _, _, model_args, _ = parse_args(["--config", str(cfg), "--model_overrides", flag])
    assert model_args.model_overrides == {"hidden_size": 192, "num_attention_heads": 3}
    for bad in ("hidden_size=192", "[1, 2]"):
        with pytest.raises(ValueError, match=re.escape(f"model_overrides: {bad!r} is not a mapping")):
            parse_args(["--config", str(cfg), "--model_overrides", bad])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"filters": ["lenght"]}, "lenght"),
        ({"schedule": "fast"}, "fast"),
        ({"filters": ["majority_vote"], "num_members": 1}, "num_members"),
        ({"vote_threshold": 1.5}, "1.5"),
        ({"round": 1, "rounds": "0:2"}, "either"),
        ({"round": -1}, "-1"),
        ({"filters": ["length", "majority_vote"], "num_members": 3}, "must come first"),
        ({"filters": ["none", "length"]}, "none"),
        ({"verifier_checks": ["moves"]}, "moves"),
        ({"length_filter_tau": 0}, "length_filter_tau"),
        ({"examples_per_round": 0}, "examples_per_round"),
    ],
)
def test_bad_values_are_named(kwargs, match, tmp_path):
    """A value alone is refused by its argument class, its meaning by `si_hf.validation`: both before
    any work, naming the key or the value."""
    with pytest.raises(ValueError, match=match):
        si = SelfImproveArguments(**kwargs)
        validate(
            TaskArguments(task="copy", d0="4"),
            si,
            ModelArguments(),
            SITrainingArguments(output_dir=str(tmp_path)),
        )


def test_round_range():
    assert SelfImproveArguments(rounds="2:4").round_range(0) == (2, 4)
    assert SelfImproveArguments(round=3).round_range(0) == (3, 3)
    assert SelfImproveArguments(num_rounds=5).round_range(2) == (2, 5)
    with pytest.raises(ValueError, match="3-1"):
        SelfImproveArguments(rounds="3-1").round_range(0)


def test_help_of_every_parser_formats(capsys):
    """`python recipes/run_round.py --help` must print, not crash on a % in a help text."""
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--vote_labels {own,consensus}" in out and "--min_round_examples" in out and "--dtype" in out


def test_completion_only_loss_from_yaml_and_cli_reaches_the_collator(tmp_path):
    from si_hf.rounds import SelfImprovementRun

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"task: copy\nd0: '5'\nmax_steps: 10\ncompletion_only_loss: false\noutput_dir: {tmp_path / 'out'}\n"
    )
    args = parse_args(["--config", str(cfg)])
    assert args[1].completion_only_loss is False
    assert SelfImprovementRun(*args).collator.completion_only_loss is False
    _, si, _, _ = parse_args(["--config", str(cfg), "--completion_only_loss", "true"])
    assert si.completion_only_loss is True
    assert SelfImproveArguments().completion_only_loss is True  # the paper's setting by default


@pytest.mark.parametrize("cache", ["dynamic", "concat"])
def test_label_cache_implementation_reaches_labelling_and_evaluation(tmp_path, cache):
    """The option picks the KV cache that every decoding step of labels and evaluation writes to:
    BufferedLayer for dynamic (the default), transformers' DynamicLayer for concat."""
    from transformers.cache_utils import DynamicLayer

    from si_hf.labeling import BufferedLayer
    from si_hf.rounds import SelfImprovementRun
    from si_hf.testing.models import random_model

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"task: copy\nd0: '2'\nmax_steps: 10\neval_examples_per_difficulty: 3\noutput_dir: {tmp_path / 'out'}\n"
    )
    flags = [] if cache == "dynamic" else ["--label_cache_implementation", cache]
    run = SelfImprovementRun(*parse_args(["--config", str(cfg), *flags]))
    model = random_model(run.tokenizer)
    layers = []
    model.register_forward_hook(
        lambda module, args, kwargs, out: layers.append(type(kwargs["past_key_values"].layers[0])),
        with_kwargs=True,
    )
    run.evaluator.evaluate(model, ["2"])
    run._models[0] = (0, model)
    run.label(1, 0, ["12=", "345="])
    expected = BufferedLayer if cache == "dynamic" else DynamicLayer
    assert len(layers) > 4 and set(layers) == {expected}
    cfg.write_text(cfg.read_text() + "label_cache_implementation: paged\n")
    with pytest.raises(
        ValueError,
        match=r"label_cache_implementation: 'paged' is not one of \['dynamic', 'static', 'concat'\]",
    ):
        parse_args(["--config", str(cfg)])


def test_decode_precision_from_yaml_and_cli_reaches_labelling_and_evaluation(tmp_path):
    import torch

    from si_hf.rounds import SelfImprovementRun
    from si_hf.testing.models import random_model

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"task: copy\nd0: '3'\nmax_steps: 10\ndecode_precision: bf16\neval_examples_per_difficulty: 4\n"
        f"eval_beyond: 1\noutput_dir: {tmp_path / 'out'}\n"
    )
    args = parse_args(["--config", str(cfg)])
    assert args[1].decode_precision == "bf16"
    run = SelfImprovementRun(*args)
    assert run.decode["decode_dtype"] == "bf16"
    model = random_model(run.tokenizer)
    dtypes = []
    model.lm_head.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    result = run.evaluator.evaluate(model, ["3"])
    assert sorted(result.count) == ["1", "2", "3", "4"] and set(dtypes) == {torch.bfloat16}
    dtypes.clear()
    run._models[0] = (0, model)  # round 0's model, as the round that trained it leaves it in memory
    predictions, labelers, _ = run.label(1, 0, ["12=", "345="])
    assert labelers == [0] and len(predictions[0]) == 2 and set(dtypes) == {torch.bfloat16}

    _, si, _, _ = parse_args(["--config", str(cfg), "--decode_precision", "native"])
    assert si.decode_precision == "native"
    assert SelfImproveArguments().decode_precision == "fp32"  # labels as the weights compute them
    cfg.write_text(cfg.read_text().replace("decode_precision: bf16", "decode_precision: fp16"))
    with pytest.raises(
        ValueError, match=r"decode_precision: 'fp16' is not one of \['fp32', 'native', 'bf16'\]"
    ):
        parse_args(["--config", str(cfg)])
