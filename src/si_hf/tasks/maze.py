"""Shortest paths in tree mazes (paper section 6.3, appendix C.2.3).

A maze is a tree on `nodes` nodes around a main path of `hops` edges, grown as in the paper's
listing: each remaining node starts a random walk over (tree nodes + untouched nodes) that stops on
reaching a tree node; the walk's edges are added, and only the walk's first node joins the
attachable set. That last detail is the listing's (its intermediate walk nodes are never appended
to `current_nodes`), kept so that our mazes have the paper's distribution. Nodes get distinct random
labels in 1..99. Prompt: `start>end#` + shuffled adjacency list (`node:nbr,nbr`, neighbours shuffled,
joined by '-') + '='; answer: the unique path `a>b>c`.
"""

import re
from collections import deque

from .base import MAZE_ALPHABET, TASKS, Task, is_int

MAX_NODES = 99  # labels are the numbers 1..99, one token each in the maze tokenizer
_HEAD = re.compile(r"([1-9]\d*)>([1-9]\d*)#(.+)=")
_LABEL = re.compile(r"[1-9]\d*")


def build_tree(hops: int, nodes: int, rng) -> list[list[int]]:
    """Adjacency lists of a random tree on 0..nodes-1 containing the main path 0-1-...-hops."""
    if not (is_int(hops) and is_int(nodes) and 1 <= hops < nodes <= MAX_NODES):
        raise ValueError(
            f"cannot build a maze with hops={hops!r} and nodes={nodes!r}; expected 1 <= hops < nodes <= {MAX_NODES}"
        )
    adj = [[] for _ in range(nodes)]
    for i in range(hops):
        adj[i].append(i + 1)
        adj[i + 1].append(i)
    current, new = list(range(hops + 1)), list(range(hops + 1, nodes))
    randrange = rng.randrange
    while new:
        prev = node = new.pop()
        while True:
            # One uniform pick over current + new, as random.choice(current_nodes + new_nodes) in the
            # listing, without building the concatenation; untouched nodes are exchangeable, so removing
            # by swap-with-last instead of list.remove leaves the distribution unchanged.
            k = randrange(len(current) + len(new))
            reached = k < len(current)
            if reached:
                nxt = current[k]
            else:
                k -= len(current)
                nxt, new[k] = new[k], new[-1]
                new.pop()
            adj[prev].append(nxt)
            adj[nxt].append(prev)
            if reached:
                break
            prev = nxt
        current.append(node)
    return adj


def format_maze(adj: list[list[int]], path: list[int], rng) -> tuple[str, str]:
    labels = rng.sample(range(1, MAX_NODES + 1), len(adj))
    order = list(range(len(adj)))
    rng.shuffle(order)
    shuffle, entries = rng.shuffle, []
    for v in order:
        nbrs = [str(labels[u]) for u in adj[v]]
        shuffle(nbrs)
        entries.append(f"{labels[v]}:{','.join(nbrs)}")
    prompt = f"{labels[path[0]]}>{labels[path[-1]]}#{'-'.join(entries)}="
    return prompt, ">".join(str(labels[v]) for v in path)


def parse_maze(prompt: str) -> tuple[int, int, dict[int, set[int]]]:
    """(start, end, adjacency) of a maze prompt; ValueError if it is not one."""
    match = _HEAD.fullmatch(prompt) if isinstance(prompt, str) else None
    if match is None:
        raise ValueError(f"malformed maze prompt {prompt!r}; expected 'start>end#node:nbr,nbr-...='")
    adj = {}
    for entry in match[3].split("-"):
        node, _, nbrs = entry.partition(":")
        nbrs = nbrs.split(",")
        if not _LABEL.fullmatch(node) or not all(_LABEL.fullmatch(u) for u in nbrs) or int(node) in adj:
            raise ValueError(f"malformed maze prompt {prompt!r}: bad or repeated adjacency entry {entry!r}")
        adj[int(node)] = {int(u) for u in nbrs}
    start, end = int(match[1]), int(match[2])
    missing = [v for v in (start, end, *(u for nbrs in adj.values() for u in nbrs)) if v not in adj]
    if missing:
        raise ValueError(f"malformed maze prompt {prompt!r}: node {missing[0]} has no adjacency entry")
    return start, end, adj


