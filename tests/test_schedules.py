"""Difficulty schedules (section 5, 6.2, 7.2): which levels a round labels and which are evaluated."""

import pytest

from si_hf.configs import SelfImproveArguments
from si_hf.evaluation import build_eval_sets, evaluate_model
from si_hf.schedules import (
    check_compatible,
    check_planned_rounds,
    eval_levels,
    eval_ring,
    evaluate_widening,
    multiplication_sequence,
    round_difficulties,
)
from si_hf.tasks import get_task
from si_hf.tasks.strings import Copy
from si_hf.testing.models import lookup_model


def _si(**kw):
    return SelfImproveArguments(**kw)


def test_standard_schedule_adds_one_step_past_the_frontier():
    task = get_task("reverse_addition")
    trained = [str(d) for d in range(1, 17)] + ["17"]
    assert round_difficulties(task, _si(), 16, 2, trained, {}) == [18]
    maze = get_task("maze_nodes")
    assert round_difficulties(maze, _si(difficulty_step=3), 30, 1, ["28", "29", "30"], {}) == [33]


def test_accelerated_schedule_takes_every_solved_level_contiguously():
    task = get_task("copy")
    si = _si(schedule="accelerated", accelerate_threshold=0.99)
    trained = [str(d) for d in range(1, 11)]
    acc = {"10": 1.0, "11": 1.0, "12": 0.995, "13": 0.98, "14": 1.0}
    # 14 is above threshold but 13 is not: the unlocked run stops at the first unsolved level
    assert round_difficulties(task, si, 10, 1, trained, acc) == [11, 12]
    # nothing solved past the frontier: fall back to one step
    assert round_difficulties(task, si, 10, 1, trained, {"11": 0.5}) == [11]


def test_multiplication_schedule_follows_the_2d_sequence():
    task = get_task("multiplication")
    seq = multiplication_sequence(5)
    assert [next(seq) for _ in range(7)] == [
        [(1, 6), (6, 1)],
        [(2, 6), (6, 2)],
        [(3, 6), (6, 3)],
        [(4, 6), (6, 4)],
        [(5, 6), (6, 5)],
        [(6, 6)],
        [(1, 7), (7, 1)],
    ]
    si = _si(schedule="multiplication")
    d0 = task.parse_difficulty("5x5")
    trained = [task.difficulty_key(d) for d in task.d0_difficulties(d0)]
    assert round_difficulties(task, si, d0, 1, trained, {}) == [(1, 6), (6, 1)]
    trained += ["1x6", "6x1", "2x6", "6x2"]
    assert round_difficulties(task, si, d0, 3, trained, {}) == [(3, 6), (6, 3)]
    acc = {"3x6": 1.0, "6x3": 0.995, "4x6": 0.2, "7x1": 1.0}
    fast = _si(schedule="multiplication_accelerated")
    assert round_difficulties(task, fast, d0, 3, trained, acc) == [(3, 6), (6, 3), (7, 1)]
    assert round_difficulties(task, fast, d0, 3, trained, {"4x6": 0.1}) == [(3, 6), (6, 3)]
    with pytest.raises(ValueError, match="multiplication"):
        round_difficulties(get_task("copy"), si, 10, 1, ["10"], {})


def test_eval_levels_reach_past_the_frontier():
    assert eval_levels(get_task("copy"), ["1", "2", "12"], 3) == list(range(1, 16))
    assert eval_levels(get_task("maze_nodes"), ["10", "30"], 3)[0] == 10
    grid = eval_levels(get_task("multiplication"), ["5x5", "6x1"], 1)
    assert len(grid) == 49 and (7, 7) in grid and (1, 1) in grid


def test_check_compatible_names_the_schedule_and_the_task():
    with pytest.raises(ValueError, match="'multiplication' does not fit task 'copy'"):
        check_compatible(get_task("copy"), _si(schedule="multiplication"))
    with pytest.raises(ValueError, match="expected multiplication or multiplication_accelerated"):
        check_compatible(get_task("multiplication"), _si(schedule="accelerated"))
    check_compatible(get_task("maze_hops"), _si(schedule="accelerated"))
    with pytest.raises(ValueError, match="schedule: 'fast' is not a registered schedule; expected one of"):
        check_compatible(get_task("copy"), _si(schedule="fast"))


def test_planned_rounds_beyond_the_task_fail_before_round_0():
    maze = get_task("maze_hops", num_nodes=30)
    check_planned_rounds(maze, _si(), 9, 20)  # 29 hops: the longest path of a 30-node tree
    with pytest.raises(ValueError, match=r"round 21 would label difficulty 30.*at most 20 rounds"):
        check_planned_rounds(maze, _si(), 9, 21)
    with pytest.raises(ValueError, match="at most 23 rounds"):  # 30 + 23 * 3 = 99 labels
        check_planned_rounds(get_task("maze_nodes", num_hops=9), _si(difficulty_step=3), 30, 30)
    check_planned_rounds(get_task("multiplication"), _si(schedule="multiplication"), (5, 5), 500)


class SevensUpTo(Copy):
    """Copy prompts whose answer is "7" up to `solved` digits and "8" past it: a model that always
    answers "7" solves exactly the lengths 1..solved."""

    name = "sevens_up_to"

    def __init__(self, solved: int):
        super().__init__()
        self.solved = solved

    def _draw(self, length, rng):
        return self._digits(length, rng) + "=", "7" if length <= self.solved else "8"


def _widening(task, char, **kw):
    seen = []

    def score(levels):
        seen.append(list(levels))
        sets = build_eval_sets(task, levels, num_per_difficulty=3, seed=0)
        return evaluate_model(lookup_model(char, {"=": "7", "7": "<eos>"}), char, task, sets)

    return evaluate_widening(task, [str(d) for d in range(1, 4)], score, **kw), seen


def test_eval_until_below_goes_on_while_the_last_level_reaches_the_floor(char):
    """Trained on 1..3, solved 1..9: the fixed window stops at 3 + 2; widening goes one level at a
    time to 10, the first level below the floor, and no further."""
    task = SevensUpTo(9)
    fixed, seen = _widening(task, char, beyond=2)
    assert sorted(fixed.accuracy, key=int) == [str(d) for d in range(1, 6)] and len(seen) == 1
    wide, seen = _widening(task, char, beyond=2, floor=0.05, cap=40)
    assert seen == [[1, 2, 3, 4, 5], [6], [7], [8], [9], [10]]
    assert wide.accuracy == {**{str(d): 1.0 for d in range(1, 10)}, "10": 0.0}
    assert wide.count["10"] == 3 and set(wide.finished) == set(wide.accuracy)
    # the cap bounds it: at most 3 + 6 = 9 however far the model solves
    capped, _ = _widening(SevensUpTo(30), char, beyond=2, floor=0.05, cap=6)
    assert max(int(k) for k in capped.accuracy) == 9
    # a window whose last level is already below the floor is not widened
    low, seen = _widening(SevensUpTo(4), char, beyond=2, floor=0.05, cap=40)
    assert sorted(low.accuracy, key=int) == ["1", "2", "3", "4", "5"] and len(seen) == 1


def test_eval_ring_is_the_outer_ring_of_the_grid():
    mult = get_task("multiplication")
    assert eval_ring(mult, ["1x1", "2x2", "2x1"], 1) == [(1, 3), (2, 3), (3, 1), (3, 2), (3, 3)]
    assert eval_ring(get_task("copy"), ["1", "2", "3"], 0) == [3]
    # past the task's largest level there is nothing to evaluate
    assert eval_ring(get_task("maze_hops"), ["1"], 500) == []
