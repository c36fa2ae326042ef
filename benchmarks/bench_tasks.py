"""Dataset generation speed: `Task.generate` against deliberately naive generators, in one run.

The naive baselines draw operands digit by digit with `rng.choice` and build mazes with the paper's
networkx listing (appendix C.2.3); both rejection-sample into the train split like `generate`, so
the ratio measures only the generation code. Usage: python benchmarks/bench_tasks.py [--scale 0.1]
"""

import argparse
import random
import sys
import time
import zlib

import networkx as nx

from si_hf import tables
from si_hf.tasks import get_task
from si_hf.tasks.multiplication import cot_multiplication


def naive_digits(rng, length, leading_zero=False):
    first = rng.choice("0123456789" if leading_zero else "123456789")
    return first + "".join(rng.choice("0123456789") for _ in range(length - 1))


def naive_reverse_addition(rng, d0):
    a, b = naive_digits(rng, rng.randint(1, d0)), naive_digits(rng, rng.randint(1, d0))
    total = "".join(reversed(str(int(a) + int(b))))
    while len(total) < max(len(a), len(b)) + 1:
        total += "0"
    return "".join(reversed(a)) + "+" + "".join(reversed(b)) + "=", total


def naive_forward_addition(rng, d0):
    a, b = naive_digits(rng, rng.randint(1, d0)), naive_digits(rng, rng.randint(1, d0))
    return a + "+" + b + "=", str(int(a) + int(b))


def naive_copy(rng, d0):
    s = naive_digits(rng, rng.randint(1, d0), leading_zero=True)
    return s + "=", s


def naive_reverse_string(rng, d0):
    s = naive_digits(rng, rng.randint(1, d0), leading_zero=True)
    return s + "=", "".join(reversed(s))


def naive_multiplication(rng, d0):
    return cot_multiplication(
        int(naive_digits(rng, rng.randint(1, d0))), int(naive_digits(rng, rng.randint(1, d0)))
    )


def naive_maze(rng, hops, total_nodes=30):
    graph = nx.path_graph(hops + 1)
    current_nodes, new_nodes = list(graph.nodes()), list(range(hops + 1, total_nodes))
    while new_nodes:
        new_node = new_nodes.pop()
        walk = [new_node]
        while walk[-1] not in current_nodes:
            random_node = rng.choice(current_nodes + new_nodes)
            walk.append(random_node)
            if random_node in new_nodes:
                new_nodes.remove(random_node)
        nx.add_path(graph, walk)
        current_nodes.append(new_node)
    labels = dict(zip(graph.nodes(), rng.sample(range(1, 100), graph.number_of_nodes())))
    path = nx.shortest_path(graph, 0, hops)
    nodes = list(graph.nodes())
    rng.shuffle(nodes)
    entries = []
    for v in nodes:
        nbrs = list(graph.adj[v])
        rng.shuffle(nbrs)
        entries.append(f"{labels[v]}:" + ",".join(str(labels[u]) for u in nbrs))
    prompt = f"{labels[0]}>{labels[hops]}#" + "-".join(entries) + "="
    return prompt, ">".join(str(labels[v]) for v in path)


def naive_maze_hops(rng, d0):
    return naive_maze(rng, rng.randint(1, d0))


def run_naive(fn, n, d0):
    rng, out = random.Random(0), []
    while len(out) < n:
        prompt, answer = fn(rng, d0)
        if zlib.crc32(prompt.encode()) % 8 != 0:
            out.append((prompt, answer))
    return out


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every example count")
    args = parser.parse_args()
    # (task, d0, examples for generate, examples for the naive baseline, baseline)
    cases = [
        ("reverse_addition", 16, 1_000_000, 200_000, naive_reverse_addition),
        ("forward_addition", 16, 100_000, 100_000, naive_forward_addition),
        ("copy", 16, 100_000, 100_000, naive_copy),
        ("reverse_string", 16, 100_000, 100_000, naive_reverse_string),
        ("multiplication", 5, 100_000, 100_000, naive_multiplication),
        ("maze_hops", 9, 10_000, 10_000, naive_maze_hops),
    ]
    rows = []
    for name, d0, n, n_naive, naive in cases:
        n, n_naive = max(1, int(n * args.scale)), max(1, int(n_naive * args.scale))
        task = get_task(name)
        fast = timed(lambda task=task, n=n, d0=d0: task.generate(n, seed=0, purpose="d0", d0=d0))
        slow = timed(lambda naive=naive, n=n_naive, d0=d0: run_naive(naive, n, d0))
        fast_rate, slow_rate = n / fast, n_naive / slow
        rows.append(
            [name, n, f"{fast_rate:,.0f}", f"{slow_rate:,.0f}", f"{fast_rate / slow_rate:.1f}", f"{fast:.2f}"]
        )
        print(f"{name}: done", file=sys.stderr, flush=True)
    print(tables.markdown(["task", "n", "generate ex/s", "naive ex/s", "ratio", "generate s"], rows))


if __name__ == "__main__":
    main()
