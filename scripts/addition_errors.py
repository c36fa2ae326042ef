"""Where an addition model goes wrong: how many answer digits it gets right from each end, per length.

Exact match says only that a sum is wrong. Forward addition writes the most significant digit first, so
its first digit needs the carry of every column after it, and a model may get the answer's front and
back right to different depths (docs/cpu-tuning.md, "Forward addition"). Per operand length:

- `correct`: exact match; `right_length`: as many digits as the true sum;
- `front`: mean number of leading digits (as written) that equal the true sum's, up to the first wrong one;
- `back`: the same from the last written digit backwards.

For reverse addition "as written" is least significant digit first, so `front` counts the low-order
digits, and `back` starts at the '0' padding the answer to max(len)+1 digits when the sum is shorter.

    python scripts/addition_errors.py <round>/member-0/model [--task forward_addition] [--lengths 4 5 6]
        [--n 200] [--seed 7]

Problems are held out (the evaluation split, never a training prompt) with equal operand lengths (the
rounds' and evaluation's shape), from `random.Random(seed)`,
`n` per length in the order given, labelled by `si_hf.labeling.label` (greedy, no ground truth), so a
model and a seed give the same table anywhere.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from os.path import commonprefix

from si_hf.tasks import get_task

COUNTS = ("problems", "correct", "right_length", "front", "back")
TASKS = ("forward_addition", "reverse_addition")


def breakdown(answers: list[str], predictions: list[str]) -> dict[str, float]:
    """The counts of `COUNTS` over true sums and the model's answers (`front`/`back`: means)."""
    if len(answers) != len(predictions) or not answers:
        raise ValueError(
            f"got {len(answers)} answers and {len(predictions)} predictions; expected one of each per "
            "problem, at least one"
        )
    n = len(answers)
    return {
        "problems": n,
        "correct": sum(p == a for a, p in zip(answers, predictions)),
        "right_length": sum(len(p) == len(a) for a, p in zip(answers, predictions)),
        "front": round(sum(len(commonprefix([a, p])) for a, p in zip(answers, predictions)) / n, 2),
        "back": round(
            sum(len(commonprefix([a[::-1], p[::-1]])) for a, p in zip(answers, predictions)) / n, 2
        ),
    }


def run(model, tokenizer, task_name: str, lengths: list[int], n: int, seed: int) -> dict[int, dict]:
    from si_hf.labeling import label

    task, rng, table = get_task(task_name), random.Random(seed), {}
    for d in lengths:
        prompts, answers = zip(*(task.sample(d, rng, split="eval") for _ in range(n)))
        preds = label(model, tokenizer, task, list(prompts), batch_size=n, progress=False)
        table[d] = breakdown(list(answers), [p.text for p in preds])
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a round's model directory (…/rounds/round-000/member-0/model)")
    parser.add_argument("--task", default="forward_addition", choices=TASKS, help="the model's task")
    parser.add_argument("--lengths", type=int, nargs="+", default=[4, 5, 6, 7, 8, 9], help="operand lengths")
    parser.add_argument("--n", type=int, default=200, help="problems per length")
    parser.add_argument("--seed", type=int, default=7, help="seed of the problems' random.Random")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n {args.n}: expected at least one problem per length")
    if min(args.lengths) < 1:
        parser.error(f"--lengths {args.lengths}: expected operand lengths >= 1")

    from si_hf import tables
    from si_hf.modeling import load_checkpoint
    from si_hf.tokenization import get_tokenizer

    model = load_checkpoint(args.model).eval()
    table = run(model, get_tokenizer("char"), args.task, args.lengths, args.n, args.seed)
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    print(
        tables.markdown(
            ["length", *COUNTS], [[d, *(counts[k] for k in COUNTS)] for d, counts in table.items()]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
