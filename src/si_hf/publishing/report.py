"""`si-hf report OUTPUT_DIR [--output_dir DIR]`: a markdown report and PNG figures of a run.

Reads only what the store writes (`metrics.json`, the markers under `rounds/`) and writes into DIR
(default `OUTPUT_DIR/report`):

    report.md                  summary, figures, tables, how to load the final model and a round's data
    heatmap.png                exact match per round x difficulty, D_0 boxed (paper figures 1, 3, 5, 6, 11)
    grid.png                   multiplication: exact match over n x m after the last round (figures 7, 34)
    data_accuracy.png          data accuracy of each round's kept labels (section 7.1)
    data_vs_next.png           data accuracy of D_r against M_r's exact match one level further (figure 12)
    memorised.png              each round's model on the wrong labels of earlier rounds: right / reproduced (figure 26)
    margin.png                 lengths past the trained range at >= 99%, per round (figure 9)
    reach.png                  the longest length at >= 99% per round, one level a round dashed (figure 10)
    carries.png                addition with eval_carry_sets: exact match by the longest carry chain (B.8)
    *-member-<m>.png           majority-vote runs: the same per member (the unsuffixed figures show the mean)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from si_hf import atomic, tables
from si_hf.layout import RunPaths, member_dirname, revision
from si_hf.publishing import figures
from si_hf.results import RunResults, accuracy_markdown
from si_hf.store.errors import DamagedRoundError

REPORT = "report.md"


def run_heatmap(results: RunResults, path, *, member: int | None = None, title: str | None = None) -> Path:
    """The round x difficulty heatmap of one member, or of the members' mean (member=None)."""
    multi = len(results.members) > 1
    who = ("mean over members" if member is None else f"member {member}") if multi else ""
    title = title or f"{results.task}: exact match per round and difficulty" + (f" ({who})" if who else "")
    return figures.heatmap(
        results.accuracy(member), results.keys(), path, supervised=results.supervised, title=title
    )


def _suffix(member: int | None) -> str:
    return "" if member is None else f"-member-{member}"


def frontier_series(runs: dict[str, RunResults], threshold: float) -> tuple[dict, dict]:
    """({series name: {round: margin}}, {series name: {round: reach}}): one line per run; a voting run
    alone gives one line per member and their mean, several runs give each run's mean."""
    views = {}
    for name, res in runs.items():
        if len(runs) == 1 and len(res.members) > 1:
            views.update({f"member {m}": res.margins(threshold, m) for m in res.members})
            name = "mean"
        views[name] = res.margins(threshold)
    views = {k: v for k, v in views.items() if v}
    return tuple(
        {k: {r: x[what] for r, x in v.items()} for k, v in views.items()} for what in ("margin", "reach")
    )


def frontier_figures(runs: dict[str, RunResults], out: Path, threshold: float) -> dict[str, list[Path]]:
    """Figures 9 and 10 for one run or several side by side (`si-hf summary --figures`): margin.png
    and reach.png; none for n x m runs (no order of lengths past the trained range)."""
    margin, reach = frontier_series(runs, threshold)
    if not margin:
        return {"margin": [], "reach": []}
    task = next(iter(runs.values())).task
    at = f">= {100 * threshold:g}%"
    first = min((r, pts[r]) for pts in reach.values() for r in pts)  # the earliest round shown
    last = max(r for pts in reach.values() for r in pts)
    line = {r: first[1] + (r - first[0]) for r in range(first[0], last + 1)}
    return {
        "margin": [
            figures.steps(
                margin,
                out / "margin.png",
                title=f"{task}: lengths past the trained range at {at} (figure 9)",
                ylabel=f"extra lengths at {at}",
            )
        ],
        "reach": [
            figures.steps(
                reach,
                out / "reach.png",
                title=f"{task}: longest length at {at} (figure 10)",
                ylabel=f"longest length at {at}",
                reference=("one level a round", line),
            )
        ],
    }


