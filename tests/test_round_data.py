"""A round's rows from prompts, predictions and filter results: pure functions, no model, no store."""

from datasets import Dataset

from si_hf.configs import SelfImproveArguments
from si_hf.labeling import Prediction
from si_hf.round_data import (
    filter_by_level,
    filter_counts,
    generated_by,
    label_settings,
    level_spans,
    round_rows,
    sample_round_prompts,
)
from si_hf.schema import ROUND_FEATURES
from si_hf.tasks import get_task, split_of


def P(text, finished=True):
    return Prediction(text=text, finished=finished, num_tokens=len(text))


def test_spans_group_consecutive_levels():
    assert level_spans(["1x7", "1x7", "7x1", "7x1", "7x1", "2x7"]) == [(0, 2), (2, 5), (5, 6)]
    assert level_spans(["5"]) == [(0, 1)] and level_spans([]) == []


def test_round_prompts_are_spread_over_levels_and_seeded_per_member():
    task = get_task("copy")
    prompts, levels = sample_round_prompts(task, 7, [11, 12], seed=1, round=2, member=0)
    assert levels == ["11"] * 4 + ["12"] * 3 and all(split_of(p) == "train" for p in prompts)
    assert [task.difficulty_of(p) for p in prompts] == [11] * 4 + [12] * 3
    assert sample_round_prompts(task, 7, [11, 12], seed=1, round=2, member=0)[0] == prompts
    assert sample_round_prompts(task, 7, [11, 12], seed=1, round=2, member=1)[0] != prompts


def test_rows_of_a_voting_round_keep_each_members_own_agreeing_labels():
    task = get_task("copy")
    prompts, difficulties = ["12=", "34=", "5678="], ["2", "2", "4"]
    m0 = [P("12"), P("34"), P("5678")]
    m1 = [P("12"), P("43"), P("5678")]
    m2 = [P("21"), P("43"), P("5678", finished=False)]
    si = SelfImproveArguments(filters=["majority_vote"], num_members=3, vote_threshold=0.6)
    for member in range(3):
        results = filter_by_level(si, task, prompts, difficulties, [m0, m1, m2], member=member)
        rows = round_rows(
            task,
            1,
            prompts,
            difficulties,
            results,
            generated_by="round-0/members-0,1,2",
            filter_name="majority_vote",
            member=member,
        )
        ds = Dataset.from_dict(rows, features=ROUND_FEATURES)
        assert all(member in a for a in ds["agreeing_members"])
        expected = {0: ["12=", "5678="], 1: ["12=", "34=", "5678="], 2: ["34="]}[member]
        assert ds["prompt"] == expected
    # prompt 2's label 43 is wrong: recorded by the oracle, never used to filter
    assert ds["completion"] == ["43"] and ds["oracle_correct"] == [False] and ds["votes"] == [2]
    assert filter_counts(results) == {"total": 3, "majority_vote": 1}


def test_rows_of_a_no_filter_round_keep_run_on_labels_flagged():
    task = get_task("copy")
    si = SelfImproveArguments(filters=["none"])
    prompts, difficulties = ["12=", "34="], ["2", "2"]
    results = filter_by_level(
        si, task, prompts, difficulties, [[P("12"), P("34", finished=False)]], member=None
    )
    rows = round_rows(
        task, 3, prompts, difficulties, results, generated_by="round-2/member-1", filter_name="none", member=1
    )
    assert rows["completion"] == ["12", "34"] and rows["finished"] == [True, False]
    assert rows["agreeing_members"] == [[1], [1]] and rows["round"] == [3, 3]
    assert rows["oracle_correct"] == [True, True]  # the trained target 34+EOS is right


def test_generated_by_and_settings():
    assert generated_by(2, 1, [1], voting=False) == "round-2/member-1"
    assert generated_by(2, 1, [0, 1, 2], voting=True) == "round-2/members-0,1,2"
    settings = label_settings(get_task("copy"), SelfImproveArguments(), [11, 12])
    assert settings["levels"] == ["11", "12"] and settings["vote_labels"] == "own"


def test_staged_settings_without_a_later_setting_count_as_its_old_value():
    from si_hf.round_data import LABEL_SETTINGS_ADDED_LATER, same_label_settings

    current = {"levels": ["4"], "filters": ["none"], "decode_precision": "fp32", "plugin_options": None,
               "oracle_false_accept": 0.0, "oracle_false_reject": 0.0, "label_source": "model",
               "noise_kind": "uniform", "noise_fraction": 0.0, "noise_rounds": []}  # fmt: skip
    assert set(current) - {"levels", "filters"} == set(LABEL_SETTINGS_ADDED_LATER)
    older = {"levels": ["4"], "filters": ["none"]}  # staged before all of them existed: their old values
    assert same_label_settings(older, current) and same_label_settings(current, current)
    assert not same_label_settings(older, {**current, "decode_precision": "bf16"})
    assert not same_label_settings(older, {**current, "noise_rounds": [2]})
    assert not same_label_settings({**older, "filters": ["length"]}, current)
    assert not same_label_settings(None, current)
