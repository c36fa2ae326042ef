from collections import Counter

import pytest

from si_hf.tasks import get_task
from si_hf.tasks.seeding import rng_for


def test_design_table_examples():
    """The formats of the authors' code: 12345+678 is `54321+876=` -> `320310` reversed, `12345+678=` -> `13023` forward."""
    rev, fwd = get_task("reverse_addition"), get_task("forward_addition")
    assert rev.solve("54321+876=") == "320310" and rev.verify("54321+876=", "320310")
    assert fwd.solve("12345+678=") == "13023" and fwd.verify("12345+678=", "13023")
    assert not rev.verify("54321+876=", "32031")  # the padding digit is part of the answer
    assert rev.difficulty_of("54321+876=") == 5 and rev.max_answer_tokens("54321+876=") == 6


@pytest.mark.parametrize("d", [1, 3, 12])
def test_reverse_addition_format(d):
    task = get_task("reverse_addition")
    data = task.generate(200, seed=0, purpose="round", difficulty=d)
    for prompt, answer in zip(data["prompt"], data["answer"]):
        a, b = prompt[:-1].split("+")
        assert len(a) == len(b) == d and a[-1] != "0" and b[-1] != "0"  # no leading zero, unpadded
        total = str(int(a[::-1]) + int(b[::-1]))
        assert answer == total[::-1] + "0" * (d + 1 - len(total))


@pytest.mark.parametrize("d", [1, 3, 12])
def test_forward_addition_format(d):
    task = get_task("forward_addition")
    data = task.generate(200, seed=0, purpose="round", difficulty=d)
    for prompt, answer in zip(data["prompt"], data["answer"]):
        a, b = prompt[:-1].split("+")
        assert len(a) == len(b) == d and a[0] != "0" and b[0] != "0"
        assert answer == str(int(a) + int(b))


def test_d0_operand_lengths_are_independent_and_uniform():
    task = get_task("reverse_addition")
    data = task.generate(4000, seed=0, purpose="d0", d0=4)
    pairs = Counter(tuple(len(x) for x in p[:-1].split("+")) for p in data["prompt"])
    assert set(pairs) == {(i, j) for i in range(1, 5) for j in range(1, 5)}
    assert all(150 < c < 350 for c in pairs.values()), pairs  # 250 expected each
    assert all(
        key == str(max(map(len, p[:-1].split("+")))) for p, key in zip(data["prompt"], data["difficulty"])
    )


def test_malformed_prompts_are_rejected():
    task = get_task("reverse_addition")
    for prompt in ("12+34", "12+=", "1+2+3=", "12*34=", "", "ab+cd="):
        with pytest.raises(ValueError, match="prompt"):
            task.solve(prompt)


def test_one_digit_levels_have_both_splits():
    task = get_task("forward_addition")
    rng = rng_for(0, "eval")
    assert {len(task.sample(1, rng, split="eval")[0]) for _ in range(20)} == {4}
