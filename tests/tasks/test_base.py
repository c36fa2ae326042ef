"""Properties every task shares: registry, difficulty validation, oracle, length bound, generate()."""

import re

import pytest

from si_hf.tasks import TASKS, get_task
from si_hf.tasks.seeding import rng_for, split_of
from si_hf.tokenization import CHAR_SYMBOLS, MAZE_MAX_NODE, MAZE_SYMBOLS, get_tokenizer

LEVELS = {
    "reverse_addition": [1, 2, 7, 20],
    "forward_addition": [1, 2, 7, 20],
    "copy": [2, 5, 20],
    "reverse_string": [2, 5, 20],
    "multiplication": [(1, 1), (1, 4), (4, 1), (3, 5), (6, 6)],
    "maze_hops": [1, 5, 9, 20, 29],
    "maze_nodes": [10, 20, 45, 99],
}
D0 = {"multiplication": 3, "maze_nodes": 15}
TOKENIZERS = {name: get_tokenizer(name) for name in ("char", "maze")}


def n_tokens(task, text):
    return len(TOKENIZERS[task.tokenizer_name](text, add_special_tokens=False)["input_ids"])


def test_registry_covers_the_contract():
    assert set(TASKS) == {n for n in LEVELS}
    for name in TASKS:
        task = get_task(name)
        assert task.name == name and task.tokenizer_name in ("char", "maze")


def test_unknown_task_lists_names():
    with pytest.raises(ValueError, match="addition") as err:
        get_task("division")
    assert all(name in str(err.value) for name in TASKS) and "division" in str(err.value)
    with pytest.raises(ValueError, match="num_nodes"):
        get_task("copy", num_nodes=3)


def test_alphabets_match_the_tokenizers():
    assert get_task("copy").alphabet == set(CHAR_SYMBOLS)
    maze_chars = set("".join(str(i) for i in range(1, MAZE_MAX_NODE + 1)) + MAZE_SYMBOLS)
    assert get_task("maze_hops").alphabet == maze_chars


@pytest.mark.parametrize("name", LEVELS)
def test_samples_verify_and_length_bound_holds(name):
    task = get_task(name)
    rng = rng_for(0, "test", name)
    for d in LEVELS[name]:
        for _ in range(40):
            prompt, answer = task.sample(d, rng)
            assert split_of(prompt) == "train"
            assert task.verify(prompt, answer) and task.solve(prompt) == answer
            assert task.difficulty_of(prompt) == task.parse_difficulty(d)
            bound, exact = task.max_answer_tokens(prompt), n_tokens(task, answer)
            assert exact <= bound, (prompt, answer)
            if task.tokenizer_name == "char":
                assert bound <= exact + 1, (prompt, answer)
            else:
                assert bound == 2 * task.difficulty_of(prompt) - 1 if name == "maze_nodes" else bound <= 59
            wrong = answer[:-1] + ("1" if answer[-1] != "1" else "2")
            assert not task.verify(prompt, wrong)
            assert not task.verify(prompt, answer + answer[-1])


@pytest.mark.parametrize("name", LEVELS)
def test_d0_samples_are_in_the_d0_levels(name):
    task = get_task(name)
    d0 = D0.get(name, 4)
    levels = task.d0_difficulties(d0)
    data = task.generate(300, seed=0, purpose="d0", d0=d0)
    assert set(data["difficulty"]) == {task.difficulty_key(d) for d in levels}
    for prompt, answer, key in zip(data["prompt"], data["answer"], data["difficulty"]):
        assert task.difficulty_key(task.difficulty_of(prompt)) == key
        assert task.verify(prompt, answer)
    prompt, answer, d = task.sample_d0(d0, rng_for(0, "d0"))
    assert d in levels and task.difficulty_of(prompt) == d and task.verify(prompt, answer)


@pytest.mark.parametrize("name", LEVELS)
def test_bad_difficulties_are_rejected_by_name(name):
    task = get_task(name)
    bad = [0, -3, 2.5, True, None, "abc", 10**6, (3,) * 3]
    bad += [3, "3", (0, 2), (2, 0), (True, 2), (2.0, 2), "5x"] if name == "multiplication" else [(3, 3), [4]]
    for value in bad:
        with pytest.raises(ValueError, match="expected") as err:
            task.sample(value, rng_for(0, "test"))
        assert repr(value) in str(err.value)


@pytest.mark.parametrize("name", LEVELS)
def test_verify_rejects_characters_outside_the_alphabet(name):
    task = get_task(name)
    prompt, answer = task.sample(LEVELS[name][1], rng_for(0, "test"))
    for ch in ("A", " ", "\n", "é"):
        with pytest.raises(ValueError, match=re.escape(repr(ch))):
            task.verify(prompt, answer[:1] + ch + answer[1:])


def test_generate_checks_its_arguments():
    task = get_task("copy")
    for kwargs, match in [
        ({}, "exactly one"),
        ({"difficulty": 3, "d0": 3}, "exactly one"),
        ({"difficulty": 3, "split": "test"}, "'test'"),
        ({"difficulty": 0}, "0"),
    ]:
        with pytest.raises(ValueError, match=match):
            task.generate(5, seed=0, purpose="eval", **kwargs)
    with pytest.raises(ValueError, match="-1"):
        task.generate(-1, seed=0, purpose="eval", difficulty=3)
    data = task.generate(100, seed=0, purpose="eval", difficulty="6", split="eval")
    assert list(data) == ["prompt", "answer", "difficulty"] and data["difficulty"] == ["6"] * 100
    assert all(split_of(p) == "eval" and len(p) == 7 for p in data["prompt"])
