"""Error anatomy (paper appendix B.6.1, figures 13, 23-24): how an arithmetic model's wrong answers are wrong.

"We can categorize all mistakes into two bins. At each digit position, either the model drop the digit,
or outputs a wrong digit. Since these two kinds of mistakes are entangled in practice, we use a string
matching algorithm to compare the model output and predictions and obtain the best guess." Here that
matching is a minimum edit alignment of the answer against the true answer (`align`): a true digit
with no counterpart is *dropped*, one matched to another digit is *wrong*, an output digit with no
counterpart is *extra*; among equally short alignments a wrong digit is preferred to a drop plus an
extra. Per length, over the wrong answers only:

- `wrong_answers`: how many of the problems were answered wrong (incomplete answers included);
- `dropped`, `wrong_digits`, `extra`: mean number of each per wrong answer;
- `with_drop`: share of wrong answers that drop at least one digit;
- `first_error`: mean position (as written, from 0) of the first error;
- `off_by_one`: share of wrong digits that differ from the true digit by one;
- `positions`: where in the answer (as written) drops and wrong digits fall, counted per position.

`si-hf analyze errors MODEL --task reverse_addition --lengths 9 10 11` prints the table and writes
`errors.md`, `errors.json` and `errors_kinds.png` / `errors_positions.png` (figures 23-24) beside it.
Problems are held out (the evaluation split), `n` per length from `random.Random(seed)`, labelled greedily
by `si_hf.labeling.label`: a model and a seed give the same table anywhere.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from si_hf import tables

KINDS = ("match", "wrong", "dropped", "extra")


def align(truth: str, output: str) -> list[tuple[str, int | None, int | None]]:
    """A minimum edit alignment of `output` against `truth`: (kind, index in truth, index in output) with
    kind one of `KINDS`, in order. Each edit costs 1; on ties a substitution ("wrong") is taken before a
    drop, and a drop before an extra digit."""
    n, m = len(truth), len(output)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            diagonal = cost[i - 1][j - 1] + (truth[i - 1] != output[j - 1])
            cost[i][j] = min(diagonal, cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    ops, i, j = [], n, m
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (truth[i - 1] != output[j - 1]):
            ops.append(("match" if truth[i - 1] == output[j - 1] else "wrong", i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            ops.append(("dropped", i - 1, None))
            i -= 1
        else:
            ops.append(("extra", None, j - 1))
            j -= 1
    return ops[::-1]


def anatomy(truths: list[str], outputs: list[str], complete: list[bool] | None = None) -> dict:
    """The counts of the module docstring over one length's true answers and the model's (`complete`:
    the answer ended with EOS; an incomplete answer is wrong even when its text is right)."""
    if len(truths) != len(outputs) or not truths:
        raise ValueError(
            f"got {len(truths)} true answers and {len(outputs)} outputs; expected one of each, at least one"
        )
    complete = [True] * len(truths) if complete is None else list(complete)
    wrong = [(t, o) for t, o, c in zip(truths, outputs, complete) if not (c and t == o)]
    out = {"problems": len(truths), "wrong_answers": len(wrong)}
    totals = dict.fromkeys(("dropped", "wrong_digits", "extra"), 0)
    firsts, with_drop, off_by_one, digits_wrong = [], 0, 0, 0
    positions = {"dropped": {}, "wrong": {}}
    for t, o in wrong:
        ops = align(t, o)
        errors = [op for op in ops if op[0] != "match"]
        kinds = [k for k, _, _ in errors]
        totals["dropped"] += kinds.count("dropped")
        totals["wrong_digits"] += kinds.count("wrong")
        totals["extra"] += kinds.count("extra")
        with_drop += "dropped" in kinds
        if errors:  # a right text that did not end is wrong with no digit error
            kind, i, j = errors[0]
            firsts.append(i if i is not None else j)
        for kind, i, j in errors:
            if kind in positions:
                positions[kind][i] = positions[kind].get(i, 0) + 1
            if kind == "wrong" and t[i].isdigit() and o[j].isdigit():
                digits_wrong += 1
                off_by_one += abs(int(t[i]) - int(o[j])) == 1
    n = len(wrong)
    out.update({k: round(v / n, 3) if n else 0.0 for k, v in totals.items()})
    out["with_drop"] = round(with_drop / n, 3) if n else 0.0
    out["first_error"] = round(sum(firsts) / len(firsts), 2) if firsts else None
    out["off_by_one"] = round(off_by_one / digits_wrong, 3) if digits_wrong else None
    out["positions"] = {k: dict(sorted(v.items())) for k, v in positions.items()}
    return out


COLUMNS = (
    "problems",
    "wrong_answers",
    "dropped",
    "wrong_digits",
    "extra",
    "with_drop",
    "first_error",
    "off_by_one",
)


def analyze(
    model, tokenizer, task, lengths: list[int], n: int, seed: int, batch_size: int = 500
) -> dict[int, dict]:
    """{length: `anatomy`} of `model` on `n` held-out problems per length."""
    from si_hf.labeling import label

    rng, table = random.Random(seed), {}
    for d in lengths:
        prompts, answers = zip(*(task.sample(d, rng, split="eval") for _ in range(n)))
        preds = label(model, tokenizer, task, list(prompts), batch_size=batch_size, progress=False)
        table[d] = anatomy(list(answers), [p.text for p in preds], [p.complete for p in preds])
    return table


def markdown(table: dict[int, dict]) -> str:
    rows = [[d, *("–" if c[k] is None else c[k] for k in COLUMNS)] for d, c in table.items()]
    return tables.markdown(["length", *COLUMNS], rows)


def figures(table: dict[int, dict], out: Path, title: str) -> list[Path]:
    """errors_kinds.png (dropped / wrong / extra digits per wrong answer, by length) and
    errors_positions.png (where drops and wrong digits fall, by position as written)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = list(table)
    fig, ax = plt.subplots(figsize=(7, 4))
    bottom = [0.0] * len(lengths)
    for key, name in (
        ("dropped", "dropped digits"),
        ("wrong_digits", "wrong digits"),
        ("extra", "extra digits"),
    ):
        values = [table[d][key] for d in lengths]
        ax.bar([str(d) for d in lengths], values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set(xlabel="length", ylabel="per wrong answer", title=f"{title}: kinds of error")
    ax.legend()
    fig.tight_layout()
    kinds = out / "errors_kinds.png"
    fig.savefig(kinds, dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, kind in zip(axes, ("dropped", "wrong")):
        for d in lengths:
            counts = table[d]["positions"][kind]
            wrong = table[d]["wrong_answers"] or 1
            xs = sorted(counts)
            ax.plot(xs, [counts[x] / wrong for x in xs], "o-", label=f"length {d}")
        ax.set(xlabel="position in the answer, as written", title=f"{kind} digits")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("per wrong answer")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"{title}: where the errors fall")
    fig.tight_layout()
    positions = out / "errors_positions.png"
    fig.savefig(positions, dpi=110)
    plt.close(fig)
    return [kinds, positions]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="si-hf analyze errors", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a round's model directory (…/rounds/round-NNN/member-M/model)")
    parser.add_argument("--task", default="reverse_addition", help="the model's task (arithmetic)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[8, 9, 10, 11, 12], help="operand lengths")
    parser.add_argument("-n", type=int, default=500, help="problems per length")
    parser.add_argument("--seed", type=int, default=0, help="seed of the problems' random.Random")
    parser.add_argument(
        "--output_dir", help="where errors.md, errors.json and the figures go (default: MODEL/../errors)"
    )
    args = parser.parse_args(argv)
    from si_hf.modeling import load_checkpoint
    from si_hf.tasks import get_task
    from si_hf.tokenization import get_tokenizer

    task = get_task(args.task)
    if not task.arithmetic:
        parser.error(f"--task {args.task!r}: error anatomy reads digits; expected an arithmetic task")
    if args.n < 1 or min(args.lengths) < 1:
        parser.error(f"-n {args.n} --lengths {args.lengths}: expected at least one problem and lengths >= 1")
    for d in args.lengths:
        task.parse_difficulty(d)
    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        parser.error(f"{args.model!r} holds no model (config.json); expected a round's model folder")
    out = Path(args.output_dir) if args.output_dir else model_dir.parent / "errors"
    out.mkdir(parents=True, exist_ok=True)
    model = load_checkpoint(model_dir).eval()
    table = analyze(model, get_tokenizer(task.tokenizer_name), task, args.lengths, args.n, args.seed)
    text = markdown(table)
    (out / "errors.json").write_text(json.dumps({str(k): v for k, v in table.items()}, indent=2))
    made = figures(table, out, args.task)
    (out / "errors.md").write_text(
        f"# Error anatomy: {model_dir}\n\n{args.task}, {args.n} held-out problems per length, seed "
        f"{args.seed}.\n\n{text}\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in made) + "\n"
    )
    print(text)
    print(f"\nwritten: {out / 'errors.md'}")
    return 0
