import json
import math

import pytest
import torch

from si_hf.configs import SelfImproveArguments
from si_hf.data import d0_dataset
from si_hf.evaluation import (
    METRIC_PATH,
    EvalResult,
    build_eval_sets,
    eval_difficulties,
    evaluate_model,
    format_table,
    load_metric,
)
from si_hf.modeling import SILlamaForCausalLM, tiny_config
from si_hf.tasks import get_task, split_of
from si_hf.tasks.strings import Copy
from si_hf.testing.models import lookup_model
from si_hf.tokenization import get_tokenizer


@pytest.fixture(scope="module")
def metric():
    return load_metric()


def tiny_model(tokenizer):
    torch.manual_seed(0)
    return SILlamaForCausalLM(tiny_config(len(tokenizer))).eval()


def test_metric_is_the_local_module(metric):
    assert METRIC_PATH.is_file() and METRIC_PATH.parent.name == "metrics"
    assert metric.name == "exact_match_by_difficulty"
    # One import per line: evaluate's dependency scanner misreads "import a, b".
    imports = [line for line in METRIC_PATH.read_text().splitlines() if line.startswith("import ")]
    assert imports and all("," not in line for line in imports)


def test_metric_on_hand_made_predictions(metric):
    out = metric.compute(
        predictions=["12", "13", "0", "999", "1x", ""],
        references=["12", "31", "0", "999", "1", "7"],
        difficulties=["2", "2", "1", "3", "1", "1"],
        finished=[True] * 6,
    )
    # By hand: level 2 -> 1/2, level 1 -> 1/3 ("1x" and "" are wrong), level 3 -> 1/1; overall 3/6.
    assert out["exact_match_by_difficulty"] == {"2": 0.5, "1": pytest.approx(1 / 3), "3": 1.0}
    assert out["count_by_difficulty"] == {"2": 2, "1": 3, "3": 1}
    assert out["exact_match"] == 0.5
    one = {"references": ["12"], "difficulties": ["2"]}
    assert metric.compute(predictions=[" 12"], finished=[True], **one)["exact_match"] == 0.0
    # the right text without EOS is a wrong answer (paper section 3)
    assert metric.compute(predictions=["12"], finished=[False], **one)["exact_match"] == 0.0
    assert metric.compute(predictions=["12"], finished=[True], **one)["exact_match"] == 1.0


def test_oracle_answers_score_one_and_corruptions_the_exact_fraction(metric):
    task = get_task("reverse_addition")
    sets = build_eval_sets(task, [1, 2, 3, 4], num_per_difficulty=30, seed=0)
    keys = [k for k, (p, _) in sets.items() for _ in p]
    answers = [a for _, ans in sets.values() for a in ans]
    assert all(task.verify(p, a) for ps, ans in sets.values() for p, a in zip(ps, ans))
    perfect = metric.compute(
        predictions=answers, references=answers, difficulties=keys, finished=[True] * len(keys)
    )
    assert perfect["exact_match"] == 1.0
    assert set(perfect["exact_match_by_difficulty"].values()) == {1.0}
    # Corrupt every third answer of each level (flip its last digit).
    corrupted, expected = [], {}
    for key, (_, ans) in sets.items():
        for i, a in enumerate(ans):
            corrupted.append(a[:-1] + str((int(a[-1]) + 1) % 10) if i % 3 == 0 else a)
        expected[key] = 1 - math.ceil(len(ans) / 3) / len(ans)
    scored = metric.compute(
        predictions=corrupted, references=answers, difficulties=keys, finished=[True] * len(keys)
    )
    assert scored["exact_match_by_difficulty"] == pytest.approx(expected)


def test_eval_sets_are_held_out_deterministic_and_seeded_per_difficulty():
    task = get_task("reverse_addition")
    sets = build_eval_sets(task, [3, 4, 5], num_per_difficulty=50, seed=7)
    assert list(sets) == ["3", "4", "5"]
    assert all(len(p) == len(set(p)) == len(a) for p, a in sets.values())
    assert all(split_of(p) == "eval" for p, _ in sets.values() for p in p)
    assert all(task.difficulty_of(p) == int(k) for k, (ps, _) in sets.items() for p in ps)
    assert build_eval_sets(task, [3, 4, 5], num_per_difficulty=50, seed=7) == sets
    assert build_eval_sets(task, [5], num_per_difficulty=50, seed=7)["5"] == sets["5"]
    assert build_eval_sets(task, [5], num_per_difficulty=50, seed=8)["5"] != sets["5"]


def test_eval_prompts_never_in_d0():
    task = get_task("copy")
    d0 = {r["prompt"] for r in d0_dataset(task, 3, num_examples=30_000, seed=0, shard_size=10_000)}
    sets = build_eval_sets(task, [1, 2, 3], num_per_difficulty=200, seed=0)
    eval_prompts = {p for ps, _ in sets.values() for p in ps}
    everything = {str(i).zfill(n) + "=" for n in (1, 2, 3) for i in range(10**n)}
    train_space = {p for p in everything if split_of(p) == "train"}
    # D_0 covers (nearly) the whole train space of levels 1-3, so a leak would show up here.
    assert len(d0 & train_space) > 0.99 * len(train_space) and len(eval_prompts) > 100
    assert not d0 & eval_prompts


