"""Carry-chain test sets (appendix B.8): exact longest chains, held out, seeded; `si-hf analyze carries`."""

import json
import re

import pytest
from datasets import Dataset, load_from_disk

from si_hf.carries import (
    _excluded,
    carry_accuracy,
    carry_outs,
    carry_problems,
    chain_histogram,
    longest_chain,
    operands_of,
)
from si_hf.cli import main as cli
from si_hf.evaluation import build_eval_sets
from si_hf.tasks import get_task
from si_hf.testing.models import lookup_model
from si_hf.tokenization import get_tokenizer


def test_longest_chain_counts_consecutive_columns_that_carry_out():
    assert carry_outs(999, 1) == [True, True, True]
    assert longest_chain(999, 1) == 3 and longest_chain(123, 456) == 0
    assert longest_chain(15, 5) == 1  # 5 + 5 carries, 1 + 0 + 1 does not
    assert carry_outs(1095, 5) == [True, True, False, False]  # 5+5, 9+0+1, then 0+0+1 and 1 + 0
    assert longest_chain(1095, 5) == 2
    assert carry_outs(9505, 505) == [True, False, True, True] and longest_chain(9505, 505) == 2


@pytest.mark.parametrize("name", ["reverse_addition", "forward_addition"])
def test_every_problem_has_exactly_the_chain_it_is_filed_under(name):
    task = get_task(name)
    rows = carry_problems(task, [3, 6], 12, seed=5)
    assert len(rows) == 12 * (4 + 7)
    cells = {(r["length"], r["max_carry"]) for r in rows}
    assert cells == {(3, c) for c in range(4)} | {(6, c) for c in range(7)}
    for row in rows:
        a, b = task.operands(row["prompt"])
        assert len(a) == len(b) == row["length"] and a[-1 if name == "reverse_addition" else 0] != "0"
        assert longest_chain(*operands_of(task, row["prompt"])) == row["max_carry"]
        assert row["completion"] == task.solve(row["prompt"])
        assert task.split_of(row["prompt"]) == "eval"  # never a training prompt
    assert len({r["prompt"] for r in rows}) == len(rows)
    # the same on every machine, another set under another seed
    assert carry_problems(task, [3, 6], 12, seed=5) == rows
    assert carry_problems(task, [3, 6], 12, seed=6) != rows


def test_the_runs_evaluation_prompts_are_left_out(tmp_path):
    task = get_task("reverse_addition")
    first = carry_problems(task, [2], 6, seed=1)
    banned = {r["prompt"] for r in first[::2]}
    again = carry_problems(task, [2], 6, seed=1, exclude=banned)
    assert banned and not banned & {r["prompt"] for r in again} and len(again) == len(first)
    # MODEL inside a store: its round marker names the data seed and the evaluation size
    (tmp_path / "model").mkdir()
    config = {"task": {"data_seed_base": 77}, "self_improve": {"eval_examples_per_difficulty": 40}}
    (tmp_path / "si_hf_round.json").write_text(json.dumps({"info": {"config": config}}))
    eval_prompts = build_eval_sets(task, [2, 3], num_per_difficulty=40, seed=77)
    assert _excluded(tmp_path / "model", task, [2, 3]) == {p for ps, _ in eval_prompts.values() for p in ps}
    assert _excluded(tmp_path / "elsewhere" / "model", task, [2]) == set()


def test_too_many_problems_for_a_small_cell_is_an_error():
    with pytest.raises(
        ValueError, match="--per_carry 50: only .* 1-digit problems with a longest carry chain of 0"
    ):
        carry_problems(get_task("reverse_addition"), [1], 50, seed=0)
    with pytest.raises(ValueError, match="task: 'copy' has no carries"):
        carry_problems(get_task("copy"), [3], 5, seed=0)


