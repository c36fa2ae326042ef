"""Synthetic label noise (appendix B.6.2), the graded oracle filter and truth-labelled rounds."""

import json

import pytest
from test_rounds import check_round, round_dataset, run_dir, write_config

from si_hf.configs import SelfImproveArguments
from si_hf.evaluation import memorised_mistakes
from si_hf.filtering import apply_filters
from si_hf.labeling import Prediction
from si_hf.noise import KINDS, NOISE_KINDS, check_noise, drop_digits, inject, perturb, uniform
from si_hf.publishing.report import write_report
from si_hf.round_data import add_noise, round_rows, truth_predictions
from si_hf.rounds import main
from si_hf.tasks import get_task
from si_hf.tasks.seeding import rng_for
from si_hf.testing.models import lookup_model
from si_hf.tokenization import get_tokenizer
from si_hf.tracking import round_scalars

LABEL = "9105372846"


# ---- each kind, exactly ----
@pytest.mark.parametrize(
    "kind, expected",
    [
        ("uniform", ["8883320875", "5161188169", "1559579369", "6172081291"]),
        ("perturb", ["9105372946", "9105372946", "9105372857", "9105372835"]),
        ("drop_digits", ["91053726", "910537246", "91053728", "9105372"]),
        ("drop_perturb", ["91053723", "91053729", "910537297", "91053727"]),
    ],
)
def test_each_kind_is_pinned_on_every_machine(kind, expected):
    rng = rng_for(0, "test", kind)
    assert [KINDS[kind](LABEL, rng) for _ in range(4)] == expected


def test_perturb_moves_one_to_three_of_the_last_three_digits_by_one():
    changed_counts = set()
    for i in range(300):
        out = perturb(LABEL, rng_for(i, "perturb"))
        assert len(out) == len(LABEL) and out[:-3] == LABEL[:-3]
        diffs = [int(a) - int(b) for a, b in zip(out[-3:], LABEL[-3:]) if a != b]
        assert diffs and all(d in (-1, 1) for d in diffs)  # always wrong, each digit by exactly one
        changed_counts.add(len(diffs))
    assert changed_counts == {1, 2, 3}
    # 0 can only go up and 9 only down: digits stay in 0-9
    assert {perturb("000", rng_for(i, "p0")) for i in range(50)} <= {
        "100",
        "010",
        "001",
        "110",
        "101",
        "011",
        "111",
    }
    assert set("".join(perturb("999", rng_for(i, "p9")) for i in range(50))) <= {"8", "9"}


def test_drop_digits_removes_one_to_three_of_the_last_three():
    lengths = set()
    for i in range(300):
        out = drop_digits(LABEL, rng_for(i, "drop"))
        assert out.startswith(LABEL[:-3]) and 7 <= len(out) <= 9
        tail = out[len(LABEL) - 3 :]
        it = iter(LABEL[-3:])
        assert all(c in it for c in tail)  # what is left of the tail keeps its order
        lengths.add(len(out))
    assert lengths == {7, 8, 9}


def test_uniform_redraws_digits_only_and_is_always_wrong():
    for i in range(200):
        out = uniform("12", rng_for(i, "u"))
        assert len(out) == 2 and out.isdigit() and out != "12"
    cot = "6768+00284=67865"
    out = uniform(cot, rng_for(0, "u"))
    assert [c for c in out if not c.isdigit()] == ["+", "="] and out.index("+") == 4 and out != cot


def test_multiplication_noise_touches_the_final_digits_of_the_chain_of_thought():
    cot = "6768+00284=67865"
    for kind in ("perturb", "drop_digits", "drop_perturb"):
        out = KINDS[kind](cot, rng_for(1, kind))
        assert out.startswith("6768+00284=67") and out != cot


