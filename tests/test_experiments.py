"""scripts/experiments.py (`make experiment-<name>`): the laboratory's CPU experiments, wired end to end
with the real recipe shrunk to a tiny model (the experiments themselves run outside CI)."""

import importlib.util
import json
from pathlib import Path

import pytest
from test_figures import assert_real_png

from si_hf.cli import run

ROOT = Path(__file__).resolve().parents[1]
SHRINK = ["--preset", "tiny", "--num_d0_examples", "2000", "--max_steps", "10", "--warmup_steps", "2",
          "--lr_scheduler_kwargs", '{"num_decay_steps": 4}', "--num_rounds", "2", "--examples_per_round", "40",
          "--label_batch_size", "40", "--round_max_steps", "4", "--round_decay_steps", "2", "--d0", "2",
          "--eval_examples_per_difficulty", "8", "--eval_batch_size", "64", "--eval_beyond", "1",
          "--report_to", "none", "--disable_tqdm", "true", "--precision", "fp32"]  # fmt: skip


@pytest.fixture
def experiments(monkeypatch):
    spec = importlib.util.spec_from_file_location("experiments", ROOT / "scripts" / "experiments.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    calls = []

    def launch(*args):  # in this process, with the recipe shrunk where the script sets nothing itself
        calls.append(args)
        pairs = [SHRINK[i : i + 2] for i in range(0, len(SHRINK), 2)]
        shrink = [x for flag, value in pairs if flag not in args for x in (flag, value)]
        assert run([*args, *shrink]) == 0

    monkeypatch.setattr(module, "launch", launch)
    return module, calls


def test_frontier_is_the_longest_prefix_of_lengths_at_the_threshold(experiments):
    module, _ = experiments
    assert module.frontier({"1": 1.0, "2": 0.96, "3": 0.5, "4": 0.99}) == 2
    assert module.frontier({"1": 0.9}) == 0 and module.frontier({}) == 0


def test_verifier_floor_then_random_labels(experiments, tmp_path):
    module, calls = experiments
    module.main(["verifier_floor", "--qs", "0", "1", "--output_dir", str(tmp_path)])
    out = tmp_path / "verifier_floor" / "seed-42"
    assert calls[0][-4:] == ("--round", "0", "--output_dir", str(out / "round0"))
    assert [c[c.index("--oracle_false_accept") + 1] for c in calls[1:]] == ["0", "1"]
    for q in ("0", "1"):
        rounds = json.loads((out / f"q-{q}" / "metrics.json").read_text())
        assert [m["round"] for m in rounds] == [1, 2]  # round 0 comes from round0, resumed
    perfect = json.loads((out / "q-0" / "metrics.json").read_text())
    assert all(m["data_accuracy"] in (1.0, None) for m in perfect)  # q = 0 keeps right labels only
    summary = (out / "summary.md").read_text()
    assert "| 0 |" in summary and "| 1 |" in summary and (out / "verifier_floor.png").is_file()

    module.main(["random_labels", "--output_dir", str(tmp_path)])
    random_arm = [c for c in calls if "--label_source" in c]
    assert [c[c.index("--round") + 1] for c in random_arm] == ["1", "2"]  # one invocation per round
    self_rounds = json.loads((out / "q-1" / "metrics.json").read_text())
    fractions = [float(c[c.index("--noise_fraction") + 1]) for c in random_arm]
    assert fractions == [pytest.approx(1 - (m["data_accuracy"] or 0.0), abs=1e-4) for m in self_rounds]
    truth = json.loads((out / "truth-uniform" / "metrics.json").read_text())
    assert [m["round"] for m in truth] == [1, 2]
    assert "| random labels |" in (out / "random_labels.md").read_text()

    module.main(
        ["noise_threshold", "--fractions", "0.5", "--kinds", "perturb", "--output_dir", str(tmp_path)]
    )
    noisy = tmp_path / "noise_threshold" / "seed-42"
    rounds = json.loads((noisy / "perturb-0.5" / "metrics.json").read_text())
    assert [m["round"] for m in rounds] == [1, 2, 3]
    assert rounds[0]["n_injected"] == int(0.5 * rounds[0]["n_kept"] + 0.5)  # what the q = 0 check kept
    assert [m["n_injected"] for m in rounds[1:]] == [0, 0]  # round 1 only
    assert "| perturb |" in (noisy / "summary.md").read_text()

    module.main(["round_init", "--output_dir", str(tmp_path)])
    base = tmp_path / "round_init" / "seed-42" / "base"
    marker = json.loads((base / "rounds" / "round-001" / "member-0" / "si_hf_round.json").read_text())
    assert marker["info"]["config"]["self_improve"]["round_init"] == "base"
    summary = (tmp_path / "round_init" / "seed-42" / "summary.md").read_text()
    assert "| continue |" in summary and "| base |" in summary


def test_data_size_and_vote_variants_from_k_round0_members(experiments, tmp_path, monkeypatch):
    """One round 0 of the k-member recipe (k = 2 here), then every N_1 per member and every vote variant."""
    module, calls = experiments
    launch = module.launch

    def k2(*args):  # the k-member recipe with 2 members
        launch(*args, *(("--num_members", "2") if module.VOTE_RECIPE in args else ()))

    monkeypatch.setattr(module, "launch", k2)
    module.main(["data_size", "--sizes", "8", "24", "--output_dir", str(tmp_path)])
    round0 = tmp_path / "round0-k3-seed-42"
    assert calls[0][-6:] == ("--round", "0", "--output_dir", str(round0), "--num_members", "2")
    runs = [c for c in calls if "--examples_per_round" in c]
    assert [(c[c.index("--resume_from") + 1][-8:], c[c.index("--examples_per_round") + 1]) for c in runs] == [
        ("member-0", "8"), ("member-0", "24"), ("member-1", "8"), ("member-1", "24")]  # fmt: skip
    out = tmp_path / "data_size" / "seed-42"
    rounds = json.loads((out / "member-1" / "n-24" / "metrics.json").read_text())
    assert [m["round"] for m in rounds] == [1] and rounds[0]["n_generated"] == 24
    assert "| 8 |" in (out / "summary.md").read_text() and (out / "data_size.png").is_file()

    module.vote_variants(tmp_path, 42, round0, rounds=1)
    out = tmp_path / "vote_variants" / "seed-42"
    for variant, members in (("independent", 2), ("shared_data", 2), ("shared_seed", 2), ("more_data", 1)):
        metrics = json.loads((out / variant / "metrics.json").read_text())
        assert sorted(m["member"] for m in metrics) == list(range(members)), variant
    shared = out / "shared_seed" / "rounds" / "round-001"
    sources = [json.loads((shared / f"member-{m}" / "si_hf_round.json").read_text())["info"] for m in (0, 1)]
    links = [(out / "shared-seed-source" / f"member-{m}") for m in (0, 1)]
    assert [s["resumed_from"]["spec"] for s in sources] == [str(p.absolute()) for p in links]
    assert {p.resolve() for p in links} == {(round0 / "rounds" / "round-000" / "member-0").resolve()}
    assert "| more_data |" in (out / "summary.md").read_text()
    assert_real_png(out / "vote_variants.png")


def test_random_labels_needs_the_self_label_arm(experiments, tmp_path):
    module, _ = experiments
    with pytest.raises(SystemExit, match="run `scripts/experiments.py verifier_floor`"):
        module.main(["random_labels", "--output_dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        module.main(["verifier_floor", "--qs", "1.5", "--output_dir", str(tmp_path)])
