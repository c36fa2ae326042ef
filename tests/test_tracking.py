"""Trackers: every round's metrics reach the report_to integrations, one run per member, on one step axis.

The TensorBoard event files a real run writes are read back with TensorBoard's own reader."""

import importlib.util
import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_rounds import TINY, run_dir, write_config

from si_hf.rounds import main
from si_hf.tracking import check_report_to, round_scalars


def scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def at(series: list[tuple[int, float]], step: int) -> float:
    [value] = {v for s, v in series if s == step}
    return value


def test_every_round_is_logged_per_member_on_one_step_axis(tmp_path):
    cfg = write_config(
        tmp_path,
        task="copy",
        d0="4",
        filters=["none"],
        num_members=2,
        logging_steps=2,
        report_to="tensorboard",
    )
    main(["--config", str(cfg), "--rounds", "0:1"])
    main(["--config", str(cfg), "--round", "2"])  # a later invocation continues the same axis
    out = run_dir(cfg)
    assert not (out / "work").exists()  # the per-round Trainer dirs are gone, the logs are not
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["member-0", "member-1"]
    # round 0 trains max_steps (20), every later round round_max_steps (6): rounds end at 20, 26, 32
    ends = [TINY["max_steps"] + r * TINY["round_max_steps"] for r in range(3)]
    for m in range(2):
        logged = scalars(out / "runs" / f"member-{m}")
        # the Trainer's loss every logging_steps, never restarting at 0
        assert [s for s, _ in logged["train/loss"]] == list(range(2, ends[-1] + 1, 2))
        for r, end in enumerate(ends):
            metrics = json.loads((out / f"rounds/round-{r:03d}/member-{m}/metrics.json").read_text())
            assert at(logged["train/round"], end) == r
            assert metrics["accuracy"]  # every evaluated difficulty is logged, at the round's last step
            for d, accuracy in metrics["accuracy"].items():
                assert at(logged[f"eval/accuracy/{d}"], end) == pytest.approx(accuracy)
                assert at(logged[f"eval/finished/{d}"], end) == pytest.approx(metrics["finished"][d])
            if r == 0:
                assert not any(s == end for s, _ in logged.get("train/labels/kept_fraction", []))
                continue
            kept = metrics["n_kept"] / metrics["n_generated"]
            assert at(logged["train/labels/kept_fraction"], end) == pytest.approx(kept)
            assert at(logged["train/labels/data_accuracy"], end) == pytest.approx(metrics["data_accuracy"])
            speed = metrics["label_examples_per_second"]
            assert at(logged["train/labels/examples_per_second"], end) == pytest.approx(speed)
        # training steps of round r carry its round number
        assert {v for s, v in logged["train/round"] if ends[0] < s <= ends[1]} == {1.0}


def test_round_scalars_flatten_what_a_round_measured():
    metrics = {
        "round": 2,
        "overall": 0.75,
        "accuracy": {"5": 1.0, "6": 0.5},
        "finished": {"5": 1.0, "6": 0.875},
        "n_generated": 40,
        "n_kept": 30,
        "data_accuracy": 0.9,
        "label_examples_per_second": 120.0,
    }
    assert round_scalars(metrics) == {
        "round": 2,
        "eval_accuracy_overall": 0.75,
        "eval_accuracy/5": 1.0,
        "eval_accuracy/6": 0.5,
        "eval_finished/5": 1.0,
        "eval_finished/6": 0.875,
        "labels/kept_fraction": 0.75,
        "labels/kept": 30,
        "labels/data_accuracy": 0.9,
        "labels/examples_per_second": 120.0,
    }


def test_unknown_tracker_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="report_to=\\['tensorbored'\\].*tensorbored is not supported"):
        check_report_to(["tensorbored"])
    cfg = write_config(tmp_path, task="copy", d0="4", report_to="tensorbored")
    with pytest.raises(ValueError, match="tensorbored"):
        main(["--config", str(cfg)])
    assert not (run_dir(cfg) / "rounds").exists()


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_missing_tracker_package_says_how_to_install_it():
    with pytest.raises(ValueError, match=r"wandb is not installed .*pip install -e '\.\[wandb\]'"):
        check_report_to(["wandb"])
