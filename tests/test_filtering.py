import pytest

from si_hf.configs import SelfImproveArguments as S
from si_hf.filtering import (
    FILTERS,
    apply_filters,
    check_filters,
    length_filter,
    majority_vote,
    verifier_filter,
    vote_threshold,
)
from si_hf.labeling import Prediction
from si_hf.tasks import get_task


def P(text, finished=True, num_tokens=None, tokenizes=True):
    return Prediction(
        text=text,
        finished=finished,
        num_tokens=len(text) if num_tokens is None else num_tokens,
        tokenizes=tokenizes,
    )


RUN_ON = P("9" * 40, finished=False)


# ---- length filter -------------------------------------------------------------------------------


def test_length_filter_drops_at_least_tau_shorter():
    preds = [P("12345"), P("1234"), P("123"), P("12")]
    keep, info = length_filter(preds, tau=2, batch_size=4)
    # L=5: 5 and 4 are less than 2 short, 3 is exactly 2 short (dropped), 2 is 3 short.
    assert keep == [True, True, False, False]
    assert [d["reference"] for d in info] == [5] * 4
    assert length_filter(preds, tau=1, batch_size=4)[0] == [True, False, False, False]
    assert length_filter(preds, tau=4, batch_size=4)[0] == [True, True, True, True]


def test_length_filter_is_per_batch_in_given_order():
    preds = [P("12345"), P("123"), P("12"), P("1")]
    keep, info = length_filter(preds, tau=2, batch_size=2)
    # Batch 1 reference 5 drops "123"; batch 2 reference 2 keeps "1" (only 1 shorter).
    assert keep == [True, False, True, True]
    assert [d["reference"] for d in info] == [5, 5, 2, 2]
    # A last partial batch is its own batch.
    keep, _ = length_filter(preds + [P("1")], tau=2, batch_size=2)
    assert keep[-1] is True


def test_length_filter_run_on_is_dropped_and_never_the_reference():
    # Seen on a CPU run: one run-on output made "shorter than the longest" drop a whole batch.
    preds = [P("1234567")] * 5 + [RUN_ON] + [P("123456")] * 4
    keep, info = length_filter(preds, tau=2, batch_size=10)
    assert keep == [True] * 5 + [False] + [True] * 4
    assert info[5]["run_on"] and not info[0]["run_on"]
    assert {d["reference"] for d in info} == {7}


def test_length_filter_all_run_on_batch_keeps_nothing_and_has_no_reference():
    keep, info = length_filter([RUN_ON, RUN_ON], tau=2, batch_size=2)
    assert keep == [False, False] and info[0]["reference"] is None


def test_length_filter_uses_token_counts_not_characters():
    # Maze answers: "61>84>49>27" is 7 tokens with the maze tokenizer, 11 characters.
    preds = [P("61>84>49>27", num_tokens=7), P("1>2>3>4>5", num_tokens=9)]
    assert length_filter(preds, tau=2, batch_size=2)[0] == [False, True]


def test_length_filter_prior_mask_restricts_candidates_and_references():
    preds = [P("1234567"), P("1234"), P("12345")]
    keep, info = length_filter(preds, tau=2, batch_size=3, keep=[False, True, True])
    assert keep == [False, True, True] and info[0]["reference"] == 5


@pytest.mark.parametrize("tau", [0, -1, 1.5, True, "2"])
def test_length_filter_rejects_bad_tau(tau):
    with pytest.raises(ValueError, match="tau"):
        length_filter([P("1")], tau=tau, batch_size=1)


def test_length_filter_rejects_bad_batch_size_and_mask():
    with pytest.raises(ValueError, match="batch_size=0"):
        length_filter([P("1")], tau=2, batch_size=0)
    with pytest.raises(ValueError, match="keep mask has 1 entries"):
        length_filter([P("1"), P("2")], tau=2, batch_size=2, keep=[True])


# ---- majority vote -------------------------------------------------------------------------------


