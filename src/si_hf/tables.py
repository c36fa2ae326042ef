"""The one table renderer: markdown tables for the terminal, the report, the cards and the summaries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def cell(value, digits: int = 4) -> str:
    """A float with `digits` decimals, None as "n/a", anything else as str."""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "n/a" if value is None else str(value)


def pct(value: float | None) -> str:
    """A share in [0, 1] as a percentage with one decimal ("-" for None: not measured)."""
    return "-" if value is None else f"{100 * value:.1f}"


def markdown(head: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A markdown table; cells that are not strings go through `cell`."""
    lines = ["| " + " | ".join(map(str, head)) + " |", "|" + "---|" * len(head)]
    for row in rows:
        if len(row) != len(head):
            raise ValueError(f"table row {list(row)!r} has {len(row)} cells; the head has {len(head)}")
        lines.append("| " + " | ".join(c if isinstance(c, str) else cell(c) for c in row) + " |")
    return "\n".join(lines)


def accuracy_grid(
    rows: Mapping[str, Mapping[str, float]], keys: Sequence[str], *, first: str = "round", supervised=()
) -> str:
    """Rows (rounds, runs) x difficulty `keys`, cells = exact match in % ("-" where not evaluated);
    supervised columns carry a `*`."""
    head = [first] + [f"{k}*" if k in supervised else str(k) for k in keys]
    return markdown(head, [[str(name)] + [pct(acc.get(k)) for k in keys] for name, acc in rows.items()])
