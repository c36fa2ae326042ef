"""`si-hf summary`: runs side by side, their spread and how far past D_0 each got."""

import json

import numpy as np
import pytest
from PIL import Image

from si_hf.cli import main as cli


def make_run(root, task, d0, accuracy, data_accuracy=None, trained=None, seconds=None):
    """A run directory as the round loop leaves it (metrics.json + each round's marker), from
    {round: {difficulty: exact match}}; rounds >= 1 get the data accuracy given for them, and each
    round the trained top and the training seconds given."""
    entries = []
    for r, acc in accuracy.items():
        entry = {"round": r, "member": 0, "accuracy": acc}
        if r and data_accuracy:
            entry["data_accuracy"] = data_accuracy[r]
        if seconds:
            entry["train_seconds"] = seconds[r]
        entries.append(entry)
        marker = root / "rounds" / f"round-{r:03d}" / "member-0" / "si_hf_round.json"
        marker.parent.mkdir(parents=True)
        (marker.parent / "metrics.json").write_text(json.dumps(entry))
        info = {"task": task, "config": {"task": {"task": task, "d0": d0}}, "levels": [d0] if r == 0 else []}
        if trained:
            info["trained"] = [str(d) for d in range(1, trained[r] + 1)]
        marker.write_text(json.dumps({"info": info}))
    (root / "metrics.json").write_text(json.dumps(entries))
    return root


@pytest.fixture
def seeds(tmp_path):
    """Two seeds of copy, D_0 = 1..3: seed-1 solves 4 and 5 after round 2, seed-2 only 4."""
    a = {
        0: {"1": 1.0, "2": 1.0, "3": 1.0, "4": 0.5},
        2: {"1": 1.0, "2": 1.0, "3": 1.0, "4": 1.0, "5": 0.96, "6": 0.2},
    }
    b = {
        0: {"1": 1.0, "2": 1.0, "3": 0.9, "4": 0.1},
        2: {"1": 1.0, "2": 1.0, "3": 1.0, "4": 0.97, "5": 0.5, "6": 0.99},
    }
    return [
        make_run(tmp_path / "seed-1", "copy", "3", a, {2: 0.9}),
        make_run(tmp_path / "seed-2", "copy", "3", b, {2: 0.6}),
    ]


def test_summary_of_two_seeds(seeds, tmp_path, capsys):
    out_file = tmp_path / "summary.md"
    assert cli(["summary", *map(str, seeds), "--output", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert out == out_file.read_text()
    first, last = out.split("after the last round:")[0], out.split("after the last round:")[1]
    assert "| run | round | 1* | 2* | 3* | 4 |" in first
    assert "| seed-1 | 0 | 100.0 | 100.0 | 100.0 | 50.0 |" in first
    assert "| **mean** |  | 100.0 | 100.0 | 95.0 | 30.0 |" in first
    assert "| **min** |  | 100.0 | 100.0 | 90.0 | 10.0 |" in first
    assert "| seed-2 | 2 | 100.0 | 100.0 | 100.0 | 97.0 | 50.0 | 99.0 |" in last
    assert "| **max** |  | 100.0 | 100.0 | 100.0 | 100.0 | 96.0 | 99.0 |" in last
    # the stretch stops at the first level below the threshold: seed-2's 6 is solved but not reached
    assert "| seed-1 | 4, 5 | 2 (4, 5) | 4: 50.0, 5: - |" in out
    assert "| seed-2 | 4, 6 | 1 (4) | 4: 10.0 |" in out
    assert "| seed-1 | 90.0 |" in out and "| seed-2 | 60.0 |" in out


def test_threshold_moves_the_frontier(seeds, capsys):
    assert cli(["summary", *map(str, seeds), "--threshold", "0.97"]) == 0
    out = capsys.readouterr().out
    assert "| seed-1 | 4 | 1 (4) | 4: 50.0 |" in out
    assert "| seed-2 | 4, 6 | 1 (4) | 4: 10.0 |" in out


def test_multiplication_counts_solved_cells_outside_the_square(tmp_path, capsys):
    acc = {0: {"2x2": 1.0, "3x1": 0.2}, 1: {"2x2": 1.0, "3x1": 0.95, "1x3": 0.99, "3x2": 0.4}}
    run = make_run(tmp_path / "mult", "multiplication", "2x2", acc)
    assert cli(["summary", str(run)]) == 0
    out = capsys.readouterr().out
    assert "| mult | 1x3, 3x1 | 2 (1x3, 3x1) | 1x3: -, 3x1: 20.0 |" in out  # easiest first
    assert "**mean**" not in out  # no spread over a single run


@pytest.mark.parametrize(
    "args, match", [(["--threshold", "0"], "not in (0, 1]"), ([], "has no metrics.json")]
)
def test_bad_arguments_exit_2(tmp_path, capsys, args, match):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        cli(["summary", str(tmp_path / "empty"), *args])
    assert exit_info.value.code == 2 and match in capsys.readouterr().err


def _curve(top: int, reach: int, evaluated: int) -> dict:
    return {str(d): 1.0 if d <= reach else 0.5 for d in range(1, evaluated + 1)}


def test_figures_9_and_10_of_two_schedules_side_by_side(tmp_path, capsys):
    """Standard: trained 3, 4, 5 with a margin of 1 each round; accelerated: trained 3, 5, 9 with
    margins 2, 4, 1 (round 2's evaluation ends at 10: its margin is marked as maybe cut off)."""
    standard = make_run(
        tmp_path / "standard", "copy", "3",
        {0: _curve(3, 4, 6), 1: _curve(4, 5, 7), 2: _curve(5, 6, 8)},
        trained={0: 3, 1: 4, 2: 5}, seconds={0: 60.0, 1: 30.0, 2: 30.0},
    )  # fmt: skip
    accelerated = make_run(
        tmp_path / "accelerated", "copy", "3",
        {0: _curve(3, 5, 8), 1: _curve(5, 9, 12), 2: _curve(9, 10, 10)},
        trained={0: 3, 1: 5, 2: 9}, seconds={0: 60.0, 1: 45.0, 2: 90.0},
    )  # fmt: skip
    figures = tmp_path / "figures"
    assert cli(["summary", str(standard), str(accelerated), "--figures", str(figures)]) == 0
    out = capsys.readouterr().out
    assert "| run | round 0 | round 1 | round 2 |" in out
    assert "| standard | 1 (3) | 1 (4) | 1 (5) |" in out
    assert "| accelerated | 2 (3) | 4 (5) | 1+ (9) |" in out
    assert "| longest length at >= 99% | standard | accelerated |" in out
    assert "| 4 | round 0 (1.0 min) | round 0 (1.0 min) |" in out
    assert "| 6 | round 2 (2.0 min) | round 1 (1.8 min) |" in out
    assert "| 10 | - | round 2 (3.2 min) |" in out
    for name in ("margin", "reach"):
        with Image.open(figures / f"{name}.png") as image:
            assert image.format == "PNG" and image.width >= 300
            assert np.asarray(image.convert("RGB")).std() > 10  # not blank
        assert f"{figures / name}.png" in out


def test_summary_figures_must_be_a_folder(seeds, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        cli(["summary", *map(str, seeds), "--figures", str(tmp_path / "file")])
    assert exit_info.value.code == 2 and "--figures" in capsys.readouterr().err