def members_from_columns(*columns):
    """columns[i] = the k members' predictions for prompt i -> k lists of predictions."""
    return [list(ms) for ms in zip(*columns)]


def test_vote_threshold_is_ceil_tau_k():
    assert vote_threshold(0.8, 5) == 4
    assert vote_threshold(0.6, 3) == 2
    assert vote_threshold(0.7, 10) == 7
    assert vote_threshold(0.28, 25) == 7  # 0.28 * 25 == 7.000000000000001 in floats
    assert vote_threshold(1.0, 5) == 5
    assert vote_threshold(0.01, 3) == 1


def test_majority_vote_4_of_5_at_tau_08():
    four = [P("42"), P("42"), P("42"), P("42"), P("41")]
    three = [P("42"), P("42"), P("42"), P("41"), P("40")]
    keep, info = majority_vote(members_from_columns(four, three), tau=0.8)
    assert keep == [True, False]
    assert [d["label"] for d in info] == ["42", "42"]
    assert [d["votes"] for d in info] == [4, 3]


def test_majority_vote_2_of_3_at_tau_06():
    two = [P("7"), P("8"), P("7")]
    none = [P("7"), P("8"), P("9")]
    keep, info = majority_vote(members_from_columns(two, none), tau=0.6)
    assert keep == [True, False]
    assert info[0] == {"label": "7", "votes": 2, "member": 0, "agreeing": [0, 2]}


def test_majority_vote_compares_strings_not_token_counts():
    # The same string with different token counts (e.g. padding) still agrees; different strings
    # of the same length do not.
    same = [P("123", num_tokens=3), P("123", num_tokens=5), P("123", num_tokens=4)]
    differ = [P("123"), P("124"), P("125")]
    keep, info = majority_vote(members_from_columns(same, differ), tau=1.0)
    assert keep == [True, False] and info[0]["votes"] == 3 and info[1]["votes"] == 1


def test_majority_vote_run_on_casts_no_vote():
    col = [P("55"), P("55"), P("55", finished=False), P("55", finished=False), P("55")]
    keep, info = majority_vote(members_from_columns(col), tau=0.8)
    assert keep == [False] and info[0]["votes"] == 3
    keep, info = majority_vote(members_from_columns([RUN_ON, RUN_ON]), tau=0.5)
    assert keep == [False] and info[0] == {"label": None, "votes": 0, "member": None, "agreeing": []}
    # nor does a label that does not tokenize back
    col = [P("55"), P("55", tokenizes=False), P("56")]
    keep, info = majority_vote(members_from_columns(col), tau=0.6)
    assert keep == [False] and info[0]["votes"] == 1 and info[0]["agreeing"] == [0]


def test_majority_vote_ties_go_to_lowest_member():
    keep, info = majority_vote(members_from_columns([P("b"), P("a"), P("a"), P("b")]), tau=0.5)
    assert keep == [True] and info[0]["label"] == "b" and info[0]["member"] == 0
    keep, info = majority_vote(members_from_columns([P("c"), P("a"), P("b"), P("b"), P("a")]), tau=0.4)
    assert info[0]["label"] == "a" and info[0]["member"] == 1


def test_majority_vote_single_member():
    keep, info = majority_vote([[P("1"), RUN_ON]], tau=0.8)
    assert keep == [True, False]


@pytest.mark.parametrize("tau", [0, 0.0, -0.5, 1.01, "0.8", None])
def test_majority_vote_rejects_bad_tau(tau):
    with pytest.raises(ValueError, match="tau"):
        majority_vote([[P("1")]], tau=tau)


def test_majority_vote_rejects_no_members_and_ragged_members():
    with pytest.raises(ValueError, match="k >= 1"):
        majority_vote([], tau=0.8)
    with pytest.raises(ValueError, match="member 1 has 1 predictions"):
        majority_vote([[P("1"), P("2")], [P("1")]], tau=0.8)


# ---- verifier ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def maze():
    return get_task("maze_hops", num_nodes=10)


# A 4-node tree, start 1, target 3: the only path is 1>2>3.
PROMPT = "1>3#1:2-2:1,3,4-3:2-4:2="