def test_inject_replaces_that_fraction_of_rows_chosen_by_the_seed():
    labels = [f"{i:03d}" for i in range(100, 110)]
    out, hit = inject(labels, "perturb", 0.3, seed=1, round=2, member=0)
    assert sum(hit) == 3
    assert [o != label for o, label in zip(out, labels)] == hit  # injected rows changed, the others not
    assert inject(labels, "perturb", 0.3, seed=1, round=2, member=0) == (out, hit)  # the same rows again
    assert inject(labels, "perturb", 0.3, seed=1, round=2, member=1)[1] != hit  # another member's draw
    assert sum(inject(labels, "uniform", 0.0, seed=1, round=2, member=0)[1]) == 0
    assert sum(inject(labels, "uniform", 1.0, seed=1, round=2, member=0)[1]) == 10
    # a label with no digit cannot be replaced: the fraction is of the kept rows, capped by what has digits
    assert inject(["", "12"], "uniform", 1.0, seed=1, round=1, member=0)[1] == [False, True]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "gaussian"}, r"noise_kind: 'gaussian' is not one of \['uniform'"),
        ({"fraction": 1.5}, r"noise_fraction: 1.5; expected a number in \[0, 1\]"),
        ({"rounds": [0]}, r"noise_rounds: \[0\]: \[0\] not rounds of this run; expected rounds in 1..3"),
        ({"rounds": [4]}, r"\[4\] not rounds of this run"),
        ({"rounds": "2"}, r"noise_rounds: '2'; expected a list"),
        (
            {"rounds": [], "kind": "uniform", "fraction": 0.2},
            r"noise_fraction: 0.2 applies to the rounds in noise_rounds",
        ),
        ({"task": "copy"}, r"task 'copy' is not one"),
    ],
)
def test_bad_noise_options_are_refused(kwargs, match):
    args = {"kind": "perturb", "fraction": 0.3, "rounds": [2], "task": "reverse_addition", **kwargs}
    with pytest.raises(ValueError, match=match):
        check_noise(args["kind"], args["fraction"], args["rounds"], num_rounds=3, task=get_task(args["task"]))


def test_round_rows_record_the_label_the_filters_kept():
    task = get_task("reverse_addition")
    prompts = ["12+34=", "99+1=", "5+5="]
    preds = [Prediction(task.solve(p), True, 3) for p in prompts]
    res = apply_filters(["length"], preds, settings=SelfImproveArguments(length_filter_tau=9))
    rows = round_rows(
        task, 2, prompts, ["2", "2", "1"], [res], generated_by="g", filter_name="length", member=0
    )
    assert rows["injected"] == [False] * 3 and rows["original_completion"] == rows["completion"]
    si = SelfImproveArguments(noise_kind="drop_digits", noise_fraction=0.67, noise_rounds=[2])
    assert add_noise(task, rows, si, seed=0, round=1, member=0) is rows  # round 1 is not listed
    noisy = add_noise(task, rows, si, seed=0, round=2, member=0)
    assert sum(noisy["injected"]) == 2 and noisy["original_completion"] == rows["completion"]
    assert noisy["oracle_correct"] == [task.verify(p, c) for p, c in zip(prompts, noisy["completion"])]
    assert noisy["oracle_correct"] == [not hit for hit in noisy["injected"]]


# ---- the oracle filter ----
def _predictions(task, n):
    """n prompts, the first half labelled right, the second half wrong (perturbed)."""
    rng = rng_for(3, "oracle-test")
    prompts = [task.sample(4, rng)[0] for _ in range(n)]
    texts = [task.solve(p) if i < n // 2 else perturb(task.solve(p), rng) for i, p in enumerate(prompts)]
    return prompts, [Prediction(t, True, len(t)) for t in texts]


@pytest.mark.parametrize("q, p", [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.3, 0.1)])
def test_oracle_keeps_right_labels_and_errs_at_the_rates_asked(q, p):
    task = get_task("reverse_addition")
    prompts, preds = _predictions(task, 1000)
    si = SelfImproveArguments(filters=["oracle"], oracle_false_accept=q, oracle_false_reject=p)
    keep = apply_filters(["oracle"], preds, prompts=prompts, task=task, settings=si).keep
    right, wrong = keep[:500], keep[500:]
    assert sum(wrong) / 500 == pytest.approx(q, abs=0.05) and sum(right) / 500 == pytest.approx(
        1 - p, abs=0.05
    )
    again = apply_filters(["oracle"], preds, prompts=prompts, task=task, settings=si).keep
    assert again == keep  # seeded by prompt and label: the same decisions every time


