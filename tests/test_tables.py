"""The one table renderer."""

import pytest

from si_hf import tables


def test_markdown_renders_cells_and_refuses_ragged_rows():
    text = tables.markdown(["a", "b", "c"], [[1, 0.5, None], ["x", 2.0, "y"]])
    assert text.splitlines() == [
        "| a | b | c |",
        "|---|---|---|",
        "| 1 | 0.5000 | n/a |",
        "| x | 2.0000 | y |",
    ]
    with pytest.raises(ValueError, match=r"has 2 cells; the head has 3"):
        tables.markdown(["a", "b", "c"], [[1, 2]])


def test_accuracy_grid_marks_supervised_columns_and_missing_cells():
    grid = tables.accuracy_grid({"0": {"1": 1.0, "2": 0.25}, "1/1": {"2": 0.5}}, ["1", "2"], supervised={"1"})
    assert grid.splitlines() == [
        "| round | 1* | 2 |",
        "|---|---|---|",
        "| 0 | 100.0 | 25.0 |",
        "| 1/1 | - | 50.0 |",
    ]
    assert tables.pct(None) == "-" and tables.pct(0.9876) == "98.8"