def test_verifier_filter_checks_requested_validity(maze):
    answers = [P("1>2>3"), P("1>3"), P("1>2>4"), P("1>4>3"), P("1>2>3", finished=False)]
    prompts = [PROMPT] * len(answers)
    keep, info = verifier_filter(maze, prompts, answers)
    assert keep == [True, False, False, False, False]
    assert info[1] == {"move_valid": False, "end_valid": True} and info[4] == {}
    assert verifier_filter(maze, prompts, answers, checks=("move",))[0] == [True, False, True, False, False]
    assert verifier_filter(maze, prompts, answers, checks=("end",))[0] == [True, True, False, True, False]


def test_verifier_filter_errors(maze):
    with pytest.raises(ValueError, match="'copy' has none"):
        verifier_filter(get_task("copy"), [PROMPT], [P("1>3")])
    with pytest.raises(ValueError, match="subset of"):
        verifier_filter(maze, [PROMPT], [P("1>3")], checks=("length",))
    with pytest.raises(ValueError, match="1 prompts but 2 predictions"):
        verifier_filter(maze, [PROMPT], [P("1>3"), P("1>3")])


# ---- composition ---------------------------------------------------------------------------------


def test_apply_filters_none_filters_nothing_but_untokenizable_labels():
    """The paper's no-filter baseline: every label is kept, run-on outputs included (flagged
    unfinished); only a label that cannot be tokenized back (it cannot be trained on) is dropped."""
    bad = P("8449", tokenizes=False)
    preds = [P("12345"), P("1"), RUN_ON, bad]
    for spec in (["none"],):
        result = apply_filters(spec, preds)
        assert result.keep == [True, True, True, False]
        assert result.labels == ["12345", "1", RUN_ON.text, None]
        assert result.finished == [True, True, False, True]
        assert result.num_kept == 3 and result.counts == {"total": 4, "tokenizes": 3}


def test_apply_filters_finished_drops_run_on_and_untokenizable():
    preds = [P("12345"), P("1"), RUN_ON, P("8449", tokenizes=False)]
    result = apply_filters(["finished"], preds)
    assert result.keep == [True, True, False, False]
    assert result.labels == ["12345", "1", None, None]
    assert result.counts == {"total": 4, "finished": 2}
    # explicit "finished" before another filter is the stage that filter implies anyway
    assert apply_filters(["finished", "length"], preds).keep == apply_filters(["length"], preds).keep


def test_apply_filters_length():
    preds = [P("12345"), P("1234"), P("1"), RUN_ON]
    result = apply_filters(["length"], preds, settings=S(label_batch_size=4, length_filter_tau=2))
    assert result.keep == [True, True, False, False]
    assert result.counts == {"total": 4, "finished": 3, "length": 2}


def test_apply_filters_majority_vote_then_length():
    # Three prompts, 3 members, tau 0.6 (2 of 3). Prompt 0's majority label is long, prompt 1's
    # majority label is 3 tokens shorter, prompt 2 has no majority; its long minority answers must
    # not become the length reference.
    m0 = [P("123456"), P("123"), P("99999999")]
    m1 = [P("123456"), P("123"), P("88888888")]
    m2 = [P("123457"), P("124"), P("77777777")]
    settings = S(num_members=3, vote_threshold=0.6, length_filter_tau=2, label_batch_size=3)
    result = apply_filters(["majority_vote", "length"], [m0, m1, m2], settings=settings)
    assert result.keep == [True, False, False]
    assert result.labels[:2] == ["123456", "123"]
    assert result.votes == [2, 2, 1]
    assert result.counts == {"total": 3, "majority_vote": 2, "length": 1}
    # Majority vote alone keeps both agreed prompts.
    assert apply_filters(["majority_vote"], [m0, m1, m2], settings=settings).keep == [True, True, False]