def test_oracle_composes_with_the_length_filter_and_drops_run_ons():
    task = get_task("reverse_addition")
    prompts, preds = _predictions(task, 8)
    preds[0] = Prediction(preds[0].text, False, preds[0].num_tokens)  # a right text, but a run-on
    si = SelfImproveArguments(filters=["length", "oracle"], length_filter_tau=9, oracle_false_accept=1.0)
    res = apply_filters(["length", "oracle"], preds, prompts=prompts, task=task, settings=si)
    assert res.keep == [False] + [True] * 7 and res.counts["oracle"] == 7


# ---- truth labels and noise, end to end ----
def test_truth_labels_with_full_uniform_noise_are_the_random_label_control(tmp_path):
    cfg = write_config(
        tmp_path,
        task="reverse_addition",
        d0="2",
        num_rounds=2,
        filters=["length"],
        label_source="truth",
        noise_kind="uniform",
        noise_fraction=1.0,
        noise_rounds=[2],
    )
    main(["--config", str(cfg)])
    out, task = run_dir(cfg), get_task("reverse_addition")
    clean = check_round(out, task, 1, filters="length")
    assert clean["data_accuracy"] == 1.0  # truth labels
    ds1 = round_dataset(out, 1)
    assert set(ds1["generated_by"]) == {"truth"} and not any(ds1["injected"])
    noisy = check_round(out, task, 2, filters="length")
    ds2 = round_dataset(out, 2)
    assert len(ds2) == noisy["n_kept"] > 0 and all(ds2["injected"]) and noisy["data_accuracy"] == 0.0
    assert ds2["original_completion"] == [task.solve(p) for p in ds2["prompt"]]
    assert noisy["n_injected"] == len(ds2)
    recorded = json.loads((out / "rounds" / "round-002" / "member-0" / "si_hf_round.json").read_text())
    assert recorded["info"]["config"]["self_improve"]["noise_rounds"] == [2]
    # figure 26: round 1 trained on no wrong label; round 2's model is scored on round 2's wrong labels
    assert "memorised" not in clean
    memo = noisy["memorised"]
    assert list(memo) == ["2"] and memo["2"]["n"] == len(ds2)
    assert 0.0 <= memo["2"]["right"] <= 1.0 and 0.0 <= memo["2"]["reproduced"] <= 1.0
    scalars = round_scalars(noisy)
    assert scalars["eval_memorised_right/round-2"] == memo["2"]["right"]
    report = write_report(out)
    assert (report.parent / "memorised.png").is_file() and "## Memorised mistakes" in report.read_text()


def test_memorised_mistakes_scores_right_answers_and_repeated_labels():
    char, copy = get_tokenizer("char"), get_task("copy")
    model = lookup_model(char, {"=": "7", "7": "<eos>"})  # answers "7" to every prompt
    mistakes = {
        1: (["3=", "4="], ["7", "5"], [True, True]),  # "3=" gets its wrong label "7" back; "4=" neither
        2: (["7="], ["77"], [True]),  # "7" is now the right copy
        3: (["2="], ["7"], [False]),  # a run-on wrong label: "7" then EOS is not that label
        4: ([], [], []),  # no wrong label: left out
    }
    out = memorised_mistakes(model, char, copy, mistakes, batch_size=4)
    assert out == {
        "1": {"n": 2, "right": 0.0, "reproduced": 0.5},
        "2": {"n": 1, "right": 1.0, "reproduced": 0.0},
        "3": {"n": 1, "right": 0.0, "reproduced": 0.0},
    }
    assert memorised_mistakes(model, char, copy, {}) == {}


def test_truth_predictions_are_finished_with_their_token_counts():
    task, tok = get_task("copy"), get_tokenizer("char")
    preds = truth_predictions(task, tok, ["123=", "4="])
    assert [(p.text, p.finished, p.num_tokens) for p in preds] == [("123", True, 3), ("4", True, 1)]


def test_noise_kinds_are_the_choices_in_help():
    assert NOISE_KINDS == ("uniform", "perturb", "drop_digits", "drop_perturb") == tuple(KINDS)
