from collections import Counter

import pytest

from si_hf.tasks import get_task


def test_design_table_examples():
    copy, rev = get_task("copy"), get_task("reverse_string")
    assert copy.solve("4821937=") == "4821937" and rev.solve("4821937=") == "7391284"
    assert rev.verify("4821937=", "7391284") and not rev.verify("4821937=", "4821937")
    assert copy.difficulty_of("4821937=") == 7 and copy.max_answer_tokens("4821937=") == 7


@pytest.mark.parametrize("name", ["copy", "reverse_string"])
def test_strings_are_uniform_digit_strings_with_leading_zeros(name):
    task = get_task(name)
    data = task.generate(2000, seed=0, purpose="round", difficulty=6)
    strings = [p[:-1] for p in data["prompt"]]
    assert all(len(s) == 6 and s.isdigit() for s in strings)
    first = Counter(s[0] for s in strings)
    assert set(first) == set("0123456789") and all(140 < c < 260 for c in first.values()), first
    expected = strings if name == "copy" else [s[::-1] for s in strings]
    assert data["answer"] == expected


def test_d0_lengths_are_uniform():
    data = get_task("copy").generate(3000, seed=0, purpose="d0", d0=10)
    lengths = Counter(len(p) - 1 for p in data["prompt"])
    assert set(lengths) == set(range(1, 11)) and all(220 < c < 380 for c in lengths.values()), lengths


def test_malformed_prompts_are_rejected():
    for prompt in ("123", "=", "12+3=", "12a="):
        with pytest.raises(ValueError, match="prompt"):
            get_task("copy").solve(prompt)
