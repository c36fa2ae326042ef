"""RunResults: a run's rounds read back from metrics.json and the markers, averaged over members."""

import json

import pytest

from si_hf.results import Record, RunResults, accuracy_markdown, supervised_keys


def rec(r, m, acc, levels=(), data_accuracy=None, **info):
    metrics = {"accuracy": acc, "round": r, "member": m}
    if data_accuracy is not None:
        metrics.update(data_accuracy=data_accuracy, n_generated=10, n_kept=8)
    return Record(r, m, metrics, {"task": "copy", "levels": list(levels), **info})


def two_members() -> RunResults:
    return RunResults(
        [
            rec(0, 0, {"1": 1.0, "2": 1.0, "3": 0.2}, levels=["1", "2"]),
            rec(0, 1, {"1": 1.0, "2": 0.8, "3": 0.4}, levels=["1", "2"]),
            rec(1, 0, {"1": 1.0, "2": 1.0, "3": 0.9, "4": 0.5}, levels=["3"], data_accuracy=0.9),
            rec(1, 1, {"1": 1.0, "2": 1.0, "3": 0.7, "4": 0.3}, levels=["3"], data_accuracy=0.7),
            rec(2, 0, {"3": 1.0, "4": 0.7, "5": 0.1}, levels=["4"], data_accuracy=0.6),
            rec(2, 1, {"3": 1.0, "4": 0.9, "5": 0.3}, levels=["4"], data_accuracy=0.8),
        ]
    )


def test_members_and_their_mean():
    run = two_members()
    assert run.rounds == [0, 1, 2] and run.members == [0, 1] and run.task == "copy"
    assert run.keys() == ["1", "2", "3", "4", "5"]
    assert run.accuracy(1)[0] == {"1": 1.0, "2": 0.8, "3": 0.4}
    assert run.accuracy()[0] == pytest.approx({"1": 1.0, "2": 0.9, "3": 0.3})
    assert run.accuracy()[2] == pytest.approx({"3": 1.0, "4": 0.8, "5": 0.2})
    assert run.data_accuracy(0) == {1: 0.9, 2: 0.6}
    assert run.data_accuracy() == pytest.approx({1: 0.8, 2: 0.7})
    assert run.supervised == ["1", "2"]  # round 0's levels, as no config was recorded
    assert run.label_rows(1)[0] == {
        "round": 1,
        "levels": ["3"],
        "n_generated": 10,
        "n_kept": 8,
        "kept_fraction": 0.8,
        "data_accuracy": 0.7,
    }


def test_figure_12_pairs_data_accuracy_with_the_level_after_it():
    """D_r labelled level n; the point's y is M_r's exact match at n + 1 (paper figure 12)."""
    run = two_members()
    assert run.next_level(1, 0) == ["4"] and run.next_level(2, 0) == ["5"]
    assert run.data_vs_next(0) == [(1, 0.9, 0.5), (2, 0.6, 0.1)]
    assert run.data_vs_next(1) == [(1, 0.7, 0.3), (2, 0.8, 0.3)]
    mean = run.data_vs_next()
    assert [p[0] for p in mean] == [1, 2]
    assert [p[1:] for p in mean] == [pytest.approx((0.8, 0.4)), pytest.approx((0.7, 0.2))]


def test_multiplication_next_level_is_what_the_next_round_labels():
    run = RunResults(
        [
            rec(0, 0, {"1x1": 1.0, "2x2": 1.0, "3x1": 0.4, "1x3": 0.2}, levels=["1x1", "2x2"]),
            rec(1, 0, {"3x1": 0.9, "1x3": 0.8, "3x2": 0.5, "2x3": 0.3}, levels=["3x1", "1x3"], data_accuracy=0.9),
            rec(2, 0, {"3x2": 1.0, "2x3": 1.0}, levels=["3x2", "2x3"], data_accuracy=0.95),
        ]
    )  # fmt: skip
    assert run.is_grid()
    assert run.next_level(1, 0) == ["3x2", "2x3"]
    assert run.next_level(2, 0) == []  # round 3 has not said yet
    assert run.data_vs_next(0) == [(1, 0.9, pytest.approx(0.4))]


@pytest.mark.parametrize(
    "task, extra, expected",
    [
        ("copy", {}, ["1", "2", "3", "4"]),
        ("multiplication", {}, ["1x1", "1x2", "2x1", "2x2"]),
        ("maze_hops", {"maze_num_nodes": 8}, ["1", "2", "3", "4"]),
    ],
)
def test_supervised_range_from_the_recorded_config(task, extra, expected):
    d0 = "2x2" if task == "multiplication" else "4"
    # a key this version does not know (a newer snapshot) is ignored
    config = {"task": {"task": task, "d0": d0, "a_future_setting": 1, **extra}}
    assert supervised_keys({"config": config}) == expected
    assert supervised_keys({}) == []