def margin_markdown(results: RunResults, threshold: float) -> str:
    """Per round: the trained top, the margin and reach at `threshold` (mean over members, and each
    member's reach of a voting run), the longest length evaluated, and the round's compute minutes."""
    multi = len(results.members) > 1
    mean = results.margins(threshold)
    per = {m: results.margins(threshold, m) for m in results.members} if multi else {}
    seconds, total = results.seconds(), 0.0
    head = ["round", "trained to", "margin", "reach"] + [f"reach m{m}" for m in per]
    head += ["evaluated to", "compute min (cumulative)"]
    rows = []
    for r, x in mean.items():
        total += seconds.get(r, 0.0)
        rows.append(
            [r, x["trained"], x["margin"], x["reach"]]
            + [per[m].get(r, {}).get("reach", "-") for m in per]
            + [x["evaluated_to"], f"{total / 60:.1f}"]
        )
    return tables.markdown(head, rows)


def carries_figure(results: RunResults, out: Path) -> list[Path]:
    """Appendix B.8: exact match by the longest carry chain, per operand length, in the first round that
    measured it and the last (the members' mean); [] when no round did (`eval_carry_sets`)."""
    carries = results.carries()
    if not carries:
        return []
    shown = sorted({min(carries), max(carries)})
    series = {
        f"round {r}, L = {n}": {int(c): v for c, v in chains.items()}
        for r in shown
        for n, chains in carries[r].items()
    }
    mean = " (mean over members)" if len(results.members) > 1 else ""
    path = figures.lines(
        series,
        out / "carries.png",
        title=f"{results.task}: exact match by the longest carry chain (appendix B.8)",
        ylabel=f"exact match{mean}",
        xlabel="longest cascading carry chain",
    )
    return [path]


def carries_section(results: RunResults, made: dict[str, list[Path]]) -> list[str]:
    carries = results.carries()
    chains = range(max(int(n) for by_length in carries.values() for n in by_length) + 1)
    head = ["round", "operand length"] + [f"chain {c}" for c in chains]
    rows = [
        [r, n] + [tables.pct(by_chain.get(str(c))) for c in chains]
        for r, by_length in carries.items()
        for n, by_chain in by_length.items()
    ]
    return [
        "## Carry chains (paper appendix B.8)\n",
        "Exact match (%) on held-out sums of equal-length operands, by the longest run of columns that "
        "each carry out (`eval_carry_sets`; random problems rarely hold long chains).\n",
        tables.markdown(head, rows) + "\n",
        _figure_lines(made["carries"], "exact match by the longest carry chain"),
    ]


def write_figures(results: RunResults, out: Path, threshold: float = 0.99) -> dict[str, list[Path]]:
    """Every figure of the report; {figure kind: [paths]} (the mean first, then each member)."""
    multi = len(results.members) > 1
    # one member: its own figures; k members: the mean unsuffixed, then each member
    views = [None, *results.members] if multi else results.members
    made: dict[str, list[Path]] = {
        "heatmap": [],
        "grid": [],
        "data_accuracy": [],
        "data_vs_next": [],
        "memorised": [],
        "margin": [],
        "reach": [],
        "carries": [],
    }
    for v in views:
        suffix = _suffix(v) if multi else ""
        name = (" (mean)" if v is None else f" (member {v})") if multi else ""
        made["heatmap"].append(run_heatmap(results, out / f"heatmap{suffix}.png", member=v))
        last = results.rounds[-1]
        if results.is_grid() and last in results.accuracy(v):
            made["grid"].append(
                figures.grid(
                    results.accuracy(v)[last],
                    out / f"grid{suffix}.png",
                    supervised=results.supervised,
                    title=f"{results.task}: exact match after round {last}{name}",
                )
            )
    label = {m: f"member {m}" if multi else results.task for m in results.members}
    data = {label[m]: results.data_accuracy(m) for m in results.members}
    points = {label[m]: results.data_vs_next(m) for m in results.members}
    if len(results.members) > 1:
        data["mean"], points["mean"] = results.data_accuracy(), results.data_vs_next()
    if any(data.values()):
        made["data_accuracy"].append(
            figures.lines(
                data,
                out / "data_accuracy.png",
                title=f"{results.task}: accuracy of the kept self-labels per round",
                ylabel="data accuracy (kept labels correct)",
            )
        )
    if any(points.values()):
        made["data_vs_next"].append(
            figures.scatter(
                points,
                out / "data_vs_next.png",
                title=f"{results.task}: data accuracy vs. next-level exact match",
                xlabel="data accuracy of D_r (labels of round r)",
                ylabel="exact match of M_r one level past D_r",
            )
        )
    made.update(frontier_figures({results.task: results}, out, threshold))
    made["carries"] = carries_figure(results, out)
    for m in results.members:
        series = results.memorised(m)
        if series:
            made["memorised"].append(
                figures.lines(
                    series,
                    out / f"memorised{_suffix(m) if multi else ''}.png",
                    title=f"{results.task}: the model of each round on earlier rounds' wrong labels"
                    + (f" (member {m})" if multi else ""),
                    ylabel="share of those prompts",
                )
            )
    return made


