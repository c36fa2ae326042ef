"""`si-hf report` on a run of the real round loop, and on a majority-vote multiplication store."""

import json
import re

import pytest
import torch
from huggingface_hub import ModelCard
from test_figures import assert_real_png
from test_rounds import TINY
from test_store import make_model

from si_hf.cli import main as cli
from si_hf.rounds import main as run_rounds
from si_hf.store import open_store
from si_hf.tokenization import get_tokenizer

SMALL = {**TINY, "num_d0_examples": 500, "max_steps": 10, "round_max_steps": 3, "examples_per_round": 16,
         "eval_examples_per_difficulty": 4, "num_rounds": 1}  # fmt: skip


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory):
    """Rounds 0 and 1 of copy (D_0 = lengths 1..3, length filter), trained by the real loop."""
    root = tmp_path_factory.mktemp("copy")
    cfg = root / "config.yaml"
    cfg.write_text(
        json.dumps(
            {**SMALL, "task": "copy", "d0": "3", "filters": ["length"], "output_dir": str(root / "run")}
        )
    )
    run_rounds(["--config", str(cfg)])
    return root / "run"


def test_report_of_a_real_run(copy_run, tmp_path, capsys):
    assert cli(["report", str(copy_run), "--output_dir", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert f"report: {tmp_path / 'rep' / 'report.md'}" in out
    # what it prints to load the final model and the last round's data works as printed
    model_dir = re.search(r'from_pretrained\("([^"]+)"\)', out)[1]
    data_dir = re.search(r'load_dataset\("([^"]+)", split="train"\)', out)[1]
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM

    assert model_dir == str(copy_run / "rounds/round-001/member-0/model")
    assert AutoModelForCausalLM.from_pretrained(model_dir).config.model_type == "smollm3"
    metrics = json.loads((copy_run / "metrics.json").read_text())
    assert len(load_dataset(data_dir, split="train")) == metrics[1]["n_kept"]

    report = (tmp_path / "rep" / "report.md").read_text()
    for name in ("heatmap", "data_accuracy", "data_vs_next"):
        assert f"]({name}.png)" in report
        assert_real_png(tmp_path / "rep" / f"{name}.png")
    assert not (tmp_path / "rep" / "grid.png").exists()  # copy has one-dimensional difficulties
    assert "supervised range D_0: 1, 2, 3" in report
    # the table holds every evaluated cell in %, the supervised columns starred
    header = "| round | 1* | 2* | 3* | 4 | 5 |"
    assert header in report
    row1 = " | ".join(f"{100 * metrics[1]['accuracy'][k]:.1f}" for k in "12345")
    assert f"| 1 | {row1} |" in report
    assert f"| 1 | 4 | 16 | {metrics[1]['n_kept']} |" in report
    # figures 9 and 10: the margin past the trained top and the reach, recomputed here from metrics.json
    assert "## Margin and reach at >= 99% (paper figures 9 and 10)" in report
    for name in ("margin", "reach"):
        assert f"]({name}.png)" in report
        assert_real_png(tmp_path / "rep" / f"{name}.png")
    for r, top in ((0, 3), (1, 4)):
        acc, margin = metrics[r]["accuracy"], 0
        while acc.get(str(top + margin + 1), 0.0) >= 0.99:
            margin += 1
        assert f"| {r} | {top} | {margin} |" in report
        assert metrics[r]["eval_seconds"] > 0


def test_default_output_dir_is_inside_the_run(copy_run, capsys):
    assert cli(["report", str(copy_run)]) == 0
    assert (copy_run / "report" / "report.md").is_file()
    assert_real_png(copy_run / "report" / "heatmap.png")


def test_round_cards_embed_their_heatmap_and_the_run_gets_an_index(copy_run):
    for r in (0, 1):
        model_dir = copy_run / f"rounds/round-{r:03d}/member-0/model"
        card = ModelCard.load(model_dir / "README.md")
        assert "![exact match per round and difficulty](heatmap.png)" in card.text
        assert_real_png(model_dir / "heatmap.png")
        metrics = json.loads((model_dir / "metrics.json").read_text())
        assert {e.dataset_config: e.metric_value for e in card.data.eval_results} == metrics["accuracy"]
        assert card.data.license == "apache-2.0" and card.data.base_model is None
    index = (copy_run / "README.md").read_text()
    assert "[round-0](rounds/round-000)" in index and "[round-1](rounds/round-001)" in index
    assert "![exact match per round and difficulty](heatmap.png)" in index
    assert_real_png(copy_run / "heatmap.png")


@pytest.fixture(scope="module")
def vote_run(tmp_path_factory):
    """A 2-member multiplication store (D_0 = 2x2) published through the store with known metrics."""
    out = tmp_path_factory.mktemp("vote") / "run"
    tok, store = get_tokenizer("char"), open_store(out)
    config = {"task": {"task": "multiplication", "d0": "2x2"}}
    grid = [f"{i}x{j}" for i in (1, 2, 3) for j in (1, 2, 3)]
    torch.manual_seed(0)
    for r in (0, 1, 2):
        for m in (0, 1):
            acc = {
                k: min(1.0, 0.25 * (r + m) + (0.5 if max(map(int, k.split("x"))) <= 2 else 0.0)) for k in grid
            }
            info = {"task": "multiplication", "config": config, "levels": ["3x1", "1x3"] if r else ["2x2"]}
            metrics = {"accuracy": acc, "round": r, "member": m}
            if r:
                info.update(n_generated=20, n_kept=10 + m, data_accuracy=0.5 + 0.1 * m)
                metrics.update(n_generated=20, n_kept=10 + m, data_accuracy=0.5 + 0.1 * m)
            from test_store import make_rows

            store.publish_round(r, m, dataset=make_rows(r) if r else None, model=make_model(tok, r), tokenizer=tok,
                                metrics=metrics, info=info)  # fmt: skip
    (out / "metrics.json").write_text(json.dumps([store.metrics(r, m) for r, m in store.local.completed()]))
    return out


def test_majority_vote_report_shows_each_member_and_the_mean(vote_run, tmp_path, capsys):
    assert cli(["report", str(vote_run), "--output_dir", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    for name in ("heatmap", "heatmap-member-0", "heatmap-member-1", "grid", "grid-member-0", "grid-member-1",
                 "data_accuracy", "data_vs_next"):  # fmt: skip
        assert f"({name}.png)" in report, name
        assert_real_png(tmp_path / f"{name}.png")
    assert "mean over 2 members" in report and "Member 1:" in report
    # mean of the two members: round 2, 3x3 = (0.5 + 0.75) / 2
    assert re.search(r"^\| 2 \| (?:[\d.]+ \| ){8}62\.5 \|$", report, re.M), report
    assert "| 1 | 3x1, 1x3 | 20 | 11 | 0.5500 | 0.6000 |" in report  # member 1's labels
    assert "subfolder" not in capsys.readouterr().out  # not pushed: local paths only


@pytest.mark.parametrize(
    "setup, match",
    [
        (lambda p: None, "is not a directory"),
        (lambda p: p.mkdir(), "has no metrics.json"),
        (lambda p: (p.mkdir(), (p / "metrics.json").write_text("[]")), "holds no completed round yet"),
    ],
)
def test_bad_run_directories_exit_2_naming_them(tmp_path, capsys, setup, match):
    setup(tmp_path / "run")
    with pytest.raises(SystemExit) as exit_info:
        cli(["report", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and match in err and str(tmp_path / "run") in err
    assert not (tmp_path / "run" / "report").exists()
