"""Difficulty schedules, registered in `SCHEDULES`: which levels round r labels, and which are evaluated.

- `standard`: +`difficulty_step` per round (section 5).
- `accelerated`: every level past the frontier whose last evaluation reached `accelerate_threshold`,
  contiguously (section 7.2), else one step.
- `multiplication`: after n x n, round r adds (n+1) x m and m x (n+1) with m = 1 .. n+1 (section 6.2,
  figure 20); `multiplication_accelerated` unlocks every solved pair first.

A schedule is a `Schedule`: a function of the `ScheduleState` (what rounds 0..r-1 trained and scored)
that returns the levels of round r, the number of difficulty dimensions of the tasks it fits, and the
least number of levels it adds per round (which bounds how many rounds a task can hold).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from si_hf.evaluation import eval_difficulties
from si_hf.registry import Registry

SCHEDULES = Registry("schedule", key="schedule")


@dataclass(frozen=True)
class ScheduleState:
    """What a schedule sees before round r: the task, the run's settings (`SelfImproveArguments`), D_0's
    largest difficulty, the difficulty keys trained so far and the mean exact match per key after r-1."""

    task: object
    settings: object
    d0: object
    round: int
    trained: list[str]
    accuracy: dict[str, float]


@dataclass(frozen=True)
class Schedule:
    levels: Callable[[ScheduleState], list]
    dims: int = 1  # the `difficulty_dims` of the tasks it fits
    # levels added per round at least (None: no such bound), so round r labels >= d0 + r * that
    min_step: Callable[[object], int] | None = None


def _step(settings) -> int:
    return settings.difficulty_step


def _frontier(state: ScheduleState):
    return max(state.task.parse_difficulty(k) for k in state.trained)


def standard(state: ScheduleState) -> list:
    return [_frontier(state) + state.settings.difficulty_step]


def accelerated(state: ScheduleState) -> list:
    """Every level past the frontier that the last round already solves, contiguously (section 7.2)."""
    key, chosen = state.task.difficulty_key, []
    level = _frontier(state) + 1
    while state.accuracy.get(key(level), 0.0) >= state.settings.accelerate_threshold:
        chosen.append(level)
        level += 1
    return chosen or standard(state)


def multiplication_sequence(n0: int):
    """Section 6.2: after n0 x n0, round r adds (n+1) x m and m x (n+1) with m = 1 .. n+1."""
    n = n0
    while True:
        n += 1
        for m in range(1, n + 1):
            yield sorted({(n, m), (m, n)})


def multiplication(state: ScheduleState) -> list:
    seen, key = set(state.trained), state.task.difficulty_key
    d0 = state.task.parse_difficulty(state.d0)
    return next(
        todo
        for todo in ([p for p in s if key(p) not in seen] for s in multiplication_sequence(d0[0]))
        if todo
    )


def multiplication_accelerated(state: ScheduleState) -> list:
    """Every pair the last round already solves, else the next step of `multiplication`."""
    seen = set(state.trained)
    unlocked = [
        state.task.parse_difficulty(k)
        for k, acc in state.accuracy.items()
        if acc >= state.settings.accelerate_threshold and k not in seen
    ]
    return sorted(unlocked) or multiplication(state)


SCHEDULES.register(
    "standard",
    Schedule(standard, min_step=_step),
    help="+difficulty_step levels per round (section 5)",
    options=("difficulty_step",),
)
SCHEDULES.register(
    "accelerated",
    Schedule(accelerated, min_step=_step),
    help="every level past the frontier already at >= accelerate_threshold, else one step (section 7.2)",
    options=("accelerate_threshold", "difficulty_step"),
)
SCHEDULES.register(
    "multiplication",
    Schedule(multiplication, dims=2),
    help="n x n, then (n+1) x m and m x (n+1) for m = 1..n+1 (section 6.2)",
)
SCHEDULES.register(
    "multiplication_accelerated",
    Schedule(multiplication_accelerated, dims=2),
    help="every solved n x m pair first, else the next multiplication step",
    options=("accelerate_threshold",),
)


def round_difficulties(task, si, d0, r: int, trained: list, prev_accuracy: dict) -> list:
    """The difficulties round r labels under `si.schedule`; `trained` are the keys trained so far and
    `prev_accuracy` the mean accuracy per key after round r-1 (an answer counts only when complete)."""
    check_compatible(task, si)
    schedule = SCHEDULES.get(si.schedule).obj
    return schedule.levels(ScheduleState(task, si, d0, r, list(trained), dict(prev_accuracy)))


def eval_levels(task, trained: list, beyond: int) -> list:
    """From the easiest level to `beyond` past the hardest trained one (a square grid for pairs)."""
    levels = [task.parse_difficulty(k) for k in trained]
    frontier = max(max(d) if isinstance(d, tuple) else d for d in levels)
    return eval_difficulties(task, frontier, beyond=beyond)


def eval_ring(task, trained: list, beyond: int) -> list:
    """The levels exactly `beyond` past the frontier: one level, or for pairs the grid's outer ring
    (n, top) and (top, m); [] past the task's largest level."""
    levels = [task.parse_difficulty(k) for k in trained]
    frontier = max(max(d) if isinstance(d, tuple) else d for d in levels)
    try:
        window = eval_levels(task, trained, beyond)
    except ValueError:  # no valid level at all up there
        return []
    return [d for d in window if (max(d) if isinstance(d, tuple) else d) == frontier + beyond]


