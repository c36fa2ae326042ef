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


@pytest.mark.parametrize("name", ["reverse_addition", "forward_addition"])
def test_d0_operand_lengths_equal_draws_one_length_for_both(name):
    """Section 3: "two numbers of equal length"; every level of 1..d0 about equally often."""
    task = get_task(name, d0_operand_lengths="equal")
    data = task.generate(2000, seed=0, purpose="d0", d0=4)
    lengths = Counter(tuple(len(x) for x in p[:-1].split("+")) for p in data["prompt"])
    assert set(lengths) == {(i, i) for i in range(1, 5)}
    assert all(400 < c < 600 for c in lengths.values()), lengths  # 500 expected each
    assert data["difficulty"] == [str(len(p[:-1].split("+")[0])) for p in data["prompt"]]
    assert all(task.verify(p, a) for p, a in zip(data["prompt"], data["answer"]))
    # the rounds' and evaluation's prompts do not depend on the option
    same = get_task(name).generate(50, seed=0, purpose="round", difficulty=7)
    assert task.generate(50, seed=0, purpose="round", difficulty=7) == same


def test_d0_operand_lengths_independent_is_the_default_stream():
    """Naming the default leaves D_0 as it was: the same prompts, draw for draw."""
    default = get_task("forward_addition").generate(300, seed=3, purpose="d0", d0=8)
    named = get_task("forward_addition", d0_operand_lengths="independent")
    assert named.generate(300, seed=3, purpose="d0", d0=8) == default


def test_d0_operand_lengths_bad_value_is_named():
    with pytest.raises(ValueError, match=r"d0_operand_lengths='same'.*independent, equal"):
        get_task("reverse_addition", d0_operand_lengths="same")


def test_malformed_prompts_are_rejected():
    task = get_task("reverse_addition")
    for prompt in ("12+34", "12+=", "1+2+3=", "12*34=", "", "ab+cd="):
        with pytest.raises(ValueError, match="prompt"):
            task.solve(prompt)


def test_one_digit_levels_have_both_splits():
    task = get_task("forward_addition")
    rng = rng_for(0, "eval")
    assert {len(task.sample(1, rng, split="eval")[0]) for _ in range(20)} == {4}
