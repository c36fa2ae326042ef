"""Argument checks shared by every module: a bool is never an int here, and an error names the value."""

from __future__ import annotations


def is_int(value) -> bool:
    """An int that is not a bool (True would pass isinstance(True, int))."""
    return isinstance(value, int) and not isinstance(value, bool)


def require_int(value, name: str, minimum: int = 0, *, unit: str = "") -> int:
    """`value` if it is an int >= `minimum`; otherwise ValueError "name=value: expected an int >= minimum"."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name}={value!r}: expected an int >= {minimum}{f' ({unit})' if unit else ''}")
    return value