class _TrainOnlyCopy(Copy):
    """Copy whose 1-digit level has a single prompt, in the train split: a level with no eval prompt."""

    def _draw(self, length, rng):
        return ("0=", "0") if length == 1 else super()._draw(length, rng)


def test_level_without_eval_prompts_is_skipped_not_fatal():
    task = _TrainOnlyCopy()
    assert split_of("0=") == "train"
    sets = build_eval_sets(task, [1, 2], num_per_difficulty=5, seed=0)
    assert list(sets) == ["2"]
    assert "1" in sets.skipped and "eval" in sets.skipped["1"]


@pytest.mark.parametrize("name", ["copy", "maze_hops"])
def test_evaluate_tiny_model_end_to_end(name):
    task = get_task(name)
    tokenizer = get_tokenizer(task.tokenizer_name)
    sets = build_eval_sets(task, [2, 3], num_per_difficulty=6, seed=0)
    result = evaluate_model(tiny_model(tokenizer), tokenizer, task, sets, batch_size=4)
    assert set(result.accuracy) == set(result.count) == {"2", "3"}
    assert result.count == {k: len(p) for k, (p, _) in sets.items()}
    assert all(0.0 <= v <= 1.0 for v in result.accuracy.values())
    assert 0.0 <= result.overall <= 1.0
    if name == "maze_hops":
        assert set(result.move_valid) == set(result.end_valid) == {"2", "3"}
        assert all(0.0 <= v <= 1.0 for v in [*result.move_valid.values(), *result.end_valid.values()])
    else:
        assert result.move_valid is None
    d = json.loads(json.dumps(result.to_dict()))
    assert EvalResult.from_dict(d) == result


def test_run_on_answers_are_wrong_answers():
    """Paper section 3: correct only if all tokens of the output sequence match, EOS included. A
    model that writes the right digits and never stops scores 0, and a model that stops scores 1."""
    char, copy = get_tokenizer("char"), get_task("copy")
    sets = {str(n): (["7" * n + "="], ["7" * n]) for n in (1, 12, 15)}
    run_on = evaluate_model(lookup_model(char, {"=": "7", "7": "7"}), char, copy, sets)
    assert run_on.accuracy == {"1": 0.0, "12": 0.0, "15": 0.0}
    assert run_on.finished == {"1": 0.0, "12": 0.0, "15": 0.0}
    stops = evaluate_model(lookup_model(char, {"=": "7", "7": "<eos>"}), char, copy, {"1": sets["1"]})
    assert stops.accuracy == {"1": 1.0} and stops.finished == {"1": 1.0}


def test_run_on_model_unlocks_nothing_in_the_accelerated_schedule():
    from si_hf.rounds import round_difficulties

    char, copy = get_tokenizer("char"), get_task("copy")
    trained = [str(n) for n in range(1, 12)]
    sets = {str(n): (["7" * n + "="], ["7" * n]) for n in (12, 13, 14)}
    si = SelfImproveArguments(schedule="accelerated", accelerate_threshold=0.99)
    run_on = evaluate_model(lookup_model(char, {"=": "7", "7": "7"}), char, copy, sets)
    # nothing solved: the schedule falls back to its one-level step
    assert round_difficulties(copy, si, 11, 1, trained, run_on.accuracy) == [12]
    # the same schedule does unlock levels a model really solves
    solved = {"12": 1.0, "13": 1.0, "14": 0.5}
    assert round_difficulties(copy, si, 11, 1, trained, solved) == [12, 13]


def test_eval_difficulties():
    assert eval_difficulties(get_task("reverse_addition"), 5) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert eval_difficulties(get_task("copy"), 10, start=9, beyond=1) == [9, 10, 11]
    # maze_nodes starts at num_hops + 1 nodes, whatever `start` says.
    assert eval_difficulties(get_task("maze_nodes", num_hops=9), 12, beyond=2) == list(range(10, 15))
    grid = eval_difficulties(get_task("multiplication"), (3, 2), beyond=1)
    assert grid == [(i, j) for i in range(1, 5) for j in range(1, 5)]
    with pytest.raises(ValueError, match="beyond"):
        eval_difficulties(get_task("copy"), 5, beyond=-1)
    with pytest.raises(ValueError, match="num_per_difficulty"):
        build_eval_sets(get_task("copy"), [3], num_per_difficulty=0, seed=0)


def test_format_table():
    r0 = EvalResult(accuracy={"2": 1.0, "10": 0.25}, count={"2": 4, "10": 4})
    r1 = {"accuracy": {"2": 1.0, "10": 0.5, "11": 0.125}}
    lines = format_table({0: r0, 1: r1}).splitlines()
    assert lines[0] == "| round | 2 | 10 | 11 |"  # difficulties in numeric order
    assert lines[2:] == ["| 0 | 100.0 | 25.0 | - |", "| 1 | 100.0 | 50.0 | 12.5 |"]
    rows = [{"round": 0, "member": 0, **r1}, {"round": 0, "member": 1, **r0.to_dict()}]
    assert [line.split(" | ")[0] for line in format_table(rows).splitlines()[2:]] == ["| 0/0", "| 0/1"]
    with pytest.raises(ValueError, match="accuracy"):
        format_table({0: {"count": {}}})
