"""scripts/maze_errors.py: the breakdown of a maze model's answers by the lookup each move needs."""

import importlib.util
import random
from pathlib import Path

import pytest
import torch

from si_hf.tasks import get_task
from si_hf.tasks.maze import parse_maze
from si_hf.testing.models import lookup_model
from si_hf.tokenization import get_tokenizer

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def maze_errors():
    spec = importlib.util.spec_from_file_location("maze_errors", ROOT / "scripts" / "maze_errors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def two_hop_mazes(n, seed=0):
    task, rng = get_task("maze_hops", num_nodes=8), random.Random(seed)
    return [task.sample(2, rng) for _ in range(n)]


def test_counts_the_right_answer_a_jump_and_a_wrong_neighbour(maze_errors):
    mazes = two_hop_mazes(40)
    # a 2-hop maze whose start has another neighbour besides the path's next node
    prompt, answer = next((p, a) for p, a in mazes if len(parse_maze(p)[2][int(a.split(">")[0])]) > 1)
    start, goal, adj = parse_maze(prompt)
    middle = int(answer.split(">")[1])
    other = min(adj[start] - {middle})
    jump, detour = f"{start}>{goal}", f"{start}>{other}>{goal}"

    counts = maze_errors.breakdown([prompt] * 3, [answer] * 3, [answer, jump, detour])
    assert counts["mazes"] == 3 and counts["correct"] == 1
    assert counts["right_length"] == 2  # the answer and the detour have three nodes
    assert counts["first_move_neighbour"] == 2  # the answer's and the detour's second node
    assert counts["first_move_right"] == 1
    assert counts["jump_to_goal"] == 1  # a 2-hop goal is never next to the start
    assert counts["forced_first_move"] == 0 and counts["forced_first_move_right"] == 0


def test_forced_first_moves_are_counted_from_the_start_s_degree(maze_errors):
    mazes = two_hop_mazes(60, seed=1)
    forced = [(p, a) for p, a in mazes if len(parse_maze(p)[2][int(a.split(">")[0])]) == 1]
    assert forced, "no 2-hop maze with a leaf start in 60: the sampler changed"
    prompts, answers = zip(*mazes)
    counts = maze_errors.breakdown(list(prompts), list(answers), list(answers))
    assert counts["forced_first_move"] == counts["forced_first_move_right"] == len(forced)
    assert counts["correct"] == counts["first_move_right"] == len(mazes)


def test_a_garbled_answer_counts_as_no_move_and_lengths_must_match(maze_errors):
    ((prompt, answer),) = two_hop_mazes(1)
    counts = maze_errors.breakdown([prompt], [answer], [""])
    assert counts["first_move_neighbour"] == counts["first_move_right"] == counts["jump_to_goal"] == 0
    with pytest.raises(ValueError, match="1 prompts, 1 answers and 2 predictions"):
        maze_errors.breakdown([prompt], [answer], [answer, answer])


def test_run_labels_fresh_mazes_with_a_real_model(maze_errors):
    tokenizer = get_tokenizer("maze")
    model = lookup_model(tokenizer, {"=": "5", "5": "<eos>"})  # answers "5" to every maze
    table = maze_errors.run(model, tokenizer, num_nodes=8, hops=[1, 2], n=6, seed=3)
    assert list(table) == [1, 2]
    for counts in table.values():
        assert counts["mazes"] == 6 and counts["correct"] == 0 and counts["first_move_neighbour"] == 0
    assert maze_errors.run(model, tokenizer, num_nodes=8, hops=[1, 2], n=6, seed=3) == table
