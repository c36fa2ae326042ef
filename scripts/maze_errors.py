"""Where a maze model goes wrong: its first move, its jumps and its path length, per hop count.

Exact match says only that a path is wrong. A move needs one lookup, the neighbours of the node the
path stands on, so this breaks the greedy answers down by that lookup (docs/cpu-tuning.md, "Mazes"):

- `first_move_neighbour`: the second node of the answer is a neighbour of the start;
- `first_move_right`: it is the true path's second node;
- `jump_to_goal`: the answer's second node is the goal although the goal is not next to the start;
- `right_length`: as many nodes as the true path; `forced_first_move`: mazes whose start has one
  neighbour, and `forced_first_move_right`: how many of those the model got right.

    python scripts/maze_errors.py <round>/member-0/model [--num_nodes 8] [--hops 1 2 3] [--n 200] [--seed 7]

Mazes come from `random.Random(seed)`, `n` per hop count in the order given, labelled by
`si_hf.labeling.label` (greedy, no ground truth), so a model and a seed give the same table anywhere.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter

from si_hf.tasks import get_task
from si_hf.tasks.maze import parse_maze

COUNTS = (
    "mazes",
    "correct",
    "right_length",
    "first_move_neighbour",
    "first_move_right",
    "jump_to_goal",
    "forced_first_move",
    "forced_first_move_right",
)


def breakdown(prompts: list[str], answers: list[str], predictions: list[str]) -> dict[str, int]:
    """The counts of `COUNTS` over mazes, their true paths and the model's answers."""
    if not len(prompts) == len(answers) == len(predictions):
        raise ValueError(
            f"got {len(prompts)} prompts, {len(answers)} answers and {len(predictions)} predictions; "
            "expected one of each per maze"
        )
    c = Counter({k: 0 for k in COUNTS})
    for prompt, answer, pred in zip(prompts, answers, predictions):
        start, goal, adj = parse_maze(prompt)
        truth, nodes = answer.split(">"), pred.split(">")
        second = int(nodes[1]) if len(nodes) > 1 and nodes[1].isdigit() else None
        forced = len(adj[start]) == 1
        c["mazes"] += 1
        c["correct"] += pred == answer
        c["right_length"] += len(nodes) == len(truth)
        c["first_move_neighbour"] += second in adj[start]
        c["first_move_right"] += second == int(truth[1])
        c["jump_to_goal"] += second == goal and goal not in adj[start]
        c["forced_first_move"] += forced
        c["forced_first_move_right"] += forced and second == int(truth[1])
    return dict(c)


def run(model, tokenizer, num_nodes: int, hops: list[int], n: int, seed: int) -> dict[int, dict[str, int]]:
    from si_hf.labeling import label

    task, rng, table = get_task("maze_hops", num_nodes=num_nodes), random.Random(seed), {}
    for d in hops:
        prompts, answers = zip(*(task.sample(d, rng) for _ in range(n)))
        preds = label(model, tokenizer, task, list(prompts), batch_size=n, progress=False)
        table[d] = breakdown(list(prompts), list(answers), [p.text for p in preds])
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a round's model directory (…/rounds/round-000/member-0/model)")
    parser.add_argument("--num_nodes", type=int, default=8, help="nodes per maze (the CPU recipes' 8)")
    parser.add_argument("--hops", type=int, nargs="+", default=[1, 2, 3], help="hop counts to probe")
    parser.add_argument("--n", type=int, default=200, help="mazes per hop count")
    parser.add_argument("--seed", type=int, default=7, help="seed of the mazes' random.Random")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n {args.n}: expected at least one maze per hop count")

    from si_hf import tables
    from si_hf.modeling import load_checkpoint
    from si_hf.tokenization import get_tokenizer

    model = load_checkpoint(args.model).eval()
    table = run(model, get_tokenizer("maze"), args.num_nodes, args.hops, args.n, args.seed)
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    print(
        tables.markdown(["hops", *COUNTS], [[d, *(counts[k] for k in COUNTS)] for d, counts in table.items()])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