def evaluate_widening(task, trained: list, score, *, beyond: int, floor: float | None = None, cap: int = 0):
    """`score(levels)` (an `EvalResult`) from the easiest level to `beyond` past the frontier; with a
    `floor`, then one level (ring) further at a time while the last one's exact match (a ring's mean)
    is >= floor, up to `cap` levels past the frontier, so figure 9's margin is not cut off by a window.
    Returns every level's result in one `EvalResult`."""
    result = score(eval_levels(task, trained, beyond))
    while floor is not None and beyond < cap:
        last = [task.difficulty_key(lv) for lv in eval_ring(task, trained, beyond)]
        scores = [result.accuracy[k] for k in last if k in result.accuracy]
        if not scores or sum(scores) / len(scores) < floor:
            break
        beyond += 1
        ring = eval_ring(task, trained, beyond)
        if not ring:
            break
        result = result.merged(score(ring))
    return result


def check_compatible(task, si) -> None:
    """The schedule fits the task: both count difficulties in the same number of dimensions."""
    schedule = SCHEDULES.get(si.schedule).obj
    if schedule.dims != task.difficulty_dims:
        fitting = [e.name for e in SCHEDULES.entries() if e.obj.dims == task.difficulty_dims]
        expected = ", ".join(fitting[:-1]) + (" or " if len(fitting) > 1 else "") + fitting[-1]
        raise ValueError(f"schedule: {si.schedule!r} does not fit task {task.name!r}; expected {expected}")


def check_planned_rounds(task, si, d0, last_round: int) -> None:
    """Fail before round 0 when a planned round cannot exist: a schedule with a `min_step` labels a
    level >= d0 + r * step in round r, and a task's largest level (maze hops < nodes, maze nodes <= 99
    labels, digits <= 4000) bounds how many rounds can run. Checked in constant time."""
    schedule = SCHEDULES.get(si.schedule).obj
    if schedule.min_step is None or last_round < 1:
        return
    start, step = task.parse_difficulty(d0), schedule.min_step(si)
    level = start + last_round * step
    if level <= task.max_difficulty:
        return
    possible = max(0, (task.max_difficulty - start) // step)
    raise ValueError(
        f"num_rounds: round {last_round} would label difficulty {level} or more, which {task.name} rejects "
        f"(largest difficulty {task.max_difficulty}); at most {possible} rounds fit this task and schedule"
    )
