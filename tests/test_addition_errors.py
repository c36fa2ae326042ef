"""scripts/addition_errors.py: how many digits of an addition model's answers are right from each end."""

import importlib.util
import json
import random
from pathlib import Path

import pytest
import torch

from si_hf.tasks import get_task
from si_hf.testing.models import lookup_model
from si_hf.tokenization import get_tokenizer

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def addition_errors():
    spec = importlib.util.spec_from_file_location("addition_errors", ROOT / "scripts" / "addition_errors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_counts_digits_right_from_the_front_and_the_back(addition_errors):
    answers = ["13023", "13023", "13023", "999"]
    predictions = ["13023", "13923", "1302", "111"]
    counts = addition_errors.breakdown(answers, predictions)
    assert counts["problems"] == 4 and counts["correct"] == 1 and counts["right_length"] == 3
    assert counts["front"] == (5 + 2 + 4 + 0) / 4  # the run stops at the first wrong digit
    assert counts["back"] == (5 + 2 + 0 + 0) / 4  # "1302" against "13023": its last digit is wrong
    with pytest.raises(ValueError, match="2 answers and 1 predictions"):
        addition_errors.breakdown(["1", "2"], ["1"])
    with pytest.raises(ValueError, match="0 answers"):
        addition_errors.breakdown([], [])


def test_run_labels_fresh_problems_with_a_real_model(addition_errors, capsys, tmp_path):
    tokenizer = get_tokenizer("char")
    model = lookup_model(tokenizer, {"=": "1", "1": "<eos>"})  # answers "1" to every sum
    table = addition_errors.run(model, tokenizer, "forward_addition", [1, 3], n=20, seed=3)
    assert list(table) == [1, 3]
    rng, task = random.Random(3), get_task("forward_addition")  # the same problems, drawn again
    for d in (1, 3):
        sums = [task.sample(d, rng, split="eval")[1] for _ in range(20)]
        assert table[d] == {
            "problems": 20,
            "correct": sums.count("1"),
            "right_length": sum(len(s) == 1 for s in sums),
            "front": sum(s.startswith("1") for s in sums) / 20,
            "back": sum(s.endswith("1") for s in sums) / 20,
        }
    assert table[3]["front"] > 0 and table[1]["right_length"] > 0  # the draws exercise both counts
    assert addition_errors.run(model, tokenizer, "forward_addition", [1, 3], n=20, seed=3) == table

    model.save_pretrained(tmp_path / "model")
    assert (
        addition_errors.main(
            [str(tmp_path / "model"), "--lengths", "1", "3", "--n", "20", "--seed", "3", "--json"]
        )
        == 0
    )
    out = capsys.readouterr().out  # DeepSpeed, when installed, logs a line to stdout before the table
    assert json.loads(out[out.index("{") :]) == {str(k): v for k, v in table.items()}
    with pytest.raises(SystemExit):
        addition_errors.main([str(tmp_path / "model"), "--n", "0"])
    assert "--n 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        addition_errors.main([str(tmp_path / "model"), "--lengths", "3", "0"])
    assert "--lengths [3, 0]" in capsys.readouterr().err
