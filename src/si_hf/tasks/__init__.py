"""The task families, registered in `TASKS` (docs/architecture.md, "Tasks"; docs/extending.md adds one).

`get_task(name, **kwargs)` builds a registered task; `task_from_args(task_args, si)` builds the task of
a run from its arguments: the task's own options (`TASKS.get(name).options`, YAML key -> constructor
argument) plus its `plugin_options`, and refuses an option of another task that is set.
"""

from __future__ import annotations

from .addition import ForwardAddition, ReverseAddition
from .base import CHAR_ALPHABET, MAZE_ALPHABET, TASKS, EmptySplitError, Task, difficulty_sort_key
from .maze import MazeHops, MazeNodes
from .multiplication import Multiplication
from .seeding import rng_for, split_of
from .strings import Copy, ReverseString  # noqa: I001  (registration order: the docs' order)


def get_task(name: str, **kwargs) -> Task:
    cls = TASKS.get(name).obj
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"bad arguments {kwargs} for task {name!r}: {err}") from None


def task_from_args(task_args, si=None) -> Task:
    """The run's task: `task_args.task` with its options. An option that belongs to another task and is
    not at its default is an error naming the key, its value and the task it belongs to."""
    entry = TASKS.get(task_args.task)
    TASKS.refuse_unused_options(task_args, task_args.task)
    kwargs = {arg: getattr(task_args, key) for key, arg in entry.options.items()}
    kwargs.update(si.options_of(task_args.task) if si is not None else {})
    try:
        return entry.obj(**kwargs)
    except (TypeError, ValueError) as err:
        shown = {key: getattr(task_args, key) for key in entry.options}
        shown.update(si.options_of(task_args.task) if si is not None else {})
        raise ValueError(f"task {task_args.task!r} with options {shown}: {err}") from None


__all__ = [
    "CHAR_ALPHABET",
    "MAZE_ALPHABET",
    "TASKS",
    "Copy",
    "EmptySplitError",
    "ForwardAddition",
    "MazeHops",
    "MazeNodes",
    "Multiplication",
    "ReverseAddition",
    "ReverseString",
    "Task",
    "difficulty_sort_key",
    "get_task",
    "rng_for",
    "split_of",
    "task_from_args",
]
