import random
from collections import Counter

import networkx as nx
import pytest

from si_hf.tasks import get_task
from si_hf.tasks.maze import build_tree, parse_maze
from si_hf.tasks.seeding import rng_for
from si_hf.tokenization import get_tokenizer

PAPER = "2>19#73:70,75-97:2,70-70:73,97,59-75:73,30,19-2:97-30:75-59:70-19:75="  # paper Table 1
DESIGN = "61>27#49:27,13,84-27:49-13:49-84:61,49-61:84="  # the example of the authors' format, completed


def listing_tree(total_nodes, num_hops, rng):
    """The paper's listing (appendix C.2.3) verbatim, with networkx and list.remove."""
    graph = nx.path_graph(num_hops + 1)
    current_nodes = list(graph.nodes())
    new_nodes = list(range(num_hops + 1, total_nodes))
    while new_nodes:
        new_node = new_nodes.pop()
        walk = [new_node]
        while walk[-1] not in current_nodes:
            random_node = rng.choice(current_nodes + new_nodes)
            walk.append(random_node)
            if random_node in new_nodes:
                new_nodes.remove(random_node)
        for i in range(len(walk) - 1):
            graph.add_edge(walk[i], walk[i + 1])
        current_nodes.append(new_node)
    return graph


def graph_of(prompt):
    start, end, adj = parse_maze(prompt)
    return start, end, nx.Graph([(v, u) for v, nbrs in adj.items() for u in nbrs])


def test_paper_and_design_examples():
    task = get_task("maze_hops")
    assert task.solve(PAPER) == "2>97>70>73>75>19" and task.verify(PAPER, "2>97>70>73>75>19")
    assert task.solve(DESIGN) == "61>84>49>27" and task.difficulty_of(DESIGN) == 3
    assert get_task("maze_nodes").difficulty_of(PAPER) == 8
    assert task.max_answer_tokens(PAPER) == 2 * 8 - 1


@pytest.mark.parametrize(
    "answer, move, end",
    [
        ("61>84>49>27", True, True),
        ("61>49>27", False, True),  # 61-49 is not an edge
        ("61>84>49", True, False),
        ("61>84>49>13", True, False),
        ("84>49>27", False, True),  # does not start at the start
        ("61>84>50>27", False, True),  # 50 is not a node
        ("61>>84", False, False),
        ("61>084>49>27", False, True),
        ("", False, False),
    ],
)
def test_validity(answer, move, end):
    task = get_task("maze_hops")
    assert task.validity(DESIGN, answer) == {"move_valid": move, "end_valid": end}
    assert task.verify(DESIGN, answer) == (answer == "61>84>49>27")


def test_validity_rejects_foreign_characters():
    with pytest.raises(ValueError, match="'a'"):
        get_task("maze_hops").validity(DESIGN, "61>a")


@pytest.mark.parametrize("hops, nodes", [(1, 2), (1, 30), (9, 30), (29, 30), (9, 10), (9, 99), (50, 99)])
def test_build_tree_is_a_tree_around_the_main_path(hops, nodes):
    rng = random.Random(hops * 100 + nodes)
    for _ in range(20):
        adj = build_tree(hops, nodes, rng)
        graph = nx.Graph([(v, u) for v, nbrs in enumerate(adj) for u in nbrs])
        assert nx.is_tree(graph) and graph.number_of_nodes() == nodes
        assert nx.shortest_path(graph, 0, hops) == list(range(hops + 1))


def test_tree_shape_matches_the_paper_listing():
    """Same distribution as the listing: compare leaf and degree statistics over many trees."""
    rng_a, rng_b = random.Random(0), random.Random(1)
    ours = [build_tree(9, 30, rng_a) for _ in range(1500)]
    theirs = [listing_tree(30, 9, rng_b) for _ in range(1500)]
    leaves_ours = sum(sum(len(nbrs) == 1 for nbrs in adj) for adj in ours) / len(ours)
    leaves_theirs = sum(sum(d == 1 for _, d in g.degree()) for g in theirs) / len(theirs)
    max_deg_ours = sum(max(map(len, adj)) for adj in ours) / len(ours)
    max_deg_theirs = sum(max(d for _, d in g.degree()) for g in theirs) / len(theirs)
    assert abs(leaves_ours - leaves_theirs) < 0.25, (leaves_ours, leaves_theirs)
    assert abs(max_deg_ours - max_deg_theirs) < 0.15, (max_deg_ours, max_deg_theirs)


@pytest.mark.parametrize(
    "name, d", [("maze_hops", 1), ("maze_hops", 13), ("maze_nodes", 10), ("maze_nodes", 60)]
)
def test_generated_mazes(name, d):
    task = get_task(name)
    tokenizer = get_tokenizer("maze")
    data = task.generate(150, seed=0, purpose="round", difficulty=d)
    first_is_start = 0
    for prompt, answer in zip(data["prompt"], data["answer"]):
        start, end, graph = graph_of(prompt)
        labels = list(graph.nodes())
        assert nx.is_tree(graph) and len(labels) == (30 if name == "maze_hops" else d)
        assert all(1 <= v <= 99 for v in labels)
        path = nx.shortest_path(graph, start, end)
        assert answer == ">".join(map(str, path)) and len(path) - 1 == (d if name == "maze_hops" else 9)
        n_tokens = len(tokenizer(answer, add_special_tokens=False)["input_ids"])
        assert n_tokens == 2 * len(path) - 1 <= task.max_answer_tokens(prompt) == 2 * len(labels) - 1
        first_is_start += prompt.split("#")[1].startswith(f"{start}:")
    assert first_is_start < 40  # the adjacency list is shuffled (expected 150 / nodes)


def test_neighbours_are_shuffled():
    task = get_task("maze_nodes")
    orders = Counter()
    for prompt in task.generate(300, seed=0, purpose="round", difficulty=12)["prompt"]:
        for entry in prompt[:-1].split("#")[1].split("-"):
            nbrs = [int(u) for u in entry.split(":")[1].split(",")]
            if len(nbrs) > 1:
                orders[nbrs == sorted(nbrs)] += 1
    assert orders[True] > 0 and orders[False] > 0


def test_size_errors_name_the_values():
    with pytest.raises(ValueError, match="30"):
        get_task("maze_hops").sample(30, rng_for(0, "test"))
    with pytest.raises(ValueError, match="100"):
        get_task("maze_hops", num_nodes=100)
    with pytest.raises(ValueError, match="9"):
        get_task("maze_nodes").sample(9, rng_for(0, "test"))
    with pytest.raises(ValueError, match="100"):
        get_task("maze_nodes").sample(100, rng_for(0, "test"))
    with pytest.raises(ValueError, match="hops=5 and nodes=5"):
        build_tree(5, 5, random.Random(0))
    assert get_task("maze_nodes").d0_difficulties(30) == list(range(10, 31))
    assert get_task("maze_hops", num_nodes=12).d0_difficulties(9) == list(range(1, 10))


def test_malformed_prompts_are_rejected():
    for prompt in (
        "2>19#2:19=",
        "2>19#2:19-19:2",
        "2>19#2:19-19:2-2:19=",
        "2>19#2:19,7-19:2=",
        "2>19=",
        "0>1#0:1-1:0=",
    ):
        with pytest.raises(ValueError, match="maze prompt"):
            parse_maze(prompt)
