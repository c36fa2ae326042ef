"""`si-hf summary`: runs side by side, their spread and how far past D_0 each got."""

import json

import pytest

from si_hf.cli import main as cli


def make_run(root, task, d0, accuracy, data_accuracy=None):
    """A run directory as the round loop leaves it (metrics.json + each round's marker), from
    {round: {difficulty: exact match}}; rounds >= 1 get the data accuracy given for them."""
    entries = []
    for r, acc in accuracy.items():
        entry = {"round": r, "member": 0, "accuracy": acc}
        if r and data_accuracy:
            entry["data_accuracy"] = data_accuracy[r]
        entries.append(entry)
        marker = root / "rounds" / f"round-{r:03d}" / "member-0" / "si_hf_round.json"
        marker.parent.mkdir(parents=True)
        (marker.parent / "metrics.json").write_text(json.dumps(entry))
        info = {"task": task, "config": {"task": {"task": task, "d0": d0}}, "levels": [d0] if r == 0 else []}
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