def shortest_path(adj: dict[int, set[int]], start: int, end: int) -> list[int]:
    parent, queue = {start: None}, deque([start])
    while queue:
        v = queue.popleft()
        if v == end:
            path = [v]
            while parent[path[-1]] is not None:
                path.append(parent[path[-1]])
            return path[::-1]
        for u in adj[v]:
            if u not in parent:
                parent[u] = v
                queue.append(u)
    raise ValueError(f"maze has no path from {start} to {end}")


class _Maze(Task):
    tokenizer_name = "maze"
    alphabet = MAZE_ALPHABET

    def _draw(self, shape, rng):
        hops, nodes = shape
        return format_maze(build_tree(hops, nodes, rng), list(range(hops + 1)), rng)

    def solve(self, prompt):
        start, end, adj = parse_maze(prompt)
        return ">".join(map(str, shortest_path(adj, start, end)))

    def max_answer_tokens(self, prompt):
        # A tree path visits each node at most once: N labels and N-1 '>' tokens.
        return 2 * len(parse_maze(prompt)[2]) - 1

    def validity(self, prompt: str, answer: str) -> dict[str, bool]:
        """move_valid: starts at the start and every hop is an edge; end_valid: ends at the target."""
        self.check_alphabet(answer)
        start, end, adj = parse_maze(prompt)
        nodes = [int(t) if _LABEL.fullmatch(t) else None for t in answer.split(">")]
        move_valid = (
            None not in nodes
            and nodes[0] == start
            and all(v in adj for v in nodes)
            and all(b in adj[a] for a, b in zip(nodes, nodes[1:]))
        )
        return {"move_valid": move_valid, "end_valid": nodes[-1] == end}


@TASKS.register(
    help="shortest path in a tree maze; difficulty = hops (section 6.3)",
    options={"maze_num_nodes": "num_nodes"},
)
class MazeHops(_Maze):
    """Difficulty = hops from start to end, in mazes of `num_nodes` nodes."""

    name = "maze_hops"

    def __init__(self, num_nodes: int = 30):
        if not is_int(num_nodes) or not 2 <= num_nodes <= MAX_NODES:
            raise ValueError(
                f"maze_hops: num_nodes={num_nodes!r} is invalid; expected an int in 2..{MAX_NODES}"
            )
        self.num_nodes = int(num_nodes)
        self.max_difficulty = self.num_nodes - 1

    def __repr__(self):
        return f"MazeHops(num_nodes={self.num_nodes})"

    def parse_difficulty(self, value):
        try:
            return super().parse_difficulty(value)
        except ValueError as err:
            raise ValueError(f"{err} (hops must be < num_nodes={self.num_nodes})") from None

    def _shape(self, d):
        return d, self.num_nodes

    def difficulty_of(self, prompt):
        return len(self.solve(prompt).split(">")) - 1


@TASKS.register(
    help="shortest path in a tree maze; difficulty = nodes (section 6.3)",
    options={"maze_num_hops": "num_hops"},
)
class MazeNodes(_Maze):
    """Difficulty = number of nodes, in mazes whose start and end are `num_hops` hops apart."""

    name = "maze_nodes"
    max_difficulty = MAX_NODES

    def __init__(self, num_hops: int = 9):
        if not is_int(num_hops) or not 1 <= num_hops < MAX_NODES:
            raise ValueError(
                f"maze_nodes: num_hops={num_hops!r} is invalid; expected an int in 1..{MAX_NODES - 1}"
            )
        self.num_hops = int(num_hops)
        self.min_difficulty = self.num_hops + 1

    def __repr__(self):
        return f"MazeNodes(num_hops={self.num_hops})"

    def parse_difficulty(self, value):
        try:
            return super().parse_difficulty(value)
        except ValueError as err:
            raise ValueError(
                f"{err} (nodes must be > num_hops={self.num_hops} and <= {MAX_NODES} labels)"
            ) from None

    def _shape(self, d):
        return self.num_hops, d

    def difficulty_of(self, prompt):
        return len(parse_maze(prompt)[2])
