from collections import Counter

import pytest

from si_hf.tasks import get_task
from si_hf.tasks.multiplication import cot_multiplication


def test_design_table_example():
    assert cot_multiplication(1234, 567) == ("4321*765=", "83680+040470(876280)+0007160=8769960")


def test_paper_example_c22():
    """Paper C.2.2: prompt `9172*9431=`, label `17442+067801(132331)+0075180(1398490)+00091720=13976630`.

    The paper's prompt is already written in our (reversed) format: it is 2719 * 1349, the first
    operand a = 2719 (written `9172`) multiplied by each digit of the second, b = 1349 (written `9431`),
    least significant digit first: 9*2719 = 24471 -> `17442`, 40*2719 = 108760 -> `067801`, ...
    Our formatter reproduces the label exactly for (a, b) = (2719, 1349); the prompt is `9172*9431=`,
    not `2719*1349=` (that would be 9172 * 9431, a different product).
    """
    label = "17442+067801(132331)+0075180(1398490)+00091720=13976630"
    assert cot_multiplication(2719, 1349) == ("9172*9431=", label)
    task = get_task("multiplication")
    assert task.verify("9172*9431=", label) and task.difficulty_of("9172*9431=") == (4, 4)
    assert task.solve("2719*1349=") != label


def check_cot(prompt, answer):
    """Independent reading of the format: partial products, running sums, final product."""
    ra, rb = prompt[:-1].split("*")
    a, b, n, m = int(ra[::-1]), int(rb[::-1]), len(ra), len(rb)
    steps, final = answer.split("=")
    steps = steps.split("+")
    assert len(steps) == m and len(final) == n + m and int(final[::-1]) == a * b
    running = 0
    for i, step in enumerate(steps):
        partial, _, total = step.partition("(")
        running += int(rb[i]) * a * 10**i
        assert len(partial) == i + n + 1 and int(partial[::-1]) == int(rb[i]) * a * 10**i
        if 0 < i < m - 1:
            assert total.endswith(")") and len(total) == i + n + 2 and int(total[-2::-1]) == running
        else:
            assert total == ""


@pytest.mark.parametrize("d", [(1, 1), (1, 3), (3, 1), (2, 2), (5, 3), (3, 5), (7, 7)])
def test_format_and_exact_length_bound(d):
    task = get_task("multiplication")
    data = task.generate(100, seed=0, purpose="round", difficulty=d)
    assert data["difficulty"] == [f"{d[0]}x{d[1]}"] * 100
    for prompt, answer in zip(data["prompt"], data["answer"]):
        ra, rb = prompt[:-1].split("*")
        assert (len(ra), len(rb)) == d and ra[-1] != "0" and rb[-1] != "0"
        check_cot(prompt, answer)
        assert task.max_answer_tokens(prompt) == len(answer)  # the format is fixed-width


def test_difficulty_parsing_and_d0():
    task = get_task("multiplication")
    assert (
        task.parse_difficulty("5x6")
        == task.parse_difficulty([5, 6])
        == task.parse_difficulty((5, 6))
        == (5, 6)
    )
    assert task.difficulty_key((5, 6)) == "5x6"
    assert task.d0_difficulties(2) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert task.d0_difficulties("2x3") == [(i, j) for i in (1, 2) for j in (1, 2, 3)]
    for bad in (0, 2.5, "x", None, True):
        with pytest.raises(ValueError, match="d0"):
            task.d0_difficulties(bad)


def test_d0_covers_every_pair_uniformly():
    task = get_task("multiplication")
    data = task.generate(2700, seed=0, purpose="d0", d0=3)
    counts = Counter(data["difficulty"])
    assert set(counts) == {f"{i}x{j}" for i in (1, 2, 3) for j in (1, 2, 3)}
    assert all(220 < c < 380 for c in counts.values()), counts


def test_malformed_prompts_are_rejected():
    task = get_task("multiplication")
    for prompt in ("12*34", "12+34=", "10*3=", "0*5=", "*3="):
        with pytest.raises(ValueError, match="prompt"):
            task.solve(prompt)
    with pytest.raises(ValueError, match="-3"):
        cot_multiplication(-3, 4)
