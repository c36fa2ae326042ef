"""The six task families; `get_task(name, **kwargs)` builds one (docs/architecture.md, "Tasks")."""

from .addition import ForwardAddition, ReverseAddition
from .base import CHAR_ALPHABET, MAZE_ALPHABET, EmptySplitError, Task, difficulty_sort_key
from .maze import MazeHops, MazeNodes
from .multiplication import Multiplication
from .seeding import rng_for, split_of
from .strings import Copy, ReverseString

TASKS = {
    cls.name: cls
    for cls in (ReverseAddition, ForwardAddition, Copy, ReverseString, Multiplication, MazeHops, MazeNodes)
}


def get_task(name: str, **kwargs) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    try:
        return TASKS[name](**kwargs)
    except TypeError as err:
        raise ValueError(f"bad arguments {kwargs} for task {name!r}: {err}") from None


__all__ = [
    "CHAR_ALPHABET",
    "MAZE_ALPHABET",
    "TASKS",
    "EmptySplitError",
    "Task",
    "difficulty_sort_key",
    "get_task",
    "rng_for",
    "split_of",
]