def loading_lines(results: RunResults) -> list[str]:
    """How to load the final model and the last round's dataset, locally and (when pushed) from the Hub."""
    paths, last = RunPaths(results.source), results.rounds[-1]
    m = results.members[0]
    lines = [
        "from transformers import AutoModelForCausalLM",
        f'model = AutoModelForCausalLM.from_pretrained("{paths.round(last, m).model}")',
    ]
    data_round = max((r for r in results.rounds if r > 0), default=None)
    if data_round is not None:
        data_dir = paths.round(data_round, m).dataset
        lines += ["from datasets import load_dataset", f'labels = load_dataset("{data_dir}", split="train")']
    record = results.record(last, m)
    cfg = (record.info if record else {}).get("config") or {}
    model_repo = (cfg.get("training") or {}).get("hub_model_id")
    data_repo = (cfg.get("self_improve") or {}).get("hub_dataset_id")
    k = len(results.members)
    if model_repo:
        sub = f', subfolder="{member_dirname(m)}"' if k > 1 else ""
        lines.append(
            f'# or from the Hub: AutoModelForCausalLM.from_pretrained("{model_repo}", revision="{revision(last)}"'
            f"{sub})"
        )
    if data_repo and data_round is not None:
        config = f'"{member_dirname(m)}", ' if k > 1 else ""
        lines.append(
            f'# or from the Hub: load_dataset("{data_repo}", {config}revision="{revision(data_round)}", split="train")'
        )
    return lines


def _label_table(results: RunResults, member: int) -> str:
    head = ["round", "labelled levels", "prompts labelled", "labels kept", "kept fraction", "data accuracy"]
    rows = [
        [row["round"], ", ".join(row["levels"]), row["n_generated"], row["n_kept"]]
        + [row["kept_fraction"], row["data_accuracy"]]
        for row in results.label_rows(member)
    ]
    return tables.markdown(head, rows)


def _figure_lines(paths: list[Path], caption: str) -> str:
    return "".join(
        f"![{caption}{'' if i == 0 else f' ({p.stem})'}]({p.name})\n\n" for i, p in enumerate(paths)
    )


