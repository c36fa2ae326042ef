"""Error anatomy (figures 13, 23-24): the alignment, the counts, and `si-hf analyze errors` on a real model."""

import json
import re

import pytest

from si_hf.anatomy import align, anatomy
from si_hf.cli import main as cli
from si_hf.testing.models import lookup_model
from si_hf.tokenization import get_tokenizer


@pytest.mark.parametrize(
    "truth, output, kinds",
    [
        ("12345", "12345", ["match"] * 5),
        ("12345", "1245", ["match", "match", "dropped", "match", "match"]),  # a dropped digit
        ("12345", "12355", ["match", "match", "match", "wrong", "match"]),  # a wrong digit, not drop + extra
        ("12345", "123", ["match", "match", "match", "dropped", "dropped"]),  # drops at the end
        ("123", "1234", ["match", "match", "match", "extra"]),
        ("", "7", ["extra"]),
    ],
)
def test_align_finds_the_minimum_edits(truth, output, kinds):
    ops = align(truth, output)
    assert [k for k, _, _ in ops] == kinds
    # the alignment covers both strings in order
    assert [i for _, i, _ in ops if i is not None] == list(range(len(truth)))
    assert [j for _, _, j in ops if j is not None] == list(range(len(output)))


def test_anatomy_counts_drops_wrong_digits_first_errors_and_off_by_one():
    truths = ["12345", "12345", "12345", "12345"]
    outputs = ["12345", "1245", "12365", "123"]  # right; one drop at 2; 4->6 (off by two); two drops at 3, 4
    counts = anatomy(truths, outputs, [True, True, True, True])
    assert counts["problems"] == 4 and counts["wrong_answers"] == 3
    assert counts["dropped"] == pytest.approx(3 / 3) and counts["wrong_digits"] == pytest.approx(
        1 / 3, abs=1e-3
    )
    assert counts["with_drop"] == pytest.approx(2 / 3, abs=1e-3) and counts["extra"] == 0.0
    assert counts["first_error"] == pytest.approx((2 + 3 + 3) / 3, abs=0.01)
    assert counts["off_by_one"] == 0.0
    assert counts["positions"] == {"dropped": {2: 1, 3: 1, 4: 1}, "wrong": {3: 1}}
    assert anatomy(["19"], ["18"])["off_by_one"] == 1.0
    # a right text that never ended is a wrong answer with no digit error
    unfinished = anatomy(["12"], ["12"], [False])
    assert unfinished["wrong_answers"] == 1 and unfinished["first_error"] is None
    with pytest.raises(ValueError, match="expected one of each"):
        anatomy(["1"], [])


def test_analyze_errors_on_a_real_model(tmp_path, capsys):
    char = get_tokenizer("char")
    model = lookup_model(char, {"=": "1", "1": "<eos>"})  # answers "1" to every sum
    model.save_pretrained(tmp_path / "model")
    char.save_pretrained(tmp_path / "model")
    out = tmp_path / "errors"
    assert cli(["analyze", "errors", str(tmp_path / "model"), "--lengths", "1", "3", "-n", "20",
                "--output_dir", str(out)]) == 0  # fmt: skip
    table = json.loads((out / "errors.json").read_text())
    assert list(table) == ["1", "3"] and table["3"]["problems"] == 20
    # 3-digit sums have 3 or 4 digits; "1" keeps at most one of them right: the rest are drops
    assert table["3"]["wrong_answers"] == 20 and table["3"]["dropped"] >= 2
    assert (out / "errors_kinds.png").is_file() and (out / "errors_positions.png").is_file()
    assert "| length |" in capsys.readouterr().out and "errors_kinds.png" in (out / "errors.md").read_text()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["analyze"], "expected one of \\['errors', 'carries'\\]"),
        (["analyze", "mistakes"], "got 'mistakes'"),
    ],
)
def test_analyze_refuses_unknown_analyses(argv, match, capsys):
    assert cli(argv) == 2
    assert re.search(match, capsys.readouterr().err)


def test_analyze_errors_refuses_a_non_arithmetic_task_and_a_missing_model(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli(["analyze", "errors", str(tmp_path), "--task", "copy"])
    assert "expected an arithmetic task" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["analyze", "errors", str(tmp_path)])
    assert "holds no model" in capsys.readouterr().err