def write_run(tmp_path, entries) -> str:
    (tmp_path / "metrics.json").write_text(entries if isinstance(entries, str) else json.dumps(entries))
    return str(tmp_path)


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "has no metrics.json; expected the --output_dir of an si-hf run"),
        ("{not json", "is not valid JSON"),
        ({"round": 0}, "expected a JSON list of round metrics, got dict"),
        ([], "holds no completed round yet"),
        ([{"round": 0, "member": 0}], r"entry 0 \(round 0 member 0\): expected 'accuracy'"),
        ([{"round": "0", "accuracy": {}}], "expected non-negative int 'round' and 'member', got round='0'"),
        ([[1, 2]], "entry 0: expected a JSON object per round, got list"),
    ],
)
def test_bad_output_dirs_name_the_problem(tmp_path, content, match):
    path = str(tmp_path) if content is None else write_run(tmp_path, content)
    with pytest.raises(ValueError, match=match):
        RunResults.from_output_dir(path)


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(ValueError, match=f"'{tmp_path / 'nope'}' is not a directory"):
        RunResults.from_output_dir(tmp_path / "nope")


def test_accuracy_markdown_marks_d0_and_missing_cells():
    records = [
        Record(0, 0, {"accuracy": {"1": 1.0, "2": 0.25}}, {"levels": ["1"]}),
        Record(1, 0, {"accuracy": {"2": 0.5, "10": 0.0}}),
    ]
    assert accuracy_markdown(RunResults(records)).splitlines() == [
        "| round | 1* | 2 | 10 |",
        "|---|---|---|---|",
        "| 0 | 100.0 | 25.0 | - |",
        "| 1 | - | 50.0 | 0.0 |",
    ]


def test_margin_and_reach_figures_9_and_10():
    """Figure 9 counts the lengths past the trained top at >= 99% in a row; figure 10's reach is the
    top plus that margin, or the longest trained length at >= 99% when there is none."""
    run = RunResults(
        [
            rec(0, 0, {"1": 1.0, "2": 0.995, "3": 0.99, "4": 0.2}, levels=["1", "2"], trained=["1", "2"]),
            rec(0, 1, {"1": 1.0, "2": 0.97, "3": 0.5, "4": 0.0}, levels=["1", "2"], trained=["1", "2"]),
            rec(1, 0, {"3": 1.0, "4": 1.0, "5": 0.99, "6": 0.985, "7": 1.0}, levels=["3"], trained=["1", "2", "3"],
                label_seconds=2.0, train_seconds=30.0, eval_seconds=4.0),
            rec(1, 1, {"3": 1.0, "4": 1.0, "5": 1.0, "6": 1.0, "7": 1.0}, levels=["3"], trained=["1", "2", "3"],
                label_seconds=3.0, train_seconds=31.0),
        ]
    )  # fmt: skip
    assert run.trained_top(0) == 2 and run.trained_top(1) == 3
    assert run.margins(0.99, 0) == {
        0: {"trained": 2, "margin": 1, "reach": 3, "evaluated_to": 4},
        1: {"trained": 3, "margin": 2, "reach": 5, "evaluated_to": 7},  # 6 at 98.5% breaks the run
    }
    # member 1's round 0 solves no length past 2 and not 2 itself: the reach is the longest solved
    assert run.margins(0.99, 1)[0] == {"trained": 2, "margin": 0, "reach": 1, "evaluated_to": 4}
    assert run.margins(0.99, 1)[1]["margin"] == 4
    # the mean over the members: 6 averages (0.985 + 1) / 2 >= 0.99
    assert run.margins(0.99)[1] == {"trained": 3, "margin": 4, "reach": 7, "evaluated_to": 7}
    assert run.margins(0.95)[0]["reach"] == 2
    # compute time: every member's labelling, training and evaluation; rounds without them count 0
    assert run.seconds() == {0: 0.0, 1: pytest.approx(70.0)} and run.seconds(0)[1] == pytest.approx(36.0)


def test_margins_are_empty_for_the_grid():
    run = RunResults([rec(0, 0, {"1x1": 1.0, "2x1": 0.5}, levels=["1x1"], trained=["1x1"])])
    assert run.trained_top(0) is None and run.margins() == {}