def report_markdown(results: RunResults, made: dict[str, list[Path]], threshold: float = 0.99) -> str:
    k = len(results.members)
    mean = f", mean over {k} members" if k > 1 else ""
    parts = [
        f"# si-hf report: {results.task}\n",
        f"- run: `{results.source}`\n- rounds: {results.rounds[0]}..{results.rounds[-1]}"
        f"\n- members: {k}\n- supervised range D_0: {', '.join(results.supervised) or 'n/a'}\n",
        f"## Exact match per round and difficulty{mean}\n",
        "Rows are rounds (round 0 is trained on D_0 only), columns difficulties; the dashed box marks "
        "D_0, grey cells were not evaluated (paper figures 1, 3, 5, 6, 11).\n",
        _figure_lines(made["heatmap"], "exact match per round and difficulty"),
        f"`*`: supervised (D_0); cells in %.\n\n{accuracy_markdown(results)}\n",
    ]
    if made["grid"]:
        parts += [
            f"## n x m after round {results.rounds[-1]}\n",
            "Exact match per digit pair (paper figures 7, 34).\n",
            _figure_lines(made["grid"], "exact match over n x m"),
        ]
    parts.append("## Self-labelled data\n")
    parts += [
        (f"Member {m}:\n\n" if k > 1 else "") + _label_table(results, m) + "\n" for m in results.members
    ]
    parts.append(_figure_lines(made["data_accuracy"], "data accuracy per round"))
    if made["data_vs_next"]:
        parts.append(
            "Each point is round r: x is the accuracy of the labels D_r kept (written by M_(r-1)), y the "
            "exact match of M_r, trained on them, one level further (paper figure 12: points below "
            "y = x are rounds whose label errors cost the next level).\n\n"
        )
        parts.append(_figure_lines(made["data_vs_next"], "data accuracy vs. next-level exact match"))
    if made["memorised"]:
        parts.append(
            "## Memorised mistakes\n\nEach round's model answers the wrong labels of every round it has "
            "trained on: the share it now gets right and the share where it repeats the wrong label (paper "
            "figure 26: repeated exposure tends to reinforce the errors rather than correct them).\n\n"
        )
        parts.append(_figure_lines(made["memorised"], "memorised mistakes"))
    if made["carries"]:
        parts += carries_section(results, made)
    if made["margin"]:
        at = f"{100 * threshold:g}%"
        parts += [
            f"## Margin and reach at >= {at} (paper figures 9 and 10)\n",
            f"The margin is how many lengths past the trained range reach {at} in a row (figure 9: it "
            "grows round by round when self-improvement compounds); the reach is the longest length at "
            f"{at} (figure 10; dashed: one level a round from the first round shown). A margin that ends "
            "at the longest length evaluated may be cut off by the window: `eval_until_below` evaluates "
            "until a level falls below a floor. Compute minutes add labelling, training and evaluation "
            "of every member.\n",
            margin_markdown(results, threshold) + "\n",
            _figure_lines(made["margin"], "margin past the trained range (figure 9)"),
            _figure_lines(made["reach"], "longest length at the threshold (figure 10)"),
        ]
    parts.append("## Loading\n\n```python\n" + "\n".join(loading_lines(results)) + "\n```\n")
    return "\n".join(parts)


def write_report(output_dir, report_dir=None, threshold: float = 0.99) -> Path:
    """Read the run in `output_dir`, write the figures and report.md into `report_dir` (default
    `output_dir/report`); returns the path of report.md. `threshold`: the exact match at which figures
    9 and 10 count a length as solved (the paper's 99%)."""
    results = RunResults.from_output_dir(output_dir)
    return _write(results, report_dir or RunPaths(output_dir).report, threshold)


def _write(results: RunResults, report_dir, threshold: float = 0.99) -> Path:
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    made = write_figures(results, out, threshold)
    path = out / REPORT
    atomic.write_text(path, report_markdown(results, made, threshold))
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="si-hf report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", metavar="OUTPUT_DIR", help="the --output_dir of an si-hf run")
    parser.add_argument("--output_dir", default=None, help="where to write the report (OUTPUT_DIR/report)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.99,
        help="exact match at which figures 9 and 10 count a length as solved (the paper's 0.99)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.threshold <= 1:
        parser.error(f"--threshold {args.threshold} is not in (0, 1]")
    if args.output_dir is not None and Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        parser.error(f"--output_dir: {args.output_dir} is a file; expected a folder for the report")
    try:
        results = RunResults.from_output_dir(args.run_dir)
    except (ValueError, DamagedRoundError) as e:
        parser.error(str(e))  # exits 2 with the usage and the message
    path = _write(results, args.output_dir or RunPaths(args.run_dir).report, args.threshold)
    print(f"report: {path} (figures beside it)")
    print("load the final model and the last round's self-labelled data:")
    print("\n".join(f"    {line}" for line in loading_lines(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
