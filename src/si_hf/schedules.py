"""Difficulty schedules: which levels round r labels, and which levels are evaluated.

- `standard`: +`difficulty_step` per round (section 5).
- `accelerated`: every level past the frontier whose last evaluation reached `accelerate_threshold`,
  contiguously (section 7.2), else one step.
- `multiplication`: after n x n, round r adds (n+1) x m and m x (n+1) with m = 1 .. n+1 (section 6.2,
  figure 20); `multiplication_accelerated` unlocks every solved pair first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from si_hf.evaluation import eval_difficulties

if TYPE_CHECKING:
    from si_hf.configs import SelfImproveArguments


def multiplication_sequence(n0: int):
    """Section 6.2: after n0 x n0, round r adds (n+1) x m and m x (n+1) with m = 1 .. n+1."""
    n = n0
    while True:
        n += 1
        for m in range(1, n + 1):
            yield sorted({(n, m), (m, n)})


def round_difficulties(
    task, si: SelfImproveArguments, d0, r: int, trained: list, prev_accuracy: dict
) -> list:
    """The difficulties round r labels, from the schedule; `trained` are the keys trained so far and
    `prev_accuracy` the mean accuracy per key after round r-1 (an answer counts only when complete)."""
    key = task.difficulty_key
    if si.schedule in ("multiplication", "multiplication_accelerated"):
        if not isinstance(d0, tuple):
            raise ValueError(f"schedule {si.schedule!r} needs the multiplication task, got {task.name!r}")
        seen = set(trained)
        step = next(
            todo
            for todo in ([p for p in s if key(p) not in seen] for s in multiplication_sequence(d0[0]))
            if todo
        )
        if si.schedule == "multiplication":
            return step
        unlocked = [
            task.parse_difficulty(k)
            for k, acc in prev_accuracy.items()
            if acc >= si.accelerate_threshold and k not in seen
        ]
        return sorted(unlocked) or step
    frontier = max(task.parse_difficulty(k) for k in trained)
    if si.schedule == "standard":
        return [frontier + si.difficulty_step]
    # accelerated: every level past the frontier that the last round already solves, contiguously
    chosen = []
    level = frontier + 1
    while prev_accuracy.get(key(level), 0.0) >= si.accelerate_threshold:
        chosen.append(level)
        level += 1
    return chosen or [frontier + si.difficulty_step]


def eval_levels(task, trained: list, beyond: int) -> list:
    """From the easiest level to `beyond` past the hardest trained one (a square grid for multiplication)."""
    levels = [task.parse_difficulty(k) for k in trained]
    frontier = max(max(d) if isinstance(d, tuple) else d for d in levels)
    return eval_difficulties(task, frontier, beyond=beyond)


def check_compatible(task, si: SelfImproveArguments) -> None:
    """Task-dependent checks, run before round 0 trains rather than when round 1 needs them."""
    two_d = si.schedule.startswith("multiplication")
    if two_d != (task.name == "multiplication"):
        expected = (
            "multiplication or multiplication_accelerated"
            if task.name == "multiplication"
            else ("standard or accelerated")
        )
        raise ValueError(f"schedule: {si.schedule!r} does not fit task {task.name!r}; expected {expected}")
    if "verifier" in si.filters and not hasattr(task, "validity"):
        raise ValueError(f"filters: 'verifier' needs a maze task (move/end validity), got task {task.name!r}")


def check_planned_rounds(task, si: SelfImproveArguments, d0, last_round: int) -> None:
    """Fail before round 0 when a planned round cannot exist: every schedule but multiplication's adds
    at least `difficulty_step` per round, so round r labels a level >= d0 + r * step, and a task's
    largest level (maze hops < nodes, maze nodes <= 99 labels) bounds how many rounds can run."""
    if si.schedule.startswith("multiplication") or last_round < 1:
        return
    level = task.parse_difficulty(d0) + last_round * si.difficulty_step
    try:
        task.parse_difficulty(level)
    except ValueError as err:
        possible = last_round - 1
        while possible > 0:
            try:
                task.parse_difficulty(task.parse_difficulty(d0) + possible * si.difficulty_step)
                break
            except ValueError:
                possible -= 1
        raise ValueError(
            f"num_rounds: round {last_round} would label difficulty {level} or more, which {task.name} "
            f"rejects ({err}); at most {possible} rounds fit this task and schedule"
        ) from None
