"""Difficulty schedules (section 5, 6.2, 7.2): which levels a round labels and which are evaluated."""

import pytest

from si_hf.configs import SelfImproveArguments
from si_hf.schedules import (
    check_compatible,
    check_planned_rounds,
    eval_levels,
    multiplication_sequence,
    round_difficulties,
)
from si_hf.tasks import get_task


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
