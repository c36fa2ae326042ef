"""Carry-chain test sets (paper appendix B.8, figures 29-30): addition by its longest cascading carry.

Random problems almost never hold long carry chains, so exact match on them cannot tell length
generalisation from luck (B.8: "the model struggles to generalize to examples with longer carry
chains"). For each operand length L (both operands of exactly L digits, leading digit non-zero) and
each longest chain c = 0..L, `carry_problems` builds N problems whose longest run of consecutive
columns that each carry out is exactly c:

- every problem comes from the evaluation split (a crc32 bucket no training prompt is ever drawn from)
  and is none of the run's own evaluation prompts (`exclude`), so it is held out from training and
  evaluation alike;
- seeded per (seed, L, c) through `rng_for`: the same problems on every machine.

`si-hf analyze carries MODEL --task reverse_addition --lengths 8 9 10 --per_carry 50` evaluates them
(exact match, the run's greedy decoding) and writes under `--output_dir` the dataset `problems`
(prompt, completion, length, max_carry, model_completion, correct), `carries.md` and `carries.png`
(accuracy by carry length, one line per L); `--round_data ROUND_DIR` adds `carry_histogram.png`, the
longest chains in a round's self-labelled data (figure 29).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from si_hf import atomic, tables
from si_hf.tasks import get_task, rng_for

ADDITION_TASKS = ("reverse_addition", "forward_addition")
MAX_DRAWS = 200  # per problem: eval-split and exclusion rejections (1 in 8 prompts is in the eval split)


def carry_outs(x: int, y: int) -> list[bool]:
    """Per column, least significant first: does x + y carry out of it?"""
    outs, carry = [], 0
    while x or y:
        carry = int(x % 10 + y % 10 + carry >= 10)
        outs.append(bool(carry))
        x, y = x // 10, y // 10
    return outs


def longest_chain(x: int, y: int) -> int:
    """The longest run of consecutive columns of x + y that each carry out (0: no carry at all)."""
    best = run = 0
    for out in carry_outs(x, y):
        run = run + 1 if out else 0
        best = max(best, run)
    return best


def operands_of(task, prompt: str) -> tuple[int, int]:
    """The two operands of an addition prompt as ints (reverse addition writes them reversed)."""
    a, b = task.operands(prompt)
    return (int(a[::-1]), int(b[::-1])) if task.name == "reverse_addition" else (int(a), int(b))


def prompt_of(task, x: int, y: int) -> str:
    if task.name == "reverse_addition":
        return f"{str(x)[::-1]}+{str(y)[::-1]}="
    return f"{x}+{y}="


def _pattern(length: int, chain: int, rng) -> list[bool]:
    """Carry-outs per column whose longest run of True is exactly `chain`: one run of `chain` at a random
    place, bounded by False, the other columns random with every longer run broken."""
    outs = [rng.random() < 0.5 for _ in range(length)]
    if chain == 0:
        return [False] * length
    start = rng.randrange(length - chain + 1)
    outs[start : start + chain] = [True] * chain
    for i in (start - 1, start + chain):
        if 0 <= i < length:
            outs[i] = False
    run = 0
    for i in range(length):  # break every run longer than `chain` outside the placed one
        run = run + 1 if outs[i] else 0
        if run > chain:
            outs[i], run = False, 0
    return outs


def _operands(length: int, outs: list[bool], rng) -> tuple[int, int]:
    """Digits column by column (least significant first) that give exactly the carry-outs `outs`; the
    leading digits are non-zero, so both operands have `length` digits."""
    x = y = 0
    carry = 0
    for i, out in enumerate(outs):
        low = 1 if i == length - 1 else 0
        pairs = [(a, b) for a in range(low, 10) for b in range(low, 10) if (a + b + carry >= 10) == out]
        a, b = rng.choice(pairs)
        x, y, carry = x + a * 10**i, y + b * 10**i, int(out)
    return x, y


def carry_problems(task, lengths, per_carry: int, *, seed: int, exclude=frozenset()) -> list[dict]:
    """`per_carry` problems for each L in `lengths` and each longest chain 0..L (rows: prompt, completion,
    length, max_carry), from the evaluation split, none in `exclude`, seeded per (seed, L, c)."""
    if task.name not in ADDITION_TASKS:
        raise ValueError(f"task: {task.name!r} has no carries; expected one of {list(ADDITION_TASKS)}")
    rows = []
    for length in lengths:
        for chain in range(length + 1):
            rng, seen = rng_for(seed, "carries", length, chain), set()
            for _ in range(per_carry * MAX_DRAWS):
                if len(seen) == per_carry:
                    break
                x, y = _operands(length, _pattern(length, chain, rng), rng)
                prompt = prompt_of(task, x, y)
                if prompt in seen or prompt in exclude or task.split_of(prompt) != "eval":
                    continue
                seen.add(prompt)
                rows.append(
                    {"prompt": prompt, "completion": task.solve(prompt), "length": length, "max_carry": chain}
                )
            if len(seen) < per_carry:
                raise ValueError(
                    f"--per_carry {per_carry}: only {len(seen)} held-out {length}-digit problems with a longest "
                    f"carry chain of {chain} were found; ask for fewer"
                )
    return rows


def check_carry_sets(lengths, task) -> None:
    """`eval_carry_sets` needs an addition task (the option names lengths of its operands)."""
    if lengths and task.name not in ADDITION_TASKS:
        raise ValueError(
            f"eval_carry_sets: {list(lengths)}: carry chains are defined for {list(ADDITION_TASKS)}, not "
            f"{task.name!r}; leave it empty"
        )


def carry_accuracy(rows: list[dict]) -> dict[str, dict[str, float]]:
    """{length: {longest chain: exact match}} of rows that carry `correct`."""
    groups: dict[tuple[int, int], list[bool]] = {}
    for row in rows:
        groups.setdefault((row["length"], row["max_carry"]), []).append(row["correct"])
    out: dict[str, dict[str, float]] = {}
    for (length, chain), flags in sorted(groups.items()):
        out.setdefault(str(length), {})[str(chain)] = sum(flags) / len(flags)
    return out


def evaluate_carries(model, tokenizer, task, rows: list[dict], **decode) -> list[dict]:
    """Greedy answers to every problem; an answer counts only when complete and equal (section 3)."""
    from si_hf.labeling import label

    predictions = label(model, tokenizer, task, [r["prompt"] for r in rows], desc="carries", **decode)
    return [
        {**row, "model_completion": p.text, "correct": bool(p.complete and p.text == row["completion"])}
        for row, p in zip(rows, predictions)
    ]


def chain_histogram(task, prompts) -> Counter:
    """Figure 29: how many prompts have each longest carry chain."""
    return Counter(longest_chain(*operands_of(task, p)) for p in prompts)


def carries_markdown(accuracy: dict[str, dict[str, float]], per_carry: int) -> str:
    chains = sorted({int(c) for row in accuracy.values() for c in row})
    head = ["operand length"] + [f"chain {c}" for c in chains]
    rows = [[length] + [tables.pct(acc.get(str(c))) for c in chains] for length, acc in accuracy.items()]
    return (
        f"Exact match (%) by the longest cascading carry, {per_carry} held-out problems per cell "
        "(paper appendix B.8):\n\n" + tables.markdown(head, rows) + "\n"
    )


def _excluded(model_dir: Path, task, lengths) -> set[str]:
    """The run's own evaluation prompts at `lengths`, when MODEL is a round of an si-hf store (its marker
    records the data seed and how many problems a level had); otherwise none are known."""
    from si_hf.evaluation import build_eval_sets

    marker = model_dir.parent / "si_hf_round.json"
    if not marker.is_file():
        return set()
    config = json.loads(marker.read_text()).get("info", {}).get("config", {})
    seed = config.get("task", {}).get("data_seed_base")
    n = config.get("self_improve", {}).get("eval_examples_per_difficulty")
    if seed is None or n is None:
        return set()
    sets = build_eval_sets(task, lengths, num_per_difficulty=n, seed=seed)
    return {p for prompts, _ in sets.values() for p in prompts}


def round_files(round_dir) -> list[Path]:
    """The parquet files of a round's dataset as the store writes it (`<round>/dataset/data/*.parquet`)."""
    return sorted((Path(round_dir) / "dataset").glob("data/*.parquet"))