def test_analyze_carries_end_to_end(tmp_path, capsys):
    char = get_tokenizer("char")
    model = lookup_model(char, {"=": "2", "2": "0", "0": "<eos>"})  # answers "20": right for 1 + 1 only
    model.save_pretrained(tmp_path / "model")
    char.save_pretrained(tmp_path / "model")
    task = get_task("reverse_addition")
    labels = carry_problems(task, [4], 3, seed=9)
    (tmp_path / "round" / "dataset" / "data").mkdir(parents=True)  # a round's dataset as the store writes it
    Dataset.from_list(labels).to_parquet(
        str(tmp_path / "round" / "dataset" / "data" / "train-00000-of-00001.parquet")
    )
    out = tmp_path / "carries"
    assert cli(["analyze", "carries", str(tmp_path / "model"), "--lengths", "1", "2", "--per_carry", "3",
                "--round_data", str(tmp_path / "round"), "--output_dir", str(out)]) == 0  # fmt: skip
    problems = load_from_disk(str(out / "problems"))
    assert problems.column_names == [
        "prompt",
        "completion",
        "length",
        "max_carry",
        "model_completion",
        "correct",
    ]
    assert len(problems) == 3 * (2 + 3)
    assert set(problems["model_completion"]) == {"20"}
    assert problems["correct"] == [c == "20" for c in problems["completion"]]
    accuracy = json.loads((out / "carries.json").read_text())
    assert accuracy == carry_accuracy(problems.to_list()) and set(accuracy) == {"1", "2"}
    assert set(accuracy["2"]) == {"0", "1", "2"}
    text = (out / "carries.md").read_text()
    assert "| operand length | chain 0 | chain 1 | chain 2 |" in text
    histogram = chain_histogram(task, [r["prompt"] for r in labels])
    assert histogram == {c: 3 for c in range(5)}
    assert "(figure 29): 0: 3, 1: 3, 2: 3, 3: 3, 4: 3" in text
    for name in ("carries.png", "carry_histogram.png"):
        assert (out / name).stat().st_size > 1000
    assert "chain 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, match",
    [(["--lengths", "3"], "holds no config.json"), (["--lengths", "0"], "--lengths \\[0\\]")],
)
def test_analyze_carries_refuses_bad_input(tmp_path, capsys, extra, match):
    with pytest.raises(SystemExit) as exit_info:
        cli(["analyze", "carries", str(tmp_path), *extra, "--output_dir", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "o").exists()  # refused before any work


def test_a_run_evaluates_its_carry_sets_every_round(tmp_path):
    """`eval_carry_sets`: per round, exact match by operand length and longest chain in metrics.json, the
    trackers' scalars and the report; the same figures `si-hf analyze carries` would compute."""
    from test_rounds import run_dir, write_config

    from si_hf.publishing.report import write_report
    from si_hf.rounds import main
    from si_hf.tracking import round_scalars

    cfg = write_config(tmp_path, task="reverse_addition", d0="2", num_rounds=1, filters=["length"],
                       eval_carry_sets=[2, 3], eval_carry_per_chain=3)  # fmt: skip
    main(["--config", str(cfg)])
    out, task = run_dir(cfg), get_task("reverse_addition")
    for r in (0, 1):
        metrics = json.loads((out / f"rounds/round-{r:03d}/member-0/metrics.json").read_text())
        carries = metrics["carry_accuracy"]
        assert {n: sorted(c) for n, c in carries.items()} == {"2": ["0", "1", "2"], "3": ["0", "1", "2", "3"]}
    # recomputed from the published model: problems seeded by the data seed, the run's eval prompts out
    from transformers import AutoModelForCausalLM

    from si_hf.carries import evaluate_carries

    seed = json.loads(cfg.read_text()).get("data_seed_base", 1234)
    evals = build_eval_sets(task, [2, 3], num_per_difficulty=8, seed=seed)
    rows = carry_problems(task, [2, 3], 3, seed=seed, exclude={p for ps, _ in evals.values() for p in ps})
    model = AutoModelForCausalLM.from_pretrained(out / "rounds/round-001/member-0/model")
    assert carry_accuracy(evaluate_carries(model, get_tokenizer("char"), task, rows)) == carries
    assert round_scalars(metrics)["eval_carry_accuracy/L3-chain-3"] == carries["3"]["3"]
    report = write_report(out).read_text()
    assert "## Carry chains (paper appendix B.8)" in report and "](carries.png)" in report
    assert "| round | operand length | chain 0 | chain 1 | chain 2 | chain 3 |" in report


def test_carry_sets_are_for_addition_only():
    from si_hf.configs import SelfImproveArguments

    with pytest.raises(ValueError, match=r"eval_carry_sets: \[0\]; expected operand lengths"):
        SelfImproveArguments(eval_carry_sets=[0])
    from si_hf.carries import check_carry_sets

    with pytest.raises(ValueError, match="eval_carry_sets: \\[3\\]: carry chains are defined for"):
        check_carry_sets([3], get_task("multiplication"))
    check_carry_sets([], get_task("multiplication"))
