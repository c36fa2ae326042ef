"""`si-hf summary RUN_DIR [RUN_DIR ...]`: several runs side by side, as the results sections show them.

The runs are usually one recipe under several `--seed`s (the spread) or two recipes that differ in one
setting (a filter and its no-filter contrast). For each run it reads what `si-hf report` reads
(`metrics.json` and the round markers, `si_hf.results.RunResults`) and prints, in markdown:

- exact match (%) per difficulty after round 0 and after the run's last round (the mean over the
  members of a majority-vote run), with the mean, min and max over the runs beneath;
- per run, the levels past the supervised range D_0 at >= `--threshold` after the last round, the
  longest unbroken stretch of them starting right after D_0 (the frontier the paper's figures show),
  and the round-0 exact match at those levels (how much self-improvement added);
- per run and round >= 1, the data accuracy of the kept labels (paper figure 8, right);
- for lengths (not n x m), figures 9 and 10 side by side: the first round and the compute minutes
  (labelling, training, evaluation, every member) at which each run's longest length at >=
  `--frontier_threshold` (the paper's 99%) reached each value, and with `--figures DIR` margin.png
  (figure 9) and reach.png (figure 10) with one line per run.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from si_hf import atomic, tables
from si_hf.publishing.report import frontier_figures
from si_hf.results import RunResults
from si_hf.store.errors import DamagedRoundError
from si_hf.tables import pct
from si_hf.tasks import difficulty_sort_key


def past_supervised(results: RunResults, accuracy: dict[str, float], threshold: float) -> dict:
    """The levels past D_0 at >= threshold in `accuracy`, and the unbroken stretch right after D_0.

    For one-dimensional difficulties the stretch is d0+1, d0+2, ... up to the first level below the
    threshold (or not evaluated); for multiplication ("n x m") there is no order along which a stretch
    runs, so it is every solved cell outside the supervised square."""
    supervised = set(results.supervised)
    beyond = [k for k in results.keys() if k not in supervised]
    solved = [k for k in beyond if accuracy.get(k, 0.0) >= threshold]
    if results.is_grid():
        return {"solved": solved, "stretch": solved}
    stretch = []
    for k in beyond:  # easiest first
        if accuracy.get(k, 0.0) < threshold:
            break
        stretch.append(k)
    return {"solved": solved, "stretch": stretch}


def _stats_rows(rows: list[dict[str, float]], keys: list[str]) -> list[list[str]]:
    out = []
    for name, fn in (("mean", lambda v: math.fsum(v) / len(v)), ("min", min), ("max", max)):
        cells = []
        for k in keys:
            values = [row[k] for row in rows if k in row]
            # a statistic over the runs is only shown where every run evaluated the level
            cells.append(pct(fn(values)) if len(values) == len(rows) else "-")
        out.append([f"**{name}**", ""] + cells)
    return out


def accuracy_table(runs: dict[str, RunResults], which: str) -> str:
    """Exact match of every run after round 0 (`which="first"`) or its last round (`"last"`)."""
    picked = {}
    for name, res in runs.items():
        r = res.rounds[0] if which == "first" else res.rounds[-1]
        picked[name] = (r, res.accuracy().get(r, {}))
    keys = sorted({k for _, acc in picked.values() for k in acc}, key=difficulty_sort_key)
    supervised = set().union(*(set(res.supervised) for res in runs.values()))
    head = ["run", "round"] + [f"{k}*" if k in supervised else str(k) for k in keys]
    rows = [[name, str(r)] + [pct(acc.get(k)) for k in keys] for name, (r, acc) in picked.items()]
    if len(runs) > 1:
        rows += _stats_rows([acc for _, acc in picked.values()], keys)
    return tables.markdown(head, rows)


def frontier_table(runs: dict[str, RunResults], threshold: float) -> str:
    head = [
        "run",
        f"levels past D_0 at >= {100 * threshold:g}% (last round)",
        "unbroken from D_0 + 1",
        "round 0 at those levels",
    ]
    rows = []
    for name, res in runs.items():
        last, first = res.accuracy()[res.rounds[-1]], res.accuracy().get(0, {})
        found = past_supervised(res, last, threshold)
        before = ", ".join(f"{k}: {pct(first.get(k))}" for k in found["stretch"]) or "-"
        stretch = f"{len(found['stretch'])} ({', '.join(found['stretch']) or '-'})"
        rows.append([name, ", ".join(found["solved"]) or "none", stretch, before])
    return tables.markdown(head, rows)


def data_accuracy_table(runs: dict[str, RunResults]) -> str | None:
    rounds = sorted({r for res in runs.values() for r in res.data_accuracy()})
    if not rounds:
        return None
    rows = [[name] + [pct(res.data_accuracy().get(r)) for r in rounds] for name, res in runs.items()]
    return tables.markdown(["run"] + [f"round {r}" for r in rounds], rows)


def reach_table(runs: dict[str, RunResults], threshold: float) -> str | None:
    """Rows: each longest length at >= threshold (figure 10's y) some run reached; cells: the first
    round at which the run's mean reached it, with the cumulative compute minutes up to that round."""
    found = {name: res.margins(threshold) for name, res in runs.items()}
    if not any(found.values()):
        return None
    minutes = {}
    for name, res in runs.items():
        total, minutes[name] = 0.0, {}
        for r, sec in sorted(res.seconds().items()):
            total += sec
            minutes[name][r] = total / 60
    levels = sorted({x["reach"] for rounds in found.values() for x in rounds.values()})
    rows = []
    for level in levels:
        row = [level]
        for name, rounds in found.items():
            r = next((r for r, x in sorted(rounds.items()) if x["reach"] >= level), None)
            row.append("-" if r is None else f"round {r} ({minutes[name].get(r, 0.0):.1f} min)")
        rows.append(row)
    return tables.markdown([f"longest length at >= {100 * threshold:g}%"] + list(runs), rows)


def margin_table(runs: dict[str, RunResults], threshold: float) -> str | None:
    """Figure 9 as a table: per run and round, the margin past the trained range (trained top in
    brackets); a `+` marks a margin that reached the longest length evaluated (maybe cut off)."""
    found = {name: res.margins(threshold) for name, res in runs.items()}
    rounds = sorted({r for x in found.values() for r in x})
    if not rounds:
        return None
    rows = []
    for name, per in found.items():
        cells = []
        for r in rounds:
            x = per.get(r)
            cut = x and x["margin"] and x["trained"] + x["margin"] >= x["evaluated_to"]
            cells.append("-" if x is None else f"{x['margin']}{'+' if cut else ''} ({x['trained']})")
        rows.append([name] + cells)
    return tables.markdown(["run"] + [f"round {r}" for r in rounds], rows)


def summary_markdown(
    runs: dict[str, RunResults], threshold: float = 0.95, frontier_threshold: float = 0.99
) -> str:
    parts = [
        "Exact match (%) after the first round of each run (round 0 unless it was resumed from another run; supervised columns starred; mean over the members of a voting run):",
        accuracy_table(runs, "first"),
        "Exact match (%) after the last round:",
        accuracy_table(runs, "last"),
        "Past the supervised range after the last round:",
        frontier_table(runs, threshold),
    ]
    data = data_accuracy_table(runs)
    if data:
        parts += ["Data accuracy (%) of the kept labels (the oracle's verdict, never used to filter):", data]
    at = f"{100 * frontier_threshold:g}%"
    margins, reach = margin_table(runs, frontier_threshold), reach_table(runs, frontier_threshold)
    if margins:
        parts += [
            f"Lengths past the trained range at >= {at}, per round (paper figure 9; the trained top in "
            "brackets; `+`: the margin reached the longest length evaluated):",
            margins,
            f"First round at which each longest length at >= {at} was reached, with the compute minutes "
            "to the end of that round (paper figure 10):",
            reach,
        ]
    return "\n\n".join(parts) + "\n"


def _names(dirs: list[str]) -> list[str]:
    """Each run's shortest distinguishing name: the last path components that tell the runs apart."""
    parts = [Path(d).resolve().parts for d in dirs]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(d) for d in dirs]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="si-hf summary", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="the --output_dir of each si-hf run")
    parser.add_argument(
        "--threshold", type=float, default=0.95, help="exact match that counts a level as solved (0.95)"
    )
    parser.add_argument(
        "--frontier_threshold",
        type=float,
        default=0.99,
        help="exact match at which figures 9 and 10 count a length as solved (the paper's 0.99)",
    )
    parser.add_argument("--output", default=None, help="also write the markdown to this file")
    parser.add_argument(
        "--figures",
        default=None,
        metavar="DIR",
        help="write margin.png (figure 9) and reach.png (figure 10) here",
    )
    args = parser.parse_args(argv)
    for name in ("threshold", "frontier_threshold"):
        if not 0 < getattr(args, name) <= 1:
            parser.error(f"--{name} {getattr(args, name)} is not in (0, 1]")
    if args.figures is not None and Path(args.figures).exists() and not Path(args.figures).is_dir():
        parser.error(f"--figures: {args.figures} is a file; expected a folder for the figures")
    if args.output is not None:
        try:
            check_output_file(args.output, "--output")
        except ValueError as e:
            parser.error(str(e))
    resolved = [str(Path(d).resolve()) for d in args.run_dirs]
    twice = sorted({d for d, r in zip(args.run_dirs, resolved) if resolved.count(r) > 1})
    if twice:
        parser.error(f"{', '.join(twice)}: the same run given more than once; give each run once")
    runs = {}
    for name, d in zip(_names(args.run_dirs), args.run_dirs):
        try:
            runs[name] = RunResults.from_output_dir(d)
        except (ValueError, DamagedRoundError) as e:
            parser.error(str(e))  # exits 2 with the usage and the message
    tasks = {name: res.task for name, res in runs.items()}
    if len(set(tasks.values())) > 1:
        shown = ", ".join(f"{name}: {task}" for name, task in tasks.items())
        parser.error(
            f"the runs are of different tasks ({shown}); a summary puts runs of one task side by side"
        )
    text = summary_markdown(runs, args.threshold, args.frontier_threshold)
    print(text, end="")
    if args.figures:
        Path(args.figures).mkdir(parents=True, exist_ok=True)
        made = frontier_figures(runs, Path(args.figures), args.frontier_threshold)
        shown = [str(p) for paths in made.values() for p in paths]
        print(f"figures: {', '.join(shown)}" if shown else "figures: none (n x m runs have no margin)")
    if args.output:
        atomic.write_text(args.output, text)
    return 0


def check_output_file(path: str, key: str) -> None:
    """An output file path that can be written: not a folder, its folder existing."""
    where = Path(path)
    if where.is_dir():
        raise ValueError(f"{key}: {path} is a folder; expected the path of a file to write")
    if not where.parent.is_dir():
        raise ValueError(f"{key}: {where.parent} does not exist; create it or pick another path")


if __name__ == "__main__":
    sys.exit(main())