def round_histogram(task, round_dir: str, out: Path) -> str:
    """Figure 29: the longest carry chains in a round's self-labelled data, as carry_histogram.png and a
    line of counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from si_hf.publishing import figures

    files = round_files(round_dir)
    prompts = (
        pa.concat_tables([pq.read_table(f, columns=["prompt"]) for f in files]).column("prompt").to_pylist()
    )
    counts = chain_histogram(task, prompts)
    figures.histogram(
        dict(sorted(counts.items())),
        out / "carry_histogram.png",
        title=f"{task.name}: longest carry chain in {round_dir} (figure 29)",
        xlabel="longest cascading carry chain",
    )
    shown = ", ".join(f"{c}: {n}" for c, n in sorted(counts.items()))
    return f"\nLongest carry chains in the labels of {round_dir} (figure 29): {shown}\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="si-hf analyze carries", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", metavar="MODEL", help="a model folder (a round's model/ in a store)")
    parser.add_argument("--task", default="reverse_addition", choices=ADDITION_TASKS)
    parser.add_argument("--lengths", type=int, nargs="+", required=True, help="operand lengths L")
    parser.add_argument("--per_carry", type=int, default=100, help="problems per (L, longest chain)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the problems")
    parser.add_argument("--output_dir", required=True, help="where problems/, carries.md and figures go")
    parser.add_argument("--round_data", default=None, help="a round folder: figure 29 of its labels")
    parser.add_argument("--batch_size", type=int, default=500)
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.lengths) or args.per_carry < 1 or args.batch_size < 1:
        parser.error(
            f"--lengths {args.lengths}, --per_carry {args.per_carry}, --batch_size: expected ints >= 1"
        )
    if Path(args.output_dir).is_file():
        parser.error(f"--output_dir: {args.output_dir} is a file; expected a folder")
    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        parser.error(f"MODEL: {args.model} holds no config.json; expected a model folder (from_pretrained)")
    if args.round_data is not None and not round_files(args.round_data):
        parser.error(
            f"--round_data: {args.round_data} has no dataset/data/*.parquet; expected a round's member folder "
            "(RUN/rounds/round-NNN/member-M)"
        )
    task = get_task(args.task)
    try:
        rows = carry_problems(
            task,
            args.lengths,
            args.per_carry,
            seed=args.seed,
            exclude=_excluded(model_dir, task, args.lengths),
        )
    except ValueError as e:
        parser.error(str(e))
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from si_hf.publishing import figures
    from si_hf.tokenization import get_tokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    scored = evaluate_carries(
        model, get_tokenizer(task.tokenizer_name), task, rows, batch_size=args.batch_size
    )
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(scored).save_to_disk(str(out / "problems"))
    accuracy = carry_accuracy(scored)
    text = carries_markdown(accuracy, args.per_carry)
    series = {f"L = {length}": {int(c): v for c, v in acc.items()} for length, acc in accuracy.items()}
    figures.lines(
        series,
        out / "carries.png",
        title=f"{task.name}: exact match by the longest carry chain (B.8)",
        ylabel="exact match",
        xlabel="longest cascading carry chain",
    )
    if args.round_data is not None:
        text += round_histogram(task, args.round_data, out)
    atomic.write_text(out / "carries.md", text)
    atomic.write_json(out / "carries.json", accuracy)
    print(text, end="")
    print(f"written: {out / 'problems'}, {out / 'carries.md'}, {out / 'carries.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