def test_apply_filters_member_keeps_only_its_agreeing_labels():
    m0 = [P("5"), P("6")]
    m1 = [P("5"), P("7")]
    m2 = [P("4"), P("7")]
    vote = S(num_members=3, vote_threshold=0.6)
    assert apply_filters(["majority_vote"], [m0, m1, m2], settings=vote, member=0).keep == [True, False]
    assert apply_filters(["majority_vote"], [m0, m1, m2], settings=vote, member=2).keep == [False, True]
    # every prompt records who agrees with its label; without member= (the consensus ablation)
    # every member keeps every agreed prompt
    consensus = apply_filters(["majority_vote"], [m0, m1, m2], settings=vote)
    assert consensus.keep == [True, True] and consensus.agreeing == [[0, 1], [1, 2]]
    assert consensus.labels == ["5", "7"]
    # A run-on prediction whose truncated text equals the label is still no vote for it.
    m2_run_on = [P("4"), P("7", finished=False)]
    assert apply_filters(["majority_vote"], [m0, m1, m2_run_on], settings=vote, member=2).keep == [
        False,
        False,
    ]
    with pytest.raises(ValueError, match="member=3"):
        apply_filters(["majority_vote"], [m0, m1, m2], member=3)


def test_apply_filters_verifier_and_length(maze):
    preds = [P("1>2>3", num_tokens=5), P("1>3", num_tokens=3), P("1>2>4", num_tokens=5)]
    result = apply_filters(
        ["verifier", "length"], preds, task=maze, prompts=[PROMPT] * 3, settings=S(label_batch_size=3)
    )
    assert result.keep == [True, False, False]
    assert result.counts == {"total": 3, "finished": 3, "verifier": 1, "length": 1}
    with pytest.raises(ValueError, match="needs task= and prompts="):
        apply_filters(["verifier"], preds)


def test_apply_filters_spec_errors():
    preds = [P("1")]
    with pytest.raises(
        ValueError, match="filters: 'lenght' is not a registered filter; expected one of"
    ) as err:
        apply_filters(["lenght"], preds)
    assert all(name in str(err.value) for name in FILTERS)
    with pytest.raises(ValueError, match=r"filters: \[\] names no filter; use \[none\]"):
        apply_filters([], preds)
    with pytest.raises(ValueError, match=r"\['length'\] appear more than once"):
        apply_filters(["length", "length"], preds)
    with pytest.raises(ValueError, match="is a string; expected a list"):
        apply_filters("length", preds)
    with pytest.raises(ValueError, match="list of lists"):
        apply_filters(["majority_vote"], preds)
    with pytest.raises(ValueError, match="must come first"):
        apply_filters(["length", "majority_vote"], [preds, preds])
    with pytest.raises(ValueError, match="have no vote"):
        apply_filters(["length"], [preds, preds])
    with pytest.raises(ValueError, match="'none' cannot be combined"):
        apply_filters(["none", "length"], preds)


def test_check_filters_runs_each_filters_validation_and_refuses_options_of_unused_filters(maze):
    copy = get_task("copy")
    with pytest.raises(ValueError, match="'verifier' needs a maze task"):
        check_filters(S(filters=["verifier"]), copy)
    check_filters(S(filters=["verifier"]), maze)
    with pytest.raises(ValueError, match=r"verifier_checks: \['moves'\]; expected a non-empty subset"):
        check_filters(S(filters=["verifier"], verifier_checks=["moves"]), maze)
    with pytest.raises(ValueError, match="num_members: 1: majority_vote needs num_members >= 2"):
        check_filters(S(filters=["majority_vote"]), copy)
    with pytest.raises(ValueError, match=r"vote_labels: 'mine' is not one of \['own', 'consensus'\]"):
        check_filters(S(filters=["majority_vote"], num_members=3, vote_labels="mine"), copy)
    # an option only an unused filter reads, set away from its default, is a mistake to name
    with pytest.raises(ValueError, match=r"length_filter_tau: 5 applies to filter length only.*'none'"):
        check_filters(S(filters=["none"], length_filter_tau=5), copy)
    assert check_filters(S(filters=["length"], length_filter_tau=5), copy) == ["length"]
